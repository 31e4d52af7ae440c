"""``netmarl report``: a Markdown report and a self-contained HTML page for a run or experiment.

The report holds what a paper needs and a reader should be able to check: the DVDN-style
table (rows tasks, columns algorithms, the maximum average return with its 95% bootstrap CI,
the best in bold, results that match the best marked), final returns with interquartile means,
probabilities of improvement (Agarwal et al. 2021), learning curves with CI bands regenerated
from the per-seed metrics, and the resolved configurations. Everything is computed from the
files a run writes (``config.yaml``, ``metrics.csv``, ``summary.json``), so a report can be
made for any finished run or experiment directory, on any machine. An experiment still
training also lists its unfinished cells, from the ``progress.csv`` each run rewrites with
every checkpoint, apart from the tables. ``up_to`` reports every cell, finished or not, on
its evaluations up to a common number of env steps: a budget-matched table while a long
experiment is still training (``netmarl report DIR --up-to STEPS``).
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from netmarl.errors import ConfigError
from netmarl.report.stats import (
    Score,
    average_probability_of_improvement_ci,
    final_return,
    iqm_ci,
    max_average_return,
    probability_of_improvement_ci,
    rank_against_best,
)

MARKDOWN = "report.md"
HTML = "report.html"
CURVES = "report_curves.png"
MATCH_MARK = "∗"  # the asterisk of DVDN Table 1 (U+2217, so Markdown leaves it alone)


# --------------------------------------------------------------------------- loading


@dataclass
class Cell:
    """One (task, algorithm) result: a run directory's per-seed learning curves."""

    task: str
    algo: str
    run_dir: Path
    steps: np.ndarray  # [T]
    returns: np.ndarray  # [seeds, T], the exact evaluation return
    config_text: str
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class Results:
    """Cells arranged like the paper's table: ``tasks`` are rows, ``algos`` are columns."""

    kind: str  # "run" or "experiment"
    root: Path
    tasks: list[str]
    algos: list[str]
    cells: dict[tuple[str, str], Cell]
    # run directories under runs/ that have checkpointed but not finished: name -> curves so far
    unfinished: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    up_to: int | None = None  # every cell cut at this many env steps (finished or not)

    def get(self, task: str, algo: str) -> Cell | None:
        return self.cells.get((task, algo))


def _not_a_result_dir(path: Path, why: str) -> ConfigError:
    return ConfigError(
        f"{str(path)!r} is not a netmarl run or experiment directory (no summary.json/"
        f"config.yaml): {why} Give a directory written by `netmarl train` or `netmarl run`."
    )


def _read_curves(run_dir: Path, name: str = "metrics.csv") -> tuple[np.ndarray, np.ndarray]:
    """(steps [T], returns [seeds, T]) from a run's metrics.csv (or its progress.csv)."""
    from netmarl.run.driver import read_metrics_csv

    path = run_dir / name
    if not path.is_file():
        partial = run_dir / "progress.csv"
        so_far = (
            f"; {partial} holds its evaluations up to the last checkpoint"
            if partial.is_file()
            else ""
        )
        raise ConfigError(
            f"run directory {str(run_dir)!r} has no metrics.csv: the run has not finished "
            f"(or was not written by netmarl), so there is nothing to report yet{so_far}."
        )
    try:
        cols = read_metrics_csv(path)
        seeds = cols["seed"].astype(int)
        steps = np.unique(cols["step"])
        returns = np.full((seeds.max() + 1, len(steps)), np.nan)
        returns[seeds, np.searchsorted(steps, cols["step"])] = cols["return"]
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"{path} is not a netmarl metrics file (columns seed, step, return): {exc}"
        ) from None
    returns = returns[~np.all(np.isnan(returns), axis=1)]  # seeds that never wrote a row
    if returns.size == 0:
        raise ConfigError(f"{path} holds no evaluation returns: nothing to report yet.")
    return steps.astype(int), returns


def _curves_up_to(run_dir: Path, up_to: int) -> tuple[np.ndarray, np.ndarray]:
    """A run's evaluations at steps <= ``up_to``, finished (metrics.csv) or not
    (progress.csv); a clear error if it has not trained that far."""
    finished = (run_dir / "metrics.csv").is_file()
    steps, returns = _read_curves(run_dir, "metrics.csv" if finished else "progress.csv")
    if steps[-1] < up_to:
        raise ConfigError(
            f"run {str(run_dir)!r} has evaluations up to {int(steps[-1]):,} env steps, not "
            f"{up_to:,}: report it with a smaller --up-to, or train it further."
        )
    keep = steps <= up_to
    return steps[keep], returns[:, keep]


