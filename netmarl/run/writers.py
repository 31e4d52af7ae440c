"""Metric writers of a run directory: CSV (always), marl-eval JSON, TensorBoard (optional).

``metrics.csv`` has one row per (seed, evaluation step); per-chunk training metrics are
empty at step 0. ``marl_eval.json`` follows the layout of InstaDeep's marl-eval tools
(``env -> task -> algorithm -> run_<seed> -> step_<i>``, with ``step_count`` and metric
lists, plus ``absolute_metrics``) so existing plotting pipelines can read netmarl runs.
TensorBoard event files need the optional ``tensorboardX`` package.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from netmarl.errors import ConfigError


def _value(series: np.ndarray, seed: int, t: int, num_points: int) -> float | None:
    """The metric at evaluation point t; per-chunk series have no value at step 0."""
    idx = t if series.shape[1] == num_points else t - 1
    return None if idx < 0 else series[seed, idx]


def metrics_csv(steps: np.ndarray, metrics: dict[str, np.ndarray]) -> str:
    names = sorted(metrics)
    rows = ["seed,step," + ",".join(names)]
    num_seeds = metrics["return"].shape[0]
    for t, step in enumerate(steps):
        for seed in range(num_seeds):
            values = [_value(metrics[n], seed, t, len(steps)) for n in names]
            # .9g round-trips float32 exactly
            rows.append(
                f"{seed},{step}," + ",".join("" if v is None else f"{v:.9g}" for v in values)
            )
    return "\n".join(rows) + "\n"


def marl_eval_json(
    steps: np.ndarray, metrics: dict[str, np.ndarray], env: str, task: str, algo: str
) -> str:
    """The marl-eval raw-data layout; each evaluation's "return" is a one-element list
    (tabular returns are exact, so there is one value, not a list of episode returns)."""
    runs: dict[str, Any] = {}
    returns = metrics["return"]
    for seed in range(returns.shape[0]):
        run: dict[str, Any] = {}
        for t, step in enumerate(steps):
            entry: dict[str, Any] = {"step_count": int(step)}
            for name, series in metrics.items():
                v = _value(series, seed, t, len(steps))
                if v is not None:
                    entry[name] = [float(v)]
            run[f"step_{t}"] = entry
        run["absolute_metrics"] = {"return": [float(returns[seed].max())]}
        runs[f"run_{seed}"] = run
    return json.dumps({env: {task: {algo: runs}}}, indent=1) + "\n"


def tensorboard(run_dir: Path, steps: np.ndarray, metrics: dict[str, np.ndarray]) -> Path:
    """Write TensorBoard scalars (mean over seeds and per seed) under ``run_dir/tb``."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ConfigError(
            "tensorboard logging needs the tensorboardX package: "
            'pip install "netmarl[tensorboard]" (or set tensorboard: false).'
        ) from None
    out = run_dir / "tb"
    with SummaryWriter(str(out)) as writer:
        for name, series in metrics.items():
            for t, step in enumerate(steps):
                values = [_value(series, s, t, len(steps)) for s in range(series.shape[0])]
                if values[0] is None:
                    continue
                writer.add_scalar(f"{name}/mean", float(np.mean(values)), int(step))
                for seed, v in enumerate(values):
                    writer.add_scalar(f"{name}/seed_{seed}", float(v), int(step))
    return out
