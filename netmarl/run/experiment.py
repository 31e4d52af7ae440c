"""Experiments: one YAML file reproduces one paper figure (several panels x algorithms).

File layout::

    experiment: lijia_fig1          # name; results go to <out_dir>/
    description: "..."
    out_dir: experiments/results/lijia_random_mdp
    common: {env: lijia_mdp, seeds: 10, steps: 300000, ...}      # RunConfig keys
    panels:
      - title: "(a) N = 4"
        overrides: {env_kwargs: {num_agents: 4}}                  # RunConfig keys
        algos:                                                    # label -> overrides
          Algorithm 1: {algo: lijia_ac}
          centralized AC: {algo: central_ac}

Each (panel, algorithm) cell is one run (its seeds vmapped) with its own run directory under
``<out_dir>/runs/``. The experiment writes ``curves.csv`` (mean and 95% bootstrap CI of the
return per evaluation point: exact for tabular learners, over evaluation episodes otherwise),
``summary.json`` and ``<experiment>.png``, rewritten as each cell finishes. Cells whose
run directory already holds a summary for the same resolved config are loaded, not rerun; an
interrupted cell continues from its newest checkpoint. ``processes: 2`` (or ``netmarl run
--processes 2``) trains two cells at a time in worker processes, one core each.

``reuse: [experiments/results/other]`` lists the out_dirs of other experiments: a cell not
done here whose resolved config equals a finished run of theirs (all but ``name`` and
``out_dir``) is loaded from there instead of being trained again (``--force`` trains it here).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import queue
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from netmarl.algos import get_algo
from netmarl.errors import ConfigError
from netmarl.report.plots import plot_panels
from netmarl.report.stats import bootstrap_ci
from netmarl.run.checkpoint import CheckpointError, list_checkpoints
from netmarl.run.config import RunConfig, from_dict, to_dict
from netmarl.run.driver import (
    _atomic_write,
    build,
    read_metrics_csv,
    summary,
    train,
    with_overrides,
)


@dataclass(frozen=True)
class PanelConfig:
    title: str
    algos: dict[str, Any]
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExperimentConfig:
    experiment: str
    panels: list[Any]
    description: str = ""
    out_dir: str = "runs/experiments"
    common: dict[str, Any] = field(default_factory=dict)
    processes: int = 1  # cells train in this many worker processes (one core each)
    reuse: list[str] = field(default_factory=list)  # other out_dirs with finished cells to load


@dataclass(frozen=True)
class Cell:
    group: str  # panel title (experiment) or the non-algorithm settings (sweep)
    label: str  # the algorithm's label
    config: RunConfig
    reused_from: Path | None = None  # another experiment's finished run with the same config


# the keys that place a run, not what it trains: a finished run of another experiment whose
# config differs only in these is the same cell
PLACEMENT_KEYS = ("name", "out_dir")

CellResult = tuple[np.ndarray, np.ndarray, dict]


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Parse a YAML file into a mapping, with one clear error for each way it can be wrong."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist.")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f"{path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of keys to values at the top level.")
    return data


def plan(config: ExperimentConfig) -> list[Cell]:
    """Validate the whole experiment up front: one cell per (panel, algorithm)."""
    if not config.panels:
        raise ConfigError(f"experiment {config.experiment!r} has no panels.")
    base = from_dict(RunConfig, config.common, f"common of {config.experiment}")
    cells = []
    for i, raw in enumerate(config.panels):
        panel = from_dict(PanelConfig, raw, f"panel {i + 1} of {config.experiment}")
        if not panel.algos:
            raise ConfigError(f"panel {panel.title!r} lists no algorithms.")
        panel_base = with_overrides(base, panel.overrides)
        for label, algo_overrides in panel.algos.items():
            run = with_overrides(panel_base, algo_overrides or {})
            cell_name = f"{slug(panel.title)}--{slug(label)}"
            run = with_overrides(
                run, {"name": cell_name, "out_dir": str(Path(config.out_dir) / "runs")}
            )
            build(run)  # every cell is checked before any training starts
            cells.append(Cell(panel.title, label, run))
    return cells


def run_experiment(
    path: str | Path,
    *,
    progress: bool = True,
    force: bool = False,
    processes: int | None = None,
    only: list[str] | None = None,
    pause_at: int | None = None,
) -> Path:
    """Run (or resume) every cell of an experiment file and write its figure and tables.

    ``only``: train just the cells whose ``"<panel title> / <label>"`` matches one of these
    shell-style patterns (case-insensitive), in the given order of patterns; the tables
    still hold every finished cell. ``pause_at``: train each cell to this many env steps
    only and checkpoint it there (see ``train``); a later run continues it.
    """
    config = from_dict(ExperimentConfig, load_yaml(path), str(path))
    cells = plan(config)
    if not force:
        cells = [_reuse_finished(cell, config.reuse) for cell in cells]
    train_only = None if only is None else select_cells(cells, only)
    # tabular learners are scored exactly; the others by evaluation episodes
    exact = all(get_algo(cell.config.algo).family == "tabular" for cell in cells)
    ylabel = "exact return" if exact else "return (evaluation episodes)"
    out = Path(config.out_dir)
    run_cells(
        cells,
        out,
        config.experiment,
        ylabel=ylabel,
        processes=config.processes if processes is None else processes,
        progress=progress,
        force=force,
        train_only=train_only,
        pause_at=pause_at,
    )
    return out


def _reuse_finished(cell: Cell, reuse: list[str]) -> Cell:
    """``cell``, or the same cell pointed at a finished run under one of the ``reuse``
    out_dirs that trained the same config, when ``cell`` is not done in its own directory.
    An out_dir that does not exist (that experiment not run yet) has nothing to reuse."""
    if not reuse or _finished(_cell_dir(cell), cell.config):
        return cell
    for other in reuse:
        for run_dir in sorted(Path(other).glob("runs/*/")):
            if _finished(run_dir, cell.config, ignore=PLACEMENT_KEYS):
                return dataclasses.replace(cell, reused_from=run_dir)
    return cell


def _finished(run_dir: Path, run: RunConfig, ignore: tuple[str, ...] = ()) -> bool:
    """Whether ``run_dir`` holds a finished run of this config (cheap: no curves read)."""
    return (run_dir / "summary.json").is_file() and _same_config(run_dir, run, ignore)


def select_cells(cells: list[Cell], patterns: list[str]) -> list[int]:
    """Indices of the cells whose ``"<group> / <label>"`` matches a pattern (``fnmatch``,
    case-insensitive), pattern by pattern; a pattern that matches nothing is an error."""
    names = [f"{cell.group} / {cell.label}" for cell in cells]
    chosen: list[int] = []
    for pattern in patterns:
        hits = [i for i, n in enumerate(names) if fnmatch.fnmatch(n.lower(), pattern.lower())]
        if not hits:
            listed = "; ".join(repr(n) for n in names)
            raise ConfigError(
                f"--only {pattern!r} matches no cell. The cells are: {listed}. Patterns are "
                "shell-style, e.g. 'Medium*' or '*/ IQL'."
            )
        chosen += [i for i in hits if i not in chosen]
    return chosen


def run_cells(
    cells: list[Cell],
    out: Path,
    name: str,
    *,
    ylabel: str = "return",
    processes: int = 1,
    progress: bool = True,
    force: bool = False,
    train_only: list[int] | None = None,
    pause_at: int | None = None,
) -> None:
    """Train the cells that are not done yet and write ``out``'s tables after each one.

    ``train_only``: indices of the cells that may train, in this order (default: all, in
    order); finished cells outside it are still loaded into the tables. ``pause_at``: stop
    each cell at this many env steps, checkpointed, to be continued by a later call.

    A finished cell (its run directory holds results for the same resolved config) is
    loaded; an interrupted one continues from its newest checkpoint (``train(resume=True)``),
    so a long experiment survives being stopped at any point. ``summary.json``,
    ``curves.csv`` and ``<name>.png`` are rewritten whenever a cell finishes, holding the
    cells done so far. With ``processes > 1`` cells train in that many spawned workers.
    """
    if processes < 1:
        raise ConfigError(f"processes must be >= 1, got {processes}.")
    out.mkdir(parents=True, exist_ok=True)
    _write_cell_list(out, cells)
    results: dict[int, CellResult] = {}
    unfinished = []
    allowed = range(len(cells)) if train_only is None else train_only
    for i, cell in enumerate(cells):
        ignore = PLACEMENT_KEYS if cell.reused_from else ()
        cached = (
            None if force and i in allowed else _load_cell(_cell_dir(cell), cell.config, ignore)
        )
        if cached is None:
            unfinished.append(i)
            continue
        results[i] = cached
        if progress:
            how = "the same config finished" if cell.reused_from else "already done"
            print(f"[{cell.group} / {cell.label}] {how} in {_cell_dir(cell)}, loaded.")
    todo = [i for i in allowed if i in unfinished]
    skipped = len(unfinished) - len(todo)
    if progress:
        left_out = f", {skipped} left for another run (--only)" if skipped else ""
        print(f"{name}: {len(cells)} cells, {len(results)} already done{left_out}")

    def record(i: int, outcome: tuple[list[int], list[list[float]], dict] | int) -> None:
        if isinstance(outcome, int):  # paused at this many steps
            if progress:
                cell = cells[i]
                where = f"checkpointed in {_cell_dir(cell)}; run again to continue"
                print(f"  {cell.group} / {cell.label}: paused at {outcome:,} steps ({where})")
            return
        steps, returns, cell_summary = outcome
        results[i] = (np.asarray(steps), np.asarray(returns), cell_summary)
        _write_results(out, name, cells, results, ylabel)
        if progress:
            cell = cells[i]
            print(f"  [{len(results)}/{len(cells)}] {cell.group} / {cell.label}: final return "
                  f"{cell_summary['final_return']['mean']:.4f}", flush=True)  # fmt: skip

    if processes > 1 and len(todo) > 1:
        context = get_context("spawn")  # spawn, not fork: JAX's runtime is not fork-safe
        with ProcessPoolExecutor(
            processes,
            mp_context=context,
            initializer=_init_worker,
            initargs=(_compile_cache_settings(), _cores_for_workers(context, processes)),
        ) as pool:
            futures = {
                pool.submit(
                    _run_cell, to_dict(cells[i].config), False, force, progress, pause_at
                ): i
                for i in todo
            }
            for future in as_completed(futures):
                record(futures[future], future.result())
    else:
        for i in todo:
            record(i, _run_cell(to_dict(cells[i].config), progress, force, progress, pause_at))
    _write_results(out, name, cells, results, ylabel)


def _cell_dir(cell: Cell) -> Path:
    """Where the cell's results are: its own run directory, or the reused one."""
    return cell.reused_from or Path(cell.config.out_dir) / str(cell.config.name)