def _load_cell(task: str, algo: str, run_dir: Path, up_to: int | None = None) -> Cell:
    steps, returns = _read_curves(run_dir) if up_to is None else _curves_up_to(run_dir, up_to)
    try:  # only the reference returns are read from it; a run without one still reports
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        summary = {}
    if not isinstance(summary, dict):
        summary = {}
    return Cell(task, algo, run_dir, steps, returns, (run_dir / "config.yaml").read_text(), summary)


def _run_task_name(config: dict[str, Any]) -> str:
    agents = (config.get("env_kwargs") or {}).get("num_agents")
    parts = [str(config.get("env", "?"))]
    if agents is not None:
        parts.append(f"{agents} agents")
    parts.append(f"{config.get('graph', '?')} graph")
    return ", ".join(parts)


def load_results(path: str | Path, up_to: int | None = None) -> Results:
    """Read a run directory or an experiment directory into a :class:`Results` table;
    with ``up_to``, every cell that has trained that far, cut there (see the module doc)."""
    if up_to is not None and up_to < 1:
        raise ConfigError(f"--up-to must be a positive number of env steps, got {up_to}.")
    root = Path(path)
    if not root.is_dir():
        raise _not_a_result_dir(root, "it does not exist or is not a directory.")
    if (root / "config.yaml").is_file():
        try:
            config = yaml.safe_load((root / "config.yaml").read_text())
        except yaml.YAMLError:
            config = None
        if not isinstance(config, dict) or "algo" not in config:
            raise _not_a_result_dir(root, "its config.yaml is not a netmarl run config.")
        task, algo = _run_task_name(config), str(config["algo"])
        cell = _load_cell(task, algo, root, up_to)
        return Results("run", root, [task], [algo], {(task, algo): cell}, up_to=up_to)
    if up_to is not None:
        return _load_experiment_up_to(root, up_to)
    if not _has_finished_cells(root / "summary.json"):
        started = sorted(str(p) for p in root.glob("runs/*/progress.csv"))
        if started:
            raise ConfigError(
                f"no cell of the experiment in {str(root)!r} has finished yet, so there is no "
                f"table to report; the evaluations so far are in {', '.join(started)}. "
                f"`netmarl report {root} --up-to STEPS` compares the cells at a common budget."
            )
        raise _not_a_result_dir(root, "neither file is there.")
    return _load_experiment(root)


def _cell_dir(root: Path, task: str, algo: str, cell_summary: Any, taken: set[Path]) -> Path:
    """The run directory of one cell of an experiment or sweep directory.

    Experiments name cells ``<panel>--<label>``, sweeps ``<row> <algo>`` (or ``<algo>``), all
    slugged; when no such directory exists (renamed, or a layout from another version), the
    run whose own summary.json matches the cell's summary is used.
    """
    from netmarl.run.experiment import slug

    runs = root / "runs"
    for name in (f"{slug(task)}--{slug(algo)}", slug(f"{task} {algo}"), slug(algo)):
        if (runs / name / "config.yaml").is_file() and runs / name not in taken:
            return runs / name
    keys = ("algo", "env", "final_return", "max_average_return")
    wanted = [cell_summary.get(k) for k in keys] if isinstance(cell_summary, dict) else None
    for run_dir in sorted(runs.glob("*/summary.json")) if runs.is_dir() else []:
        try:
            found = json.loads(run_dir.read_text())
        except ValueError:
            continue
        if wanted is not None and [found.get(k) for k in keys] == wanted:
            if run_dir.parent not in taken:
                return run_dir.parent
    raise ConfigError(
        f"{str(root)!r} lists {task!r} / {algo!r} in its summary.json but its run directory "
        f"is missing under {str(runs)!r}: rerun the experiment or sweep file (`netmarl run` or "
        "`netmarl sweep`) to complete it."
    )


