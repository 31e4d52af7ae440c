"""Sweeps: every grid cell runs once, an interrupted sweep continues, bad grids are refused."""

from __future__ import annotations

import json

from netmarl.cli import main

SWEEP = """
sweep: tiny
out_dir: {out}
base: {{env: random_mdp, env_kwargs: {{num_states: 5, num_actions: 2, num_agents: 3}},
        seeds: 2, steps: 600, eval_every: 300}}
grid:
  algo: [lijia_ac, tabular_iql]
  link_drop: [0.0, 0.5]
  env_kwargs.num_agents: [2, 3]
"""


def test_sweep_runs_the_grid_and_continues_after_interruption(tmp_path, capsys):
    path, out = tmp_path / "sweep.yaml", tmp_path / "out"
    path.write_text(SWEEP.format(out=out))
    assert main(["sweep", str(path)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary) == 4 and all(
        set(v) == {"lijia_ac", "tabular_iql"} for v in summary.values()
    )
    assert "link_drop=0.5, num_agents=2" in summary
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert len(runs) == 8
    assert (out / "curves.csv").read_text().count("\n") == 1 + 8 * 3

    # simulate an interruption: one cell lost its results; a rerun redoes only that cell
    (out / "runs" / runs[0] / "summary.json").unlink()
    capsys.readouterr()
    assert main(["sweep", str(path)]) == 0
    assert "8 cells, 7 already done" in capsys.readouterr().out


def test_empty_axis_and_typos_are_refused(tmp_path, capsys):
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP.format(out=tmp_path / "o").replace("[0.0, 0.5]", "[]"))
    assert main(["sweep", str(path)]) == 2
    assert "'link_drop' must be a non-empty list" in capsys.readouterr().err
    path.write_text(SWEEP.format(out=tmp_path / "o").replace("link_drop:", "link_dorp:"))
    assert main(["sweep", str(path)]) == 2
    assert "Did you mean 'link_drop'" in capsys.readouterr().err


def test_sweep_cells_in_worker_processes_match_a_serial_sweep(tmp_path):
    """``processes: 2`` trains cells in spawned workers; results equal the serial run's."""
    grid = "grid:\n  algo: [lijia_ac, tabular_iql]\n"
    serial, parallel = tmp_path / "serial.yaml", tmp_path / "parallel.yaml"
    head = SWEEP.split("grid:")[0]
    serial.write_text(head.format(out=tmp_path / "s") + grid)
    parallel.write_text(head.format(out=tmp_path / "p") + grid + "processes: 2\n")
    assert main(["sweep", "--quiet", str(serial)]) == 0
    assert main(["sweep", "--quiet", str(parallel)]) == 0
    curves = [(tmp_path / d / "curves.csv").read_text() for d in ("s", "p")]
    assert curves[0] == curves[1] and curves[0].count("\n") == 1 + 2 * 3
