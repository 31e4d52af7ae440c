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
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from netmarl.errors import ConfigError
from netmarl.report.plots import plot_panels
from netmarl.run.config import RunConfig, from_dict, to_dict
from netmarl.run.driver import _atomic_write, build, summary, train, with_overrides
from netmarl.run.experiment import _load_cell, _write_curves, load_yaml, slug


@dataclass(frozen=True)
class SweepConfig:
    sweep: str
    grid: dict[str, Any]
    base: dict[str, Any] = field(default_factory=dict)
    out_dir: str = "runs/sweeps"
    processes: int = 1


@dataclass(frozen=True)
class Cell:
    row: str  # the non-algorithm settings, e.g. "link_drop=0.25, num_agents=6"
    algo: str
    config: RunConfig


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
    if config.processes < 1:
        raise ConfigError(f"processes must be >= 1, got {config.processes}.")
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


def _share_compile_cache(settings: dict[str, Any]) -> None:
    """Worker initializer: use the parent's persistent XLA cache, so a cell compiled before
    (by the parent or another worker) is not compiled again."""
    import jax

    for name, value in settings.items():
        jax.config.update(name, value)


def _compile_cache_settings() -> dict[str, Any]:
    import jax

    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
    return (
        {name: getattr(jax.config, name) for name in names}
        if jax.config.jax_compilation_cache_dir
        else {}
    )


def _run_cell(
    config_dict: dict[str, Any], progress: bool = False
) -> tuple[list[int], list[list[float]], dict]:
    """Train one cell (in this or a worker process); plain data so it pickles cheaply."""
    run = from_dict(RunConfig, config_dict)
    result = train(run, progress=progress)
    return result.steps.tolist(), result.metrics["return"].tolist(), summary(result)


def run_sweep(path: str | Path, *, progress: bool = True, force: bool = False) -> Path:
    """Run (or continue) a sweep file and write its summary, curves and plot."""
    config = from_dict(SweepConfig, load_yaml(path), str(path))
    cells = plan(config)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[int, tuple[np.ndarray, np.ndarray, dict]] = {}
    todo = []
    for i, cell in enumerate(cells):
        cached = (
            None
            if force
            else _load_cell(Path(cell.config.out_dir) / str(cell.config.name), cell.config)
        )
        if cached is not None:
            results[i] = cached
        else:
            todo.append(i)
    if progress:
        print(f"sweep {config.sweep}: {len(cells)} cells, {len(cells) - len(todo)} already done")

    def record(i: int, outcome: tuple) -> None:
        steps, returns, cell_summary = outcome
        results[i] = (np.asarray(steps), np.asarray(returns), cell_summary)
        if progress:
            print(f"  [{len(results)}/{len(cells)}] {cells[i].row} / {cells[i].algo}: "
                  f"final return {cell_summary['final_return']['mean']:.4f}")  # fmt: skip

    if config.processes > 1 and len(todo) > 1:
        # spawn, not fork: JAX's runtime is not fork-safe
        with ProcessPoolExecutor(
            config.processes,
            mp_context=get_context("spawn"),
            initializer=_share_compile_cache,
            initargs=(_compile_cache_settings(),),
        ) as pool:
            futures = {i: pool.submit(_run_cell, to_dict(cells[i].config)) for i in todo}
            for i, future in futures.items():
                record(i, future.result())
    else:
        for i in todo:
            record(i, _run_cell(to_dict(cells[i].config), progress))  # a bar per cell

    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    summaries: dict[str, dict[str, Any]] = {}
    for i, cell in enumerate(cells):
        steps, returns, cell_summary = results[i]
        curves.setdefault(cell.row, {})[cell.algo] = (steps, returns)
        summaries.setdefault(cell.row, {})[cell.algo] = cell_summary
    _write_curves(out / "curves.csv", curves)
    _atomic_write(out / "summary.json", json.dumps(summaries, indent=2) + "\n")
    plot_panels(list(curves.items()), out / f"{slug(config.sweep)}.png", ylabel="return")
    return out
