"""The command line, run directories, configs and experiments, end to end on tiny settings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from netmarl.cli import main
from netmarl.errors import ConfigError, NetmarlError
from netmarl.report.stats import bootstrap_ci
from netmarl.run import checkpoint
from netmarl.run.config import RunConfig, from_dict
from netmarl.run.driver import read_metrics_csv, train

TINY_ENV = ["--env", "random_mdp", "--env-arg", "num_states=6", "--env-arg", "num_actions=2"]


def tiny_config(tmp_path: Path, **overrides) -> RunConfig:
    base = {
        "env": "random_mdp",
        "env_kwargs": {"num_states": 6, "num_actions": 2, "num_agents": 3},
        "seeds": 3,
        "steps": 2_000,
        "eval_every": 500,
        "out_dir": str(tmp_path),
    }
    return from_dict(RunConfig, {**base, **overrides})


def test_train_writes_a_complete_run_directory(tmp_path, capsys):
    code = main(
        ["train", *TINY_ENV, "--agents", "3", "--seeds", "2", "--steps", "2000",
         "--eval-every", "500", "--eval-episodes", "7", "--out-dir", str(tmp_path), "--name", "r",
         "-q", "--tensorboard"]
    )  # fmt: skip
    assert code == 0
    run = tmp_path / "r"
    for name in ("config.yaml", "metrics.csv", "summary.json", "plot.png", "marl_eval.json"):
        assert (run / name).is_file(), name
    assert list((run / "tb").glob("events.out.tfevents.*")), "TensorBoard events"
    marl_eval = json.loads((run / "marl_eval.json").read_text())
    runs = marl_eval["random_mdp"]["random_mdp[num_actions=2,num_agents=3,num_states=6]"]
    assert set(runs["lijia_ac"]) == {"run_0", "run_1"}
    assert runs["lijia_ac"]["run_1"]["step_4"]["step_count"] == 2000
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["algo"] == "lijia_ac" and config["env_kwargs"]["num_agents"] == 3
    assert config["eval_episodes"] == 7
    assert config["algo_kwargs"]["critic_lr"] > 0  # resolved algorithm defaults are recorded
    metrics = read_metrics_csv(run / "metrics.csv")
    assert sorted(set(metrics["step"])) == [0, 500, 1000, 1500, 2000]
    assert sorted(set(metrics["seed"])) == [0, 1]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final_return"]["ci95"][0] <= summary["final_return"]["mean"]
    assert "optimal" in summary["references"] and "uniform" in summary["references"]
    out = capsys.readouterr().out
    assert "final exact return" in out and str(run) in out


def test_same_config_and_seed_give_identical_metrics(tmp_path):
    config = tiny_config(tmp_path)
    first = train(config, progress=False, write=False)
    second = train(config, progress=False, write=False)
    for name in first.metrics:
        np.testing.assert_array_equal(first.metrics[name], second.metrics[name])
    third = train(tiny_config(tmp_path, seed=1), progress=False, write=False)
    assert not np.array_equal(first.metrics["return"], third.metrics["return"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--algo", "lijia_acc"], "Did you mean 'lijia_ac'"),
        (["train", "--env", "lijia_mpd"], "Did you mean 'lijia_mdp'"),
        (["train", "--graph", "rnig"], "Did you mean 'ring'"),
        (["train", "--algo-arg", "critic_lrr=0.1"], "unknown key 'critic_lrr'"),
        (["train", "--algo-arg", "critic_lr=fast"], "'critic_lr' must be float"),
        (["train", "--env-arg", "num_sates=5"], "num_states"),
        (["train", "--link-drop", "1.0"], "link"),
        (["train", "--algo", "central_ac", "--env", "zhang_mdp", "--agents", "20"], "joint"),
        (["train", "--agents", "1"], "agents"),
        (["train", "--steps", "0"], "steps must be >= 1"),
    ],
)
def test_bad_input_is_one_clear_line(argv, message, capsys, tmp_path):
    code = main([*argv, "--out-dir", str(tmp_path), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("netmarl: error: ") and message in err, err
    assert "Traceback" not in err and err.count("\n") == 1


def test_disconnected_custom_graph_is_refused():
    with pytest.raises(NetmarlError, match="disconnected"):
        from netmarl.run.driver import build

        adjacency = [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]
        build(from_dict(RunConfig, {"graph": "custom", "graph_kwargs": {"adjacency": adjacency}}))


def test_config_rejects_unknown_keys_and_wrong_types():
    with pytest.raises(ConfigError, match="Did you mean 'seeds'"):
        from_dict(RunConfig, {"sedes": 3})
    with pytest.raises(ConfigError, match="'steps' must be int"):
        from_dict(RunConfig, {"steps": "many"})
    with pytest.raises(ConfigError, match="gamma"):
        from_dict(RunConfig, {"gamma": 1.5})


def test_list_names_everything(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    names = "lijia_ac central_ac joint_q tabular_iql lijia_mdp zhang_mdp didactic hallway ring grid"
    for name in (*names.split(), "erdos_renyi", "metropolis", "max_degree", "laplacian"):
        assert name in out


EXPERIMENT = """
experiment: tiny
out_dir: {out}
common: {{env: random_mdp, env_kwargs: {{num_states: 5, num_actions: 2, num_agents: 2}},
          seeds: 2, steps: 1000, eval_every: 500}}