def _load_experiment(root: Path) -> Results:
    """An experiment or sweep directory: summary.json maps row -> algorithm -> run summary."""
    try:
        panels = json.loads((root / "summary.json").read_text())
    except ValueError:
        panels = None
    if (
        not isinstance(panels, dict)
        or not panels
        or not all(isinstance(v, dict) and v for v in panels.values())
    ):
        raise _not_a_result_dir(
            root, "its summary.json is not an experiment summary ({panel: {algorithm: ...}})."
        )
    tasks, algos, cells = [], [], {}
    taken: set[Path] = set()
    for task, by_algo in panels.items():
        tasks.append(task)
        for algo, cell_summary in by_algo.items():
            if algo not in algos:
                algos.append(algo)
            run_dir = _cell_dir(root, task, algo, cell_summary, taken)
            taken.add(run_dir)
            cells[(task, algo)] = _load_cell(task, algo, run_dir)
    return Results("experiment", root, tasks, algos, cells, _unfinished_runs(root, taken))


def _has_finished_cells(summary: Path) -> bool:
    """Whether an experiment's summary.json lists a cell (it is written empty, ``{}``, while
    none has finished); an unreadable one counts as listing, for the caller to report."""
    try:
        return json.loads(summary.read_text()) != {}
    except FileNotFoundError:
        return False
    except ValueError:
        return True


def _load_experiment_up_to(root: Path, up_to: int) -> Results:
    """Every cell listed in the experiment's cells.json that has reached ``up_to`` steps."""
    from netmarl.run.experiment import CELL_LIST

    try:
        listed = json.loads((root / CELL_LIST).read_text())
        entries = [(str(e["panel"]), str(e["label"]), root / str(e["run"])) for e in listed]
    except FileNotFoundError:
        raise ConfigError(
            f"{str(root)!r} has no {CELL_LIST} (the list of an experiment's cells, which "
            "`netmarl run` writes before training): give an experiment directory, or run its "
            "experiment file once more with this version of netmarl."
        ) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"{root / CELL_LIST} is not a netmarl cell list: {exc}") from None
    tasks, algos, cells = [], [], {}
    for task, algo, run_dir in entries:
        tasks += [task] if task not in tasks else []
        algos += [algo] if algo not in algos else []
        try:
            cells[(task, algo)] = _load_cell(task, algo, run_dir, up_to)
        except ConfigError:  # not started, or not this far yet: shown as "—"
            continue
    if not cells:
        raise ConfigError(
            f"no cell of {str(root)!r} has evaluations up to {up_to:,} env steps yet; "
            "`netmarl report` without --up-to lists how far each has come."
        )
    return Results("experiment", root, tasks, algos, cells, up_to=up_to)


