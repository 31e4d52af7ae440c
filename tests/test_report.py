"""Reports: statistics with known answers, the paper-style tables, and the HTML page in Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from netmarl.cli import main
from netmarl.errors import ConfigError
from netmarl.report import (
    Score,
    average_probability_of_improvement_ci,
    final_return,
    iqm,
    iqm_ci,
    make_report,
    matches_best,
    max_average_return,
    probability_of_improvement,
    probability_of_improvement_ci,
    rank_against_best,
)
from netmarl.report.plots import curve_colors, plot_panels

CI = r"-?\d+\.\d+ \[-?\d+\.\d+, -?\d+\.\d+\]"  # "mean [low, high]"

# --------------------------------------------------------------------------- statistics


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm(np.arange(8.0)) == pytest.approx(3.5)  # mean of 2, 3, 4, 5
    outliers = np.array([-100.0, 0, 0, 1, 1, 1, 1, 100])
    assert iqm(outliers) == pytest.approx(0.75)  # mean of 0, 1, 1, 1: outliers ignored
    np.testing.assert_allclose(iqm(np.stack([np.arange(8.0), outliers], axis=1)), [3.5, 0.75])
    score = iqm_ci(outliers)
    assert score.value == pytest.approx(0.75) and score.low <= 0.75 <= score.high
    assert iqm_ci(np.full(5, 2.0)) == Score(2.0, 2.0, 2.0)


def test_probability_of_improvement_known_answers():
    x, y = np.array([5.0, 6, 7]), np.array([1.0, 2, 3, 4])
    assert probability_of_improvement(x, y) == 1.0 and probability_of_improvement(y, x) == 0.0
    assert probability_of_improvement_ci(x, y) == Score(1.0, 1.0, 1.0)
    same = np.array([1.0, 2, 3, 4])
    assert probability_of_improvement(same, same) == 0.5  # ties count one half
    assert probability_of_improvement([1.0], [1.0]) == 0.5
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=9), rng.normal(0.3, size=7).round(1)
    u = stats.mannwhitneyu(a.round(1), b).statistic
    assert probability_of_improvement(a.round(1), b) == pytest.approx(u / (9 * 7))
    assert probability_of_improvement(a, b) + probability_of_improvement(b, a) == pytest.approx(1)
    ci = probability_of_improvement_ci(a, b)
    assert 0 <= ci.low <= ci.value <= ci.high <= 1 and ci.high - ci.low > 0.1
    average = average_probability_of_improvement_ci([(x, y), (same, same)])
    assert average.value == pytest.approx(0.75)


def test_max_average_return_picks_the_best_evaluation_point():
    steps = np.array([0, 100, 200, 300])
    values = np.array([[0.0, 3, 5, 4], [0, 4, 6, 2], [1, 3, 7, 3]])  # means 0.33, 3.33, 6, 3
    best = max_average_return(steps, values)
    assert best.step == 200 and best.value == pytest.approx(6.0)
    assert best.low <= 6.0 <= best.high and best.low >= 5.0 and best.high <= 7.0
    final = final_return(steps, values)
    assert final.step == 300 and final.value == pytest.approx(3.0)
    tie = max_average_return(steps, np.array([[1.0, 2, 2, 0]]))
    assert tie.step == 100  # the earliest on ties
    with pytest.raises(ValueError, match="seeds"):
        max_average_return(steps, values[:, :2])


def test_matches_the_best_is_ci_overlap():
    best = Score(10.0, 9.0, 11.0)
    assert matches_best(Score(8.5, 7.0, 9.0), best)  # touching intervals match
    assert not matches_best(Score(8.5, 8.0, 8.9), best)
    labels = rank_against_best([Score(8.5, 7, 9.5), best, None, Score(1, 0, 2), Score(10, 9, 11)])
    assert labels == ["matches", "best", "", "", "best"]


# --------------------------------------------------------------------------- tables


def _fake_run(run_dir: Path, algo: str, returns: np.ndarray, steps: np.ndarray) -> None:
    """A run directory in the format netmarl writes, with chosen per-seed returns."""
    run_dir.mkdir(parents=True)
    config = {"algo": algo, "env": "random_mdp", "env_kwargs": {"num_agents": 3}, "graph": "ring"}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    rows = ["seed,step,return,critic_error"]
    for t, step in enumerate(steps):
        rows += [f"{s},{step},{returns[s, t]:.9g}," for s in range(len(returns))]
    (run_dir / "metrics.csv").write_text("\n".join(rows) + "\n")
    (run_dir / "summary.json").write_text(json.dumps({"algo": algo}))


def test_tables_bold_the_best_and_mark_results_that_match_it(tmp_path):
    steps = np.array([0, 500, 1000])
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.05, size=(6, 3))
    curves = {  # per task: label -> returns [seeds, T]
        "t1": {"A": 1.0 + noise, "B": 0.97 + noise[::-1], "C": 0.2 + noise},
        "t2": {"A": 0.1 + noise, "C": 0.5 + noise},  # B not run on t2
    }
    summary = {}
    for task, by_algo in curves.items():
        for label, returns in by_algo.items():
            _fake_run(tmp_path / "runs" / f"{task}--{label.lower()}", label, returns, steps)
            summary.setdefault(task, {})[label] = {"algo": label}
    (tmp_path / "summary.json").write_text(json.dumps(summary))

    text = make_report(tmp_path).read_text()
    table = text.split("## Maximum average return")[1].split("## ")[0]
    header, _, t1, t2 = [line for line in table.splitlines() if line.startswith("|")]
    assert header == "| Task | A | B | C |"
    cells = [c.strip() for c in t1.strip("|").split("|")]
    assert re.fullmatch(rf"\*\*{CI}\*\*", cells[1]), cells  # A: best, bold
    assert re.fullmatch(rf"{CI}∗", cells[2]), cells  # B: within the CI of A, marked
    assert re.fullmatch(CI, cells[3]), cells  # C: clearly worse, plain
    cells = [c.strip() for c in t2.strip("|").split("|")]
    assert cells[2] == "—" and cells[3].startswith("**") and not cells[1].startswith("**")
    assert "∗: matches the best (its 95% CI overlaps the best's CI" in table
    assert "P(A > B)" in text and "P(A > C)" in text and "average over tasks" in text
    assert "| t1 | A | 6 |" in text  # final return / IQM table: one row per result
    assert "![learning curves](report_curves.png)" in text
    assert (tmp_path / "report.html").is_file() and (tmp_path / "report_curves.png").is_file()


def test_not_a_run_directory_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ConfigError, match="is not a netmarl run or experiment directory"):
        make_report(tmp_path)
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("netmarl: error: ") and "not a netmarl run or experiment" in err
    assert err.count("\n") == 1
    (tmp_path / "config.yaml").write_text("algo: lijia_ac\n")  # started, never finished
    with pytest.raises(ConfigError, match="no metrics.csv"):
        make_report(tmp_path)
    (tmp_path / "progress.csv").write_text("seed,step,return\n0,0,0.5\n")  # checkpointed
    with pytest.raises(ConfigError, match="progress.csv holds its evaluations up to the last"):
        make_report(tmp_path)


# --------------------------------------------------------------------------- end to end

EXPERIMENT = """
experiment: tiny
out_dir: {out}
common: {{env: random_mdp, env_kwargs: {{num_states: 5, num_actions: 2, num_agents: 2}},
          seeds: 3, steps: 1000, eval_every: 500}}
