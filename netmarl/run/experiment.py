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
``summary.json`` and ``<experiment>.png``. Cells whose
run directory already holds a summary for the same resolved config are loaded, not rerun.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from netmarl.algos import get_algo
from netmarl.errors import ConfigError
from netmarl.report.plots import plot_panels
from netmarl.report.stats import bootstrap_ci
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


def plan(config: ExperimentConfig) -> list[tuple[str, str, RunConfig]]:
    """Validate the whole experiment up front: (panel title, algo label, run config) cells."""
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
            cells.append((panel.title, label, run))
    return cells


def run_experiment(path: str | Path, *, progress: bool = True, force: bool = False) -> Path:
    """Run (or resume) every cell of an experiment file and write its figure and tables."""
    config = from_dict(ExperimentConfig, load_yaml(path), str(path))
    cells = plan(config)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    summaries: dict[str, dict[str, Any]] = {}
    for title, label, run in cells:
        run_dir = Path(run.out_dir) / str(run.name)
        cached = None if force else _load_cell(run_dir, run)
        if cached is None:
            result = train(run, progress=progress)
            steps, returns, cell_summary = result.steps, result.metrics["return"], summary(result)
        else:
            steps, returns, cell_summary = cached
            if progress:
                print(f"[{title} / {label}] already done in {run_dir}, loaded.")
        curves.setdefault(title, {})[label] = (steps, returns)
        summaries.setdefault(title, {})[label] = cell_summary

    _write_curves(out / "curves.csv", curves)
    _atomic_write(out / "summary.json", json.dumps(summaries, indent=2) + "\n")
    # tabular learners are scored exactly; the others by evaluation episodes
    exact = all(get_algo(run.algo).family == "tabular" for _, _, run in cells)
    ylabel = "exact return" if exact else "return (evaluation episodes)"
    plot_panels(list(curves.items()), out / f"{config.experiment}.png", ylabel=ylabel)
    return out


def slug(text: str) -> str:
    """A file-name-safe form of a title: lower case, runs of other characters become '-'."""
    keep = "".join(c if c.isalnum() else "-" for c in text.lower())
    return "-".join(filter(None, keep.split("-")))


def _load_cell(run_dir: Path, run: RunConfig) -> tuple[np.ndarray, np.ndarray, dict] | None:
    """A finished cell's curve, if its run dir exists and was made by the same config."""
    try:
        saved = yaml.safe_load((run_dir / "config.yaml").read_text())
        cell_summary = json.loads((run_dir / "summary.json").read_text())
        cols = read_metrics_csv(run_dir / "metrics.csv")
    except (OSError, ValueError, yaml.YAMLError):
        return None
    wanted = to_dict(run)
    spec = get_algo(run.algo)
    wanted["algo_kwargs"] = to_dict(from_dict(spec.config_cls, run.algo_kwargs))
    # as read back from YAML: tuples (e.g. hidden sizes) come back as lists
    wanted = json.loads(json.dumps(wanted))
    if any(saved.get(k) != v for k, v in wanted.items()):
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