def _unfinished_runs(root: Path, finished: set[Path]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The curves so far of the runs under ``root/runs`` still training (or stopped between
    sessions): their ``progress.csv``, rewritten with every checkpoint."""
    unfinished = {}
    for path in sorted((root / "runs").glob("*/progress.csv")):
        if path.parent not in finished and not (path.parent / "metrics.csv").is_file():
            try:
                unfinished[path.parent.name] = _read_curves(path.parent, path.name)
            except ConfigError:  # an unreadable file of a run in progress is not the report's
                continue
    return unfinished


# --------------------------------------------------------------------------- document model


@dataclass
class TableCell:
    text: str
    bold: bool = False
    mark: str = ""


@dataclass
class Table:
    header: list[str]
    rows: list[list[TableCell]]
    caption: str
    text_columns: int = 1  # leading columns of names (left-aligned); the rest are numbers


@dataclass
class Block:
    """One piece of the report, rendered to both Markdown and HTML."""

    kind: str  # "h1", "h2", "p", "table", "image", "config"
    text: str = ""
    table: Table | None = None
    path: Path | None = None
    code: str = ""


def _decimals(values: Sequence[float]) -> int:
    """Decimals that show about four significant digits of the largest value in a row."""
    finite = [abs(v) for v in values if math.isfinite(v)]
    mag = max(finite, default=0.0)
    if mag == 0:
        return 3
    return int(min(6, max(0, 3 - math.floor(math.log10(mag)))))


def format_score(score: Score, decimals: int) -> str:
    """``mean [low, high]``: the estimate and its 95% CI, as in the report's tables."""
    d = decimals
    return f"{score.value:.{d}f} [{score.low:.{d}f}, {score.high:.{d}f}]"


def _seed_counts(results: Results) -> str:
    counts = sorted({c.returns.shape[0] for c in results.cells.values()})
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"


def _max_average_table(results: Results) -> Table:
    rows = []
    for task in results.tasks:
        cells = [results.get(task, a) for a in results.algos]
        scores = [None if c is None else max_average_return(c.steps, c.returns) for c in cells]
        d = _decimals([v for s in scores if s is not None for v in s[:3]])
        row = [TableCell(task)]
        for score, label in zip(scores, rank_against_best(scores), strict=True):
            if score is None:
                row.append(TableCell("—"))
            else:
                mark = MATCH_MARK if label == "matches" else ""
                row.append(TableCell(format_score(score, d), bold=label == "best", mark=mark))
        rows.append(row)
    caption = (
        f"Maximum average return over {_seed_counts(results)} seeds: the evaluation point "
        "whose mean return over seeds is highest, with its 95% bootstrap confidence interval "
        "[low, high]. Bold: the highest of the task. "
        f"{MATCH_MARK}: matches the best (its 95% CI overlaps the best's CI, so it is not "
        "shown to be worse). "
        + ("—: not run." if results.up_to is None else f"—: not trained to {results.up_to:,}.")
    )
    return Table(["Task", *results.algos], rows, caption)


def _unfinished_table(results: Results) -> Table:
    rows = []
    for name, (steps, returns) in results.unfinished.items():
        best = max_average_return(steps, returns)
        last = float(np.nanmean(returns[:, -1]))
        d = _decimals([best.value, best.low, best.high, last])
        rows.append(
            [
                TableCell(name),
                TableCell(str(returns.shape[0])),
                TableCell(f"{int(steps[-1]):,}"),
                TableCell(f"{last:.{d}f}"),
                TableCell(format_score(best, d)),
            ]
        )
    caption = (
        "Runs under runs/ that have not finished: their evaluations up to the last checkpoint "
        "(progress.csv). Not results yet: the maximum so far can only rise, and the tables "
        "above leave these cells out."
    )
    header = ["Run", "Seeds", "Steps so far", "Return (last)", "Max average so far"]
    return Table(header, rows, caption)


def _final_table(results: Results) -> Table:
    rows = []
    for task in results.tasks:
        found = []
        for algo in results.algos:
            cell = results.get(task, algo)
            if cell is not None:
                final = final_return(cell.steps, cell.returns)
                middle = iqm_ci(cell.returns[:, -1])
                best = max_average_return(cell.steps, cell.returns)
                found.append((algo, cell, final, middle, best))
        d = _decimals([v for _, _, f, m, _ in found for v in (*f[:3], *m[:3])])
        for algo, cell, final, middle, best in found:
            rows.append(
                [
                    TableCell(task),
                    TableCell(algo),
                    TableCell(str(cell.returns.shape[0])),
                    TableCell(format_score(final, d)),
                    TableCell(format_score(middle, d)),
                    TableCell(f"{best.step:,}"),
                    TableCell(f"{int(cell.steps[-1]):,}"),
                ]
            )
    caption = (
        "Final return: mean over seeds at the last evaluation point. IQM: interquartile mean "
        "of the per-seed final returns (the mean of the middle 50% of seeds, Agarwal et al. "
        "2021), robust to outlier seeds. Both with 95% bootstrap CIs [low, high]. Best step: "
        "where the maximum average return was reached."
    )
    header = ["Task", "Algorithm", "Seeds", "Final return", "IQM (final)", "Best step", "Steps"]
    return Table(header, rows, caption, text_columns=2)


def _improvement_table(results: Results) -> Table | None:
    if len(results.algos) < 2:
        return None
    first, others = results.algos[0], results.algos[1:]
    rows, pairs = [], {o: [] for o in others}
    for task in results.tasks:
        a = results.get(task, first)
        row = [TableCell(task)]
        for other in others:
            b = results.get(task, other)
            if a is None or b is None:
                row.append(TableCell("—"))
                continue
            x, y = a.returns[:, -1], b.returns[:, -1]
            pairs[other].append((x, y))
            row.append(TableCell(format_score(probability_of_improvement_ci(x, y), 2)))
        rows.append(row)
    if any(len(p) > 1 for p in pairs.values()):
        row = [TableCell("average over tasks")]
        for other in others:
            p = pairs[other]
            if len(p) < 2:
                row.append(TableCell("—"))
            else:
                row.append(TableCell(format_score(average_probability_of_improvement_ci(p), 2)))
        rows.append(row)
    caption = (
        f"Probability of improvement P({first} > Y) (Agarwal et al. 2021): the chance that a "
        f"random seed of {first} ends with a higher final return than a random seed of Y "
        "(Mann-Whitney U / (n m), ties count 1/2; 0.5 = no difference), with a 95% bootstrap "
        "CI from resampling each algorithm's seeds independently. The average over tasks "
        "weights every task equally."
    )
    return Table(["Task", *(f"P({first} > {o})" for o in others)], rows, caption)


def _references_table(results: Results) -> Table | None:
    names: list[str] = []
    by_task = {}
    for task in results.tasks:
        for algo in results.algos:
            cell = results.get(task, algo)
            refs = (cell.summary.get("references") if cell else None) or {}
            if refs:
                by_task[task] = refs
                names += [n for n in refs if n not in names]
                break
    if not by_task:
        return None
    rows = []
    for task, refs in by_task.items():
        d = _decimals(list(refs.values()))
        rows.append(
            [TableCell(task)] + [TableCell(f"{refs[n]:.{d}f}" if n in refs else "—") for n in names]
        )
    caption = "Exact returns of reference policies (uniform random; optimal, where computable)."
    return Table(["Task", *(f"{n} policy" for n in names)], rows, caption)


def build_blocks(results: Results) -> list[Block]:
    """The report's content, independent of the output format."""
    root = results.root
    blocks = [Block("h1", f"netmarl report: {root.resolve().name}")]
    what = "Run directory" if results.kind == "run" else "Experiment (or sweep) directory"
    blocks.append(
        Block(
            "p",
            f"{what} {root}: {len(results.tasks)} task(s) x {len(results.algos)} algorithm(s), "
            f"{_seed_counts(results)} seeds per result. Returns are the exact evaluation "
            "returns written to metrics.csv."
            + (
                ""
                if results.up_to is None
                else f" Budget-matched: every cell, finished or still training (progress.csv), "
                f"cut at {results.up_to:,} env steps; 'final' means the last evaluation there."
            ),
        )
    )
    blocks += [
        Block("h2", "Maximum average return"),
        Block("table", table=_max_average_table(results)),
    ]
    blocks += [Block("h2", "Final return and interquartile mean")]
    blocks.append(Block("table", table=_final_table(results)))
    improvement = _improvement_table(results)
    blocks.append(Block("h2", "Probability of improvement"))
    if improvement is None:
        blocks.append(Block("p", "Only one algorithm: there is nothing to compare."))
    else:
        blocks.append(Block("table", table=improvement))
    blocks += [
        Block("h2", "Learning curves"),
        Block(
            "image",
            text="Mean return over seeds (exact for tabular learners, over evaluation "
            "episodes otherwise) with a shaded 95% bootstrap confidence band, one panel per task.",
            path=report_paths(root, results.up_to)[2],
        ),
    ]
    if results.unfinished:
        blocks += [
            Block("h2", "Unfinished cells"),
            Block("table", table=_unfinished_table(results)),
        ]
    references = _references_table(results)
    if references is not None:
        blocks += [Block("h2", "Reference returns"), Block("table", table=references)]
    blocks.append(Block("h2", "Resolved configurations"))
    for (task, algo), cell in results.cells.items():
        where = cell.run_dir.relative_to(root) if cell.run_dir != root else Path(".")
        title = f"{task} / {algo} ({where}/config.yaml)"
        blocks.append(Block("config", text=title, code=cell.config_text.rstrip("\n")))
    return blocks


# --------------------------------------------------------------------------- rendering


def _md_cell(cell: TableCell) -> str:
    text = cell.text.replace("|", "\\|")
    return (f"**{text}**" if cell.bold else text) + cell.mark


def to_markdown(blocks: Sequence[Block]) -> str:
    """Render the report as GitHub-flavoured Markdown (images referenced by relative path)."""
    out: list[str] = []
    for b in blocks:
        if b.kind == "h1":
            out.append(f"# {b.text}")
        elif b.kind == "h2":
            out.append(f"## {b.text}")
        elif b.kind == "p":
            out.append(b.text)
        elif b.kind == "table" and b.table is not None:
            t = b.table
            lines = ["| " + " | ".join(h.replace("|", "\\|") for h in t.header) + " |"]
            align = [" --- "] * t.text_columns + [" ---: "] * (len(t.header) - t.text_columns)
            lines.append("|" + "|".join(align) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in t.rows]
            out.append("\n".join(lines) + f"\n\n*{t.caption}*")
        elif b.kind == "image" and b.path is not None:
            out.append(f"![learning curves]({b.path.name})\n\n*{b.text}*")
        elif b.kind == "config":
            out.append(f"### {b.text}\n\n```yaml\n{b.code}\n```")
    return "\n\n".join(out) + "\n"


CSS = """
body { font-family: system-ui, sans-serif; max-width: 72em; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.4; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: .3em .7em; text-align: right; white-space: nowrap; }
th.name, td.name { text-align: left; }
th { background: #f0f0f0; }
caption { caption-side: bottom; text-align: left; font-size: .9em; color: #555;
          padding-top: .4em; white-space: normal; }
figure { margin: 1em 0; } img { max-width: 100%; }
figcaption { font-size: .9em; color: #555; }
pre { background: #f6f6f6; padding: .7em; overflow-x: auto; }
summary { cursor: pointer; }
"""


def _html_cell(cell: TableCell, left: bool) -> str:
    text = html.escape(cell.text)
    if cell.bold:
        text = f"<strong>{text}</strong>"
    if cell.mark:
        text += f'<span class="mark">{html.escape(cell.mark)}</span>'
    return f'<td class="name">{text}</td>' if left else f"<td>{text}</td>"


def to_html(blocks: Sequence[Block], title: str) -> str:
    """Render the report as one self-contained HTML page (images as base64 data URIs)."""
    body: list[str] = []
    open_details = sum(b.kind == "config" for b in blocks) == 1
    for b in blocks:
        if b.kind in ("h1", "h2"):
            body.append(f"<{b.kind}>{html.escape(b.text)}</{b.kind}>")
        elif b.kind == "p":
            body.append(f"<p>{html.escape(b.text)}</p>")
        elif b.kind == "table" and b.table is not None:
            t = b.table
            head = "".join(
                f'<th class="name">{html.escape(h)}</th>'
                if i < t.text_columns
                else f"<th>{html.escape(h)}</th>"
                for i, h in enumerate(t.header)
            )
            rows = "\n".join(
                "<tr>"
                + "".join(_html_cell(c, i < t.text_columns) for i, c in enumerate(row))
                + "</tr>"
                for row in t.rows
            )
            body.append(
                f"<table>\n<caption>{html.escape(t.caption)}</caption>\n"
                f"<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>"
            )
        elif b.kind == "image" and b.path is not None:
            data = base64.b64encode(b.path.read_bytes()).decode("ascii")
            body.append(
                f'<figure><img alt="learning curves" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(b.text)}</figcaption></figure>"
            )
        elif b.kind == "config":
            attr = " open" if open_details else ""
            body.append(
                f"<details{attr}><summary>{html.escape(b.text)}</summary>"
                f"<pre><code>{html.escape(b.code)}</code></pre></details>"
            )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


# --------------------------------------------------------------------------- entry point


def _atomic_write(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a report."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def report_paths(root: Path, up_to: int | None = None) -> tuple[Path, Path, Path]:
    """Where the Markdown, HTML and curves of a report go (``_<up_to>`` before the suffix of
    a budget-matched report, so it sits beside the full one)."""
    tag = "" if up_to is None else f"_{up_to}"
    return tuple(root / name.replace(".", f"{tag}.") for name in (MARKDOWN, HTML, CURVES))


def make_report(path: str | Path, up_to: int | None = None) -> Path:
    """Write ``report.md``, ``report.html`` and ``report_curves.png`` into a run or experiment
    directory and return the path of ``report.md`` (the others lie beside it); with
    ``up_to``, a budget-matched report (``report_<up_to>.md`` and so on).

    Raises :class:`~netmarl.errors.ConfigError` for a directory netmarl did not write.
    """
    from netmarl.report.plots import plot_panels

    results = load_results(path, up_to)
    root = results.root
    markdown, page, curves_png = report_paths(root, up_to)
    panels = []
    for task in results.tasks:
        curves = {}
        for algo in results.algos:
            cell = results.get(task, algo)
            if cell is not None:
                curves[algo] = (cell.steps, cell.returns)
        if curves:  # a task with no cell trained this far has nothing to draw
            panels.append((task, curves))
    plot_panels(panels, curves_png, ylabel="return")
    blocks = build_blocks(results)
    _atomic_write(markdown, to_markdown(blocks))
    _atomic_write(page, to_html(blocks, blocks[0].text))
    return markdown
