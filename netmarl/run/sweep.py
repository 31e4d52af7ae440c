"""Sweeps: a grid over algorithms x environments x graph settings, each cell its own run.

File layout::

    sweep: robustness                    # name
    out_dir: runs/sweeps/robustness
    base: {env: zhang_mdp, seeds: 10, steps: 200000}        # RunConfig keys
    grid:                                                    # axis -> values
      algo: [lijia_ac, tabular_iql]
      link_drop: [0.0, 0.25, 0.5]
      env_kwargs.num_agents: [6, 10]                         # dotted keys reach into dicts
    processes: 1                                             # cells run in parallel when > 1

Seeds are vmapped inside each cell's compiled program; cells run one after another, or in
``processes`` worker processes. Every cell writes ``<out_dir>/runs/<cell>/``; a cell whose
directory already holds a summary for the same resolved config is loaded instead of rerun,
so an interrupted sweep continues where it stopped. The sweep directory has the same layout
as an experiment (``summary.json``, ``curves.csv``, a plot): rows are the settings of the
non-algorithm axes, columns the algorithms, so ``netmarl report`` reads both.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netmarl.errors import ConfigError
from netmarl.run.config import RunConfig, from_dict
from netmarl.run.driver import build, with_overrides
from netmarl.run.experiment import Cell, load_yaml, run_cells, slug


@dataclass(frozen=True)
class SweepConfig:
    sweep: str
    grid: dict[str, Any]
    base: dict[str, Any] = field(default_factory=dict)
    out_dir: str = "runs/sweeps"
    processes: int = 1


def _set_dotted(target: dict[str, Any], key: str, value: Any) -> None:
    head, _, rest = key.partition(".")
    if rest:
        inner = dict(target.get(head) or {})
        if not isinstance(inner, dict):
            raise ConfigError(f"grid axis {key!r}: {head!r} is not a mapping")
        _set_dotted(inner, rest, value)
        target[head] = inner
    else:
        target[head] = value


def plan(config: SweepConfig) -> list[Cell]:
    """Every cell of the grid, validated (names, keys, types, graphs) before training."""
    if not config.grid:
        raise ConfigError(f"sweep {config.sweep!r} has an empty grid: give at least one axis.")
    for axis, values in config.grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(
                f"sweep axis {axis!r} must be a non-empty list of values, got {values!r}."
            )
    base = from_dict(RunConfig, config.base, f"base of sweep {config.sweep!r}")
    axes = list(config.grid)
    cells = []
    for combo in itertools.product(*(config.grid[a] for a in axes)):
        overrides: dict[str, Any] = {}
        for axis, value in zip(axes, combo, strict=True):
            _set_dotted(overrides, axis, value)
        run = with_overrides(base, overrides)
        others = [
            f"{a.split('.')[-1]}={v}" for a, v in zip(axes, combo, strict=True) if a != "algo"
        ]
        row = ", ".join(others) or run.env
        name = slug(f"{row} {run.algo}") if others else slug(run.algo)
        run = with_overrides(run, {"name": name, "out_dir": str(Path(config.out_dir) / "runs")})
        build(run)
        cells.append(Cell(row, run.algo, run))
    return cells


def run_sweep(
    path: str | Path, *, progress: bool = True, force: bool = False, processes: int | None = None
) -> Path:
    """Run (or continue) a sweep file and write its summary, curves and plot."""
    config = from_dict(SweepConfig, load_yaml(path), str(path))
    cells = plan(config)
    out = Path(config.out_dir)
    run_cells(
        cells,
        out,
        slug(config.sweep),
        processes=config.processes if processes is None else processes,
        progress=progress,
        force=force,
    )
    return out