def _run_cell(
    config_dict: dict[str, Any],
    bar: bool,
    fresh: bool,
    announce: bool,
    pause_at: int | None = None,
) -> tuple[list[int], list[list[float]], dict] | int:
    """Train one cell (in this or a worker process), continuing it from its newest
    checkpoint unless ``fresh``; plain data out so it pickles cheaply: the curves and
    summary, or the env steps trained if it paused at ``pause_at``."""
    run = from_dict(RunConfig, config_dict)
    run_dir = Path(run.out_dir) / str(run.name)
    result = None
    if not fresh and _same_config(run_dir, run) and list_checkpoints(run_dir / "checkpoints"):
        if announce:
            print(f"{run_dir}: continuing from its newest checkpoint.", flush=True)
        try:
            result = train(run, progress=bar, run_dir=run_dir, resume=True, pause_at=pause_at)
        except CheckpointError as exc:  # e.g. written by an older version of the learner
            print(f"{run_dir}: cannot continue ({exc}); training it from the start.", flush=True)
    if result is None:
        if announce and not bar:
            print(f"{run_dir}: training.", flush=True)
        result = train(run, progress=bar, run_dir=run_dir, pause_at=pause_at)
    if result.paused:
        return int(result.steps[-1])
    return result.steps.tolist(), result.metrics["return"].tolist(), summary(result)