panels:
  - title: "(a) two agents"
    algos:
      Algorithm 1: {{algo: lijia_ac}}
      joint Q: {{algo: joint_q}}
  - title: "(b) three agents"
    overrides: {{env_kwargs: {{num_agents: 3}}}}
    algos:
      Algorithm 1: {{algo: lijia_ac}}
"""


def test_experiment_runs_every_cell_and_resumes(tmp_path, capsys):
    path = tmp_path / "exp.yaml"
    out = tmp_path / "results"
    path.write_text(EXPERIMENT.format(out=out))
    assert main(["run", str(path), "-q"]) == 0
    curves = (out / "curves.csv").read_text().splitlines()
    assert curves[0] == "panel,algo,step,mean,ci95_low,ci95_high,seeds"
    assert len(curves) == 1 + 3 * 3  # 3 cells x 3 evaluation points
    assert (out / "tiny.png").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"(a) two agents", "(b) three agents"}
    capsys.readouterr()
    assert main(["run", str(path)]) == 0  # a rerun loads finished cells instead of training
    assert capsys.readouterr().out.count("] already done") == 3
    assert (out / "curves.csv").read_text().splitlines() == curves


def test_only_trains_the_chosen_cells_and_the_tables_keep_every_finished_one(tmp_path, capsys):
    path, out = tmp_path / "exp.yaml", tmp_path / "results"
    path.write_text(EXPERIMENT.format(out=out))
    assert main(["run", str(path), "--only", "nothing*"]) == 2
    err = capsys.readouterr().err
    assert "--only 'nothing*' matches no cell" in err and "'(a) two agents / joint Q'" in err
    assert not out.exists()

    assert main(["run", str(path), "--only", "(B)*"]) == 0  # case-insensitive
    assert "3 cells, 0 already done, 2 left for another run" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["b-three-agents--algorithm-1"]
    assert set(json.loads((out / "summary.json").read_text())) == {"(b) three agents"}

    assert main(["run", str(path), "--only", "*/ joint q", "(a)*"]) == 0
    printed = capsys.readouterr().out
    assert "3 cells, 1 already done" in printed and "left for another" not in printed
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["(a) two agents"]) == {"Algorithm 1", "joint Q"}
    assert set(summary["(b) three agents"]) == {"Algorithm 1"}


def test_an_interrupted_cell_continues_from_its_checkpoint(tmp_path, capsys):
    """A cell stopped after its first checkpoint resumes there and ends as if never stopped;
    a cell whose checkpoints are unreadable trains again from the start."""
    path, out = tmp_path / "exp.yaml", tmp_path / "results"
    path.write_text(EXPERIMENT.format(out=out).replace("eval_every: 500", "eval_every: 500, "
                                                       "checkpoint_every: 1"))  # fmt: skip
    assert main(["run", str(path), "-q"]) == 0
    cells = sorted((out / "runs").iterdir())
    whole = {c.name: (c / "metrics.csv").read_bytes() for c in cells}
    for cell in cells[:2]:  # as if killed after the first of two chunks
        (cell / "summary.json").unlink()
        (cell / "metrics.csv").unlink()
        checkpoint.list_checkpoints(cell / "checkpoints")[-1].unlink()
    only = checkpoint.list_checkpoints(cells[1] / "checkpoints")
    assert len(only) == 1
    only[0].write_bytes(b"truncated")
    capsys.readouterr()
    assert main(["run", str(path)]) == 0
    printed = capsys.readouterr().out
    assert f"{cells[0]}: continuing from its newest checkpoint" in printed
    assert f"{cells[1]}: cannot continue" in printed
    assert "3 cells, 1 already done" in printed
    assert {c.name: (c / "metrics.csv").read_bytes() for c in cells} == whole


def test_a_cell_written_before_an_option_existed_is_still_done(tmp_path, capsys):
    """A finished cell whose saved config lacks an algorithm option added since (left at its
    default here) is loaded, not retrained; one whose saved value differs is retrained."""
    import yaml

    path, out = tmp_path / "exp.yaml", tmp_path / "results"
    path.write_text(EXPERIMENT.format(out=out))
    assert main(["run", str(path), "-q"]) == 0
    cells = sorted((out / "runs").iterdir())
    first, second = (c / "config.yaml" for c in cells[:2])
    saved = yaml.safe_load(first.read_text())
    option = sorted(saved["algo_kwargs"])[0]
    del saved["algo_kwargs"][option]  # as written before the option existed
    first.write_text(yaml.safe_dump(saved))
    saved = yaml.safe_load(second.read_text())
    saved["algo_kwargs"]["no_such_option"] = 1  # an option that no longer exists
    second.write_text(yaml.safe_dump(saved))
    capsys.readouterr()
    assert main(["run", str(path)]) == 0
    assert "3 cells, 2 already done" in capsys.readouterr().out


def test_reuse_loads_another_experiments_finished_cell_with_the_same_config(tmp_path, capsys):
    """A cell of a second experiment configured like a finished cell of the first (its name
    and out_dir apart) is loaded from there, not trained; the other cells train as usual."""
    first, out = tmp_path / "first.yaml", tmp_path / "first"
    first.write_text(EXPERIMENT.format(out=out))
    assert main(["run", str(first), "-q"]) == 0
    second, out2 = tmp_path / "second.yaml", tmp_path / "second"
    second.write_text(f"""