panels:
  - title: "(a) two agents"
    algos:
      Algorithm 1: {{algo: lijia_ac}}
      joint Q: {{algo: joint_q}}
  - title: "(b) three agents"
    overrides: {{env_kwargs: {{num_agents: 3}}}}
    algos:
      Algorithm 1: {{algo: lijia_ac}}
      joint Q: {{algo: joint_q}}
"""


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    """A real 2 tasks x 2 algorithms experiment, trained once for the module."""
    root = tmp_path_factory.mktemp("report")
    path, out = root / "exp.yaml", root / "results"
    path.write_text(EXPERIMENT.format(out=out))
    assert main(["run", str(path), "-q"]) == 0
    return out


def test_report_of_an_experiment(experiment, capsys):
    capsys.readouterr()
    assert main(["report", str(experiment)]) == 0
    printed = capsys.readouterr().out
    for name in ("report.md", "report.html", "report_curves.png"):
        assert (experiment / name).is_file() and str(experiment / name) in printed
    text = (experiment / "report.md").read_text()
    assert "| Task | Algorithm 1 | joint Q |" in text
    rows = [line for line in text.splitlines() if line.startswith("| (a) two agents |")]
    assert re.search(rf"\| \*\*{CI}\*\* \|", rows[0]), rows[0]  # one result per task is bold
    assert len(re.findall(CI, text)) >= 4 + 2 * 4 + 2  # max average, final + IQM, PoI
    assert "P(Algorithm 1 > joint Q)" in text
    assert text.count("```yaml") == 4 and "algo: joint_q" in text  # resolved configs


def test_report_of_a_single_run(experiment):
    run = experiment / "runs" / "b-three-agents--algorithm-1"
    text = make_report(run).read_text()
    assert "| random_mdp, 3 agents, ring graph | **" in text
    assert "Only one algorithm" in text and text.count("```yaml") == 1
    assert "critic_lr:" in text  # the resolved algorithm defaults are shown


def test_report_lists_the_cells_still_training(experiment, tmp_path):
    """A cell that has checkpointed but not finished shows its evaluations so far, apart from
    the tables of finished cells; with no finished cell yet, the error says where they are."""
    root = tmp_path / "exp"
    shutil.copytree(experiment, root)
    finished = (root / "runs" / "b-three-agents--algorithm-1" / "metrics.csv").read_text()
    running = root / "runs" / "c-later--algorithm-1"
    running.mkdir()
    shutil.copy(root / "runs" / "b-three-agents--algorithm-1" / "config.yaml", running)
    (running / "progress.csv").write_text("\n".join(finished.splitlines()[:7]) + "\n")
    text = make_report(root).read_text()
    section = text.split("## Unfinished cells")[1]
    row = next(line for line in section.splitlines() if line.startswith("| c-later--algorithm-1"))
    assert row.startswith("| c-later--algorithm-1 | 3 | 500 |"), row  # seeds, steps so far
    assert "c-later" not in text.split("## Unfinished cells")[0]  # not in the results tables

    (root / "summary.json").write_text("{}\n")  # what an experiment with no finished cell writes
    with pytest.raises(ConfigError, match=r"has finished yet.*c-later--algorithm-1/progress.csv"):
        make_report(root)
    (root / "summary.json").unlink()
    with pytest.raises(ConfigError, match=r"has finished yet.*--up-to STEPS"):
        make_report(root)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Injected into a copy of the page (the report itself has no scripts): after load, write what
# the browser actually rendered into the DOM, which --dump-dom then prints.
PROBE = """<script>
window.addEventListener("load", function () {
  var imgs = Array.from(document.images);
  var out = {
    tables: document.querySelectorAll("table").length,
    rows: document.querySelectorAll("tbody tr").length,
    bold: document.querySelectorAll("td strong").length,
    images: imgs.length,
    data: imgs.filter(function (i) { return i.src.indexOf("data:image/png;base64,") === 0; })
      .length,
    widths: imgs.map(function (i) { return i.complete ? i.naturalWidth : 0; }),
    pre: document.querySelectorAll("pre").length
  };
  var pre = document.createElement("pre");
  pre.id = "netmarl-probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_html_report_renders_in_headless_chromium(experiment, tmp_path):
    make_report(experiment)
    page = (experiment / "report.html").read_text()
    assert "<script" not in page and not re.search(r"(src|href)=\"(https?:)?//", page)
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    flags = "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
    flags += "--disable-background-networking --disable-component-update --disable-sync"
    dom = subprocess.run(
        [CHROMIUM, *flags.split(), f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         probe.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    found = re.search(r'<pre id="netmarl-probe">(.*?)</pre>', dom)
    assert found, dom[-2000:]
    seen = json.loads(found.group(1))
    assert seen["tables"] == 4  # max average, final + IQM, improvement, references
    assert seen["rows"] == 2 + 4 + 3 + 2 and seen["bold"] == 2
    assert seen["images"] == seen["data"] == 1
    assert seen["widths"][0] > 100  # the embedded PNG decoded to a real image
    assert seen["pre"] == 4  # the four resolved configs


def test_a_learner_keeps_its_colour_across_panels(tmp_path):
    steps, values = np.arange(3), np.zeros((2, 3))
    panels = [
        ("N = 3", {"VP": (steps, values), "IQL": (steps, values)}),
        ("N = 5", {"IQL": (steps, values), "MA-AC": (steps, values), "VP": (steps, values)}),
    ]
    colors = curve_colors(panels)
    assert list(colors) == ["VP", "IQL", "MA-AC"] and len(set(colors.values())) == 3
    many = [("p", {f"learner {i}": (steps, values) for i in range(15)})]
    assert len(set(curve_colors(many).values())) == 15  # past 10 curves: tab20, no repeats
    plot_panels(panels, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0