def _cores_for_workers(context: Any, processes: int) -> Any:
    """A queue holding one core per worker, or None when there are fewer cores than workers
    (then the workers are left to the scheduler)."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) < processes:
        return None
    free = context.Queue()
    for core in cores[:processes]:
        free.put(core)
    return free


def _init_worker(settings: dict[str, Any], cores: Any) -> None:
    """Worker initializer: take a core of its own, and use the parent's persistent XLA
    cache, so a cell compiled before (by the parent or another worker) is not compiled again.

    The core is taken before JAX starts its thread pools, which inherit it. Unpinned, each
    worker's program runs on two XLA threads that hop between both cores, and two workers
    took 1.28x the wall time of two pinned ones on two Medium LBF cells
    (``benchmarks/bench_cell_workers.py``; benchmarks/RESULTS.md, session of 2026-12-08).
    """
    if cores is not None:
        try:  # a worker started later to replace one finds the queue empty: left unpinned
            os.sched_setaffinity(0, {cores.get(timeout=5)})
        except queue.Empty:
            pass
    import jax

    for key, value in settings.items():
        jax.config.update(key, value)


def _compile_cache_settings() -> dict[str, Any]:
    import jax

    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
    return (
        {key: getattr(jax.config, key) for key in names}
        if jax.config.jax_compilation_cache_dir
        else {}
    )


CELL_LIST = "cells.json"


def _write_cell_list(out: Path, cells: list[Cell]) -> None:
    """``cells.json``: every cell's panel, label and run directory, written before training,
    so a report can place cells that have not finished (``netmarl report --up-to``)."""
    listed = []
    for cell in cells:
        # relative to ``out`` (also a reused run's, e.g. ../other/runs/x), so folders can move
        where = os.path.relpath(_cell_dir(cell), out)
        listed.append({"panel": cell.group, "label": cell.label, "run": where})
    _atomic_write(out / CELL_LIST, json.dumps(listed, indent=2) + "\n")


def _write_results(
    out: Path, name: str, cells: list[Cell], results: dict[int, CellResult], ylabel: str
) -> None:
    """``curves.csv``, ``summary.json`` and the plot of the cells in ``results``."""
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    summaries: dict[str, dict[str, Any]] = {}
    for i, cell in enumerate(cells):
        if i in results:
            steps, returns, cell_summary = results[i]
            curves.setdefault(cell.group, {})[cell.label] = (steps, returns)
            summaries.setdefault(cell.group, {})[cell.label] = cell_summary
    _write_curves(out / "curves.csv", curves)
    _atomic_write(out / "summary.json", json.dumps(summaries, indent=2) + "\n")
    if curves:
        plot_panels(list(curves.items()), out / f"{name}.png", ylabel=ylabel)


def slug(text: str) -> str:
    """A file-name-safe form of a title: lower case, runs of other characters become '-'."""
    keep = "".join(c if c.isalnum() else "-" for c in text.lower())
    return "-".join(filter(None, keep.split("-")))


def _same_config(run_dir: Path, run: RunConfig, ignore: tuple[str, ...] = ()) -> bool:
    """Whether ``run_dir`` was written by this resolved config (algorithm defaults filled in),
    the keys in ``ignore`` apart.

    An algorithm option added after the run was written counts as the same where this config
    leaves it at its default (the saved run had the default behaviour)."""
    try:
        saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return False
    if not isinstance(saved, dict):
        return False
    spec = get_algo(run.algo)
    wanted = to_dict(run)
    wanted["algo_kwargs"] = to_dict(from_dict(spec.config_cls, run.algo_kwargs))
    try:  # the saved options with today's defaults for the ones it predates
        saved_algo = from_dict(spec.config_cls, saved.get("algo_kwargs") or {})
    except ConfigError:  # an option that no longer exists
        return False
    saved = {**saved, "algo_kwargs": to_dict(saved_algo)}
    # as read back from YAML: tuples (e.g. hidden sizes) come back as lists
    wanted, saved = json.loads(json.dumps(wanted)), json.loads(json.dumps(saved))
    return all(saved.get(k) == v for k, v in wanted.items() if k not in ignore)


def _load_cell(run_dir: Path, run: RunConfig, ignore: tuple[str, ...] = ()) -> CellResult | None:
    """A finished cell's curve, if its run dir exists and was made by the same config."""
    if not _same_config(run_dir, run, ignore):
        return None
    try:
        cell_summary = json.loads((run_dir / "summary.json").read_text())
        cols = read_metrics_csv(run_dir / "metrics.csv")
    except (OSError, ValueError):
        return None
    seeds = cols["seed"].astype(int)
    steps = np.unique(cols["step"])
    returns = np.full((seeds.max() + 1, len(steps)), np.nan)
    returns[seeds, np.searchsorted(steps, cols["step"])] = cols["return"]
    return steps.astype(int), returns, cell_summary


def _write_curves(path: Path, curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]) -> None:
    lines = ["panel,algo,step,mean,ci95_low,ci95_high,seeds"]
    for title, by_algo in curves.items():
        for label, (steps, values) in by_algo.items():
            band = bootstrap_ci(values)
            for t, step in enumerate(steps):
                lines.append(
                    f'"{title}","{label}",{int(step)},{band.mean[t]:.6g},'
                    f"{band.low[t]:.6g},{band.high[t]:.6g},{values.shape[0]}"
                )
    _atomic_write(path, "\n".join(lines) + "\n")