experiment: second
out_dir: {out2}
reuse: [{out}, {tmp_path / "not_run_yet"}]
common: {{env: random_mdp, env_kwargs: {{num_states: 5, num_actions: 2, num_agents: 2}},
          seeds: 2, steps: 1000, eval_every: 500}}
panels:
  - title: "lr"
    algos:
      as in first: {{algo: joint_q}}
      other seeds: {{algo: joint_q, seeds: 3}}
""")
    capsys.readouterr()
    assert main(["run", str(second)]) == 0
    printed = capsys.readouterr().out
    reused = out / "runs" / "a-two-agents--joint-q"
    assert f"[lr / as in first] the same config finished in {reused}, loaded." in printed
    assert "2 cells, 1 already done" in printed
    assert [p.name for p in (out2 / "runs").iterdir()] == ["lr--other-seeds"]
    summary = json.loads((out2 / "summary.json").read_text())["lr"]
    assert summary["as in first"] == json.loads((reused / "summary.json").read_text())
    listed = json.loads((out2 / "cells.json").read_text())
    assert listed[0]["run"] == "../first/runs/a-two-agents--joint-q"
    assert main(["report", str(out2), "--up-to", "1000"]) == 0
    assert main(["run", str(second), "--force", "--only", "*as in first", "-q"]) == 0
    assert (out2 / "runs" / "lr--as-in-first" / "summary.json").is_file()  # --force: here


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux affinity")
def test_cell_workers_take_a_core_each():
    """``--processes N`` pins each worker to its own core (while there are enough cores)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from netmarl.run.experiment import _cores_for_workers, _init_worker

    context = get_context("spawn")
    cores = sorted(os.sched_getaffinity(0))
    assert _cores_for_workers(context, len(cores) + 1) is None
    queue = _cores_for_workers(context, 1)
    with ProcessPoolExecutor(1, context, _init_worker, ({}, queue)) as pool:
        assert pool.submit(os.sched_getaffinity, 0).result() == {cores[0]}


def test_experiment_with_a_typo_fails_before_training(tmp_path, capsys):
    path = tmp_path / "exp.yaml"
    path.write_text(EXPERIMENT.format(out=tmp_path / "r").replace("algo: joint_q", "algo: jointq"))
    assert main(["run", str(path)]) == 2
    assert "Did you mean 'joint_q'" in capsys.readouterr().err
    assert not (tmp_path / "r" / "runs").exists()


def test_train_refuses_zero_evaluation_episodes(tmp_path, capsys):
    """A count of evaluation episodes below one is refused before training."""
    args = ["train", "--algo", "iql", "--env", "didactic", "--out-dir", str(tmp_path), "-q"]
    assert main([*args, "--eval-episodes", "0"]) == 2
    assert "eval_episodes must be >= 1, got 0" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_yaml_that_does_not_parse(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("algo: [lijia_ac\n")
    assert main(["run", str(path)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_bootstrap_interval_brackets_the_mean():
    rng = np.random.default_rng(0)
    values = rng.normal(1.0, 0.5, size=(10, 4))
    band = bootstrap_ci(values)
    assert np.all(band.low <= band.mean) and np.all(band.mean <= band.high)
    assert np.all(band.high - band.low < 1.0)
    single = bootstrap_ci(np.ones((1, 3)))
    np.testing.assert_array_equal(single.low, single.high)
    constant = bootstrap_ci(np.full((5,), 2.0))
    assert float(constant.low) == float(constant.high) == 2.0


def test_a_finished_cell_with_tuple_settings_is_recognised(tmp_path):
    """Default hidden sizes are tuples in the config but lists in the saved YAML; a finished
    cell must still count as done (it used to be retrained on every rerun)."""
    from netmarl.algos import get_algo
    from netmarl.run.driver import _resolved_yaml
    from netmarl.run.experiment import _load_cell

    run = RunConfig(algo="independent_ac", env="hallway")
    algo_config = from_dict(get_algo("independent_ac").config_cls, run.algo_kwargs)
    assert isinstance(algo_config.hidden, tuple)
    (tmp_path / "config.yaml").write_text(_resolved_yaml(run, algo_config))
    (tmp_path / "summary.json").write_text("{}")
    (tmp_path / "metrics.csv").write_text("seed,step,return\n0,0,1.5\n0,200,2.5\n")
    steps, returns, _ = _load_cell(tmp_path, run)
    assert steps.tolist() == [0, 200] and returns.tolist() == [[1.5, 2.5]]
    changed = RunConfig(algo="independent_ac", env="hallway", algo_kwargs={"hidden": [32]})
    assert _load_cell(tmp_path, changed) is None


def test_pause_at_trains_every_cell_to_a_common_budget_and_a_rerun_finishes_it(tmp_path, capsys):
    """``--pause-at`` leaves each cell checkpointed at the budget with its progress.csv; a
    rerun without it ends bit-identical to an experiment that was never paused."""
    text = EXPERIMENT.replace("steps: 1000", "steps: 1500")
    paused_yaml, whole_yaml = tmp_path / "paused.yaml", tmp_path / "whole.yaml"
    paused_yaml.write_text(text.format(out=tmp_path / "paused"))
    whole_yaml.write_text(text.format(out=tmp_path / "whole"))
    assert main(["run", str(whole_yaml), "-q"]) == 0

    assert main(["run", str(paused_yaml), "--pause-at", "0"]) == 2
    assert "pause_at must be a positive number of env steps" in capsys.readouterr().err
    assert main(["run", str(paused_yaml), "--pause-at", "600"]) == 0
    assert capsys.readouterr().out.count("paused at 1,000 steps") == 3
    cells = sorted((tmp_path / "paused" / "runs").iterdir())
    for cell in cells:
        assert not (cell / "metrics.csv").exists()
        rows = (cell / "progress.csv").read_text().splitlines()
        assert [r.split(",")[1] for r in rows[1:]] == ["0", "0", "500", "500", "1000", "1000"]
    assert main(["run", str(paused_yaml), "--pause-at", "600"]) == 0  # already there
    assert capsys.readouterr().out.count("paused at 1,000 steps") == 3

    # a budget-matched report: the paused cells and the finished ones, both cut at 1000
    assert main(["report", str(tmp_path / "paused"), "--up-to", "1500"]) == 2
    assert "has evaluations up to 1,500 env steps yet" in capsys.readouterr().err
    tables = []
    for name in ("paused", "whole"):
        assert main(["report", str(tmp_path / name), "--up-to", "1000"]) == 0
        text = (tmp_path / name / "report_1000.md").read_text()
        assert (tmp_path / name / "report_curves_1000.png").is_file()
        tables.append(text.split("## Maximum average return")[1].split("## Probability")[0])
    assert tables[0] == tables[1] and "cut at 1,000 env steps" in text
    assert "| 1,000 |" in tables[0] and "1,500" not in tables[0]
    (tmp_path / "whole" / "cells.json").unlink()  # as written by an older netmarl
    assert main(["report", str(tmp_path / "whole"), "--up-to", "1000"]) == 2
    assert "has no cells.json" in capsys.readouterr().err

    assert main(["run", str(paused_yaml), "-q"]) == 0
    for cell in cells:
        whole = tmp_path / "whole" / "runs" / cell.name / "metrics.csv"
        assert (cell / "metrics.csv").read_bytes() == whole.read_bytes()
        assert not (cell / "progress.csv").exists()
