"""The training driver: build, compile once, run chunks, write a run directory.

Inside a chunk everything is compiled (``jit(vmap(chunk_fn))`` over seeds: ``lax.scan`` over
environment steps, then an exact evaluation). Between chunks Python shows progress and
collects metrics; nothing in the inner loop touches Python.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import yaml

from netmarl.algos import AlgoSpec, get_algo
from netmarl.algos.base import Trainer, vmap_seeds
from netmarl.algos.tabular_base import tabular_trainer
from netmarl.envs import make_env
from netmarl.errors import ConfigError, NetmarlError
from netmarl.network import make_network
from netmarl.report.stats import final_return, max_average_return
from netmarl.run import checkpoint, writers
from netmarl.run.config import RunConfig, from_dict, to_dict

# Joint-action tables above this many entries per seed are refused (memory: 10 seeds x 3
# tables x 4 bytes x 2^22 is already 0.5 GB).
MAX_JOINT_TABLE = 1 << 22
# The optimal reference return needs dense P [S, A^N, S]; skip it above this many floats.
MAX_DENSE_MODEL = 1 << 26


@dataclass
class Built:
    """Everything a run needs, validated, before anything is compiled."""

    config: RunConfig
    spec: AlgoSpec
    algo_config: Any
    env: Any
    network: Any
    learner: Any


@dataclass
class RunResult:
    config: RunConfig
    algo_config: Any
    steps: np.ndarray  # [T] env steps at each evaluation (T = chunks + 1, from 0)
    metrics: dict[str, np.ndarray]  # name -> [seeds, T]
    references: dict[str, float]  # returns of reference policies (uniform, optimal)
    wall_time: float  # seconds, compilation included
    final_state: Any = None  # the train state after the last chunk (params, env, keys)
    run_dir: Path | None = None
    paused: bool = False  # stopped at ``pause_at``, checkpointed, not finished

    @property
    def final_return(self) -> np.ndarray:
        return self.metrics["return"][:, -1]


def build(config: RunConfig) -> Built:
    """Validate the whole configuration and construct env, network and learner."""
    config.validate()
    spec = get_algo(config.algo)
    algo_config = from_dict(spec.config_cls, config.algo_kwargs, f"algo_kwargs of {spec.name}")
    env = make_env(config.env, **config.env_kwargs)
    if spec.family == "tabular":
        if not hasattr(env, "transition_probs") or not env.spec.discrete:
            raise ConfigError(
                f"algorithm {spec.name!r} is tabular: it needs a finite MDP with discrete "
                f"actions (lijia_mdp, zhang_mdp, random_mdp, didactic), and {config.env!r} "
                "is not one."
            )
        if not spec.networked:
            table = env.num_states * env.num_actions**env.num_agents
            if table > MAX_JOINT_TABLE:
                raise ConfigError(
                    f"{spec.name!r} keeps a table over the joint action: {table:,} entries for "
                    f"{env.num_agents} agents. Use a decentralized learner (lijia_ac, tabular_iql) "
                    "or fewer agents."
                )
    network = make_network(
        config.graph,
        num_agents=env.spec.num_agents,
        weights=config.weights,
        rounds=config.rounds,
        link_drop=config.link_drop,
        random_edges=config.random_edges,
        # consensus only reaches the average on a connected graph (baselines do not talk)
        require_connected=spec.networked,
        **config.graph_kwargs,
    )
    if network.num_agents != env.spec.num_agents:
        raise ConfigError(
            f"the graph has {network.num_agents} agents but {config.env!r} has "
            f"{env.spec.num_agents}: give a graph with one node per agent."
        )
    learner = spec.make(env, config.gamma, algo_config, network)
    return Built(config, spec, algo_config, env, network, learner)


def make_trainer(built: Built) -> Trainer:
    """The learner's :class:`~netmarl.algos.base.Trainer` for one seed (chunks of
    ``eval_every`` env steps)."""
    config = built.config
    if is_tabular(built):
        return tabular_trainer(built.env, built.learner, config.eval_every, config.gamma)
    return built.learner.trainer(config.eval_every, config.eval_episodes)


def is_tabular(built: Built) -> bool:
    return built.spec.family == "tabular"


def reference_returns(env: Any, gamma: float) -> dict[str, float]:
    """Exact returns of the uniform-random joint policy and of an optimal policy."""
    from netmarl.envs.planning import optimal_return
    from netmarl.envs.tabular import evaluate_product_policy

    uniform = jnp.full((env.num_agents, env.num_states, env.num_actions), 1.0 / env.num_actions)
    refs = {"uniform": float(evaluate_product_policy(env, uniform, gamma).ret)}
    if env.num_states**2 * env.num_actions**env.num_agents <= MAX_DENSE_MODEL:
        refs["optimal"] = float(optimal_return(env, gamma))
    return refs


def train(
    config: RunConfig,
    *,
    progress: bool = True,
    write: bool = True,
    built: Built | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    pause_at: int | None = None,
) -> RunResult:
    """Train ``config.seeds`` seeds as one compiled program and (optionally) write a run dir.

    With ``write``, the run directory gets its ``config.yaml`` first, a checkpoint every
    ``config.checkpoint_every`` chunks and at the end (with ``progress.csv``, the evaluations
    so far, until the run finishes), and the results last. ``resume``
    continues from the newest good checkpoint of ``run_dir``; because the whole train state
    (PRNG keys included) is checkpointed, a resumed run ends bit-identical to an
    uninterrupted one.

    ``pause_at``: stop once this many env steps are trained (rounded up to a whole
    evaluation interval), checkpoint there and return a ``paused`` result without writing
    results, so a long experiment can be trained to a common budget now and finished later.
    """
    if pause_at is not None and pause_at < 1:
        raise ConfigError(f"pause_at must be a positive number of env steps, got {pause_at}.")
    if pause_at is not None and not (write or resume):
        raise ConfigError("pause_at needs a run directory to checkpoint into (write=True).")
    built = built or build(config)
    start = time.perf_counter()
    trainer = make_trainer(built)
    keys = jax.random.split(jax.random.key(config.seed), config.seeds)
    state = jax.jit(jax.vmap(trainer.init))(keys)
    initial = jax.jit(jax.vmap(trainer.evaluate))
    chunk = jax.jit(vmap_seeds(trainer.chunk))

    if write or resume:
        run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
        run_dir.mkdir(parents=True, exist_ok=True)
        _atomic_write(run_dir / "config.yaml", _resolved_yaml(config, built.algo_config))
        if not resume:  # a fresh run must not later resume from an older run's checkpoints
            for stale in checkpoint.list_checkpoints(run_dir / "checkpoints"):
                stale.unlink()
    history: list[dict[str, np.ndarray]] = []
    returns0 = np.asarray(initial(state))
    first_chunk = 0
    earlier_wall = 0.0  # seconds spent before this run was last stopped
    if resume:
        first_chunk, state, extra = checkpoint.load_latest(run_dir / "checkpoints", state)
        history = [
            {k: np.asarray(v["values"], dtype=v["dtype"]) for k, v in h.items()}
            for h in extra["history"]
        ]
        returns0 = np.asarray(extra["returns0"], dtype=returns0.dtype)
        earlier_wall = float(extra.get("wall_time_s", 0.0))

    def save(chunk_index: int, good_state: Any) -> None:
        extra = {
            "history": [
                {k: {"dtype": str(v.dtype), "values": v.tolist()} for k, v in h.items()}
                for h in history
            ],
            "returns0": returns0.tolist(),
            "wall_time_s": earlier_wall + time.perf_counter() - start,
        }
        if history:  # the evaluations so far, readable while the run goes on
            steps, stacked = _curves(history, returns0, config.eval_every)
            _atomic_write(run_dir / "progress.csv", writers.metrics_csv(steps, stacked))
        checkpoint.save(run_dir / "checkpoints", chunk_index, good_state, extra)

    bar = _progress(config, progress, initial=first_chunk * config.eval_every)
    paused = False
    for c in range(first_chunk, config.num_chunks):
        if pause_at is not None and c * config.eval_every >= pause_at:
            already_saved = c == first_chunk or (
                config.checkpoint_every and c % config.checkpoint_every == 0
            )
            if not already_saved:
                save(c, state)
            paused = True
            break
        new_state, metrics = chunk(state)
        metrics = jax.device_get(metrics)
        problem = _non_finite(metrics, trainer.params(new_state))
        if problem:
            step = (c + 1) * config.eval_every
            if write:
                save(c, state)  # the last good state, so nothing is lost
            where = f"; the last good state is checkpointed in {run_dir}" if write else ""
            raise NetmarlError(
                f"{problem} became NaN/inf in the chunk ending at step {step:,}{where}. "
                "Lower the learning rates (algo_kwargs) or check the environment's rewards."
            )
        state = new_state
        history.append(metrics)
        if write and config.checkpoint_every and (c + 1) % config.checkpoint_every == 0:
            save(c + 1, state)
        if bar is not None:
            bar.update(config.eval_every)
            bar.set_postfix(ret=f"{metrics['return'].mean():.3f}")
    if bar is not None:
        bar.close()
    if (
        not paused
        and write
        and (not config.checkpoint_every or config.num_chunks % config.checkpoint_every)
    ):
        save(config.num_chunks, state)
    wall = earlier_wall + time.perf_counter() - start  # a resumed run counts all its sessions

    steps, stacked = _curves(history, returns0, config.eval_every)
    result = RunResult(
        config=config,
        algo_config=built.algo_config,
        steps=steps,
        metrics=stacked,
        references=reference_returns(built.env, config.gamma) if is_tabular(built) else {},
        wall_time=wall,
        final_state=state,
        run_dir=run_dir if paused else None,  # where to continue from
        paused=paused,
    )
    if write and not paused:
        result.run_dir = write_run(result, run_dir)
        (result.run_dir / "progress.csv").unlink(missing_ok=True)  # metrics.csv has it all
    return result


def _curves(
    history: list[dict[str, np.ndarray]], returns0: np.ndarray, eval_every: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Evaluation steps [T+1] and every metric stacked over chunks [seeds, T(+1), ...]; the
    returns start with the evaluation before training."""
    stacked = {k: np.stack([h[k] for h in history], axis=1) for k in history[0]}
    stacked["return"] = np.concatenate([returns0[:, None], stacked["return"]], axis=1)
    return np.arange(len(history) + 1) * eval_every, stacked


def resume_run(run_dir: str | Path, *, progress: bool = True) -> RunResult:
    """Continue a killed run from its newest good checkpoint (``netmarl train --resume``)."""
    run_dir = Path(run_dir)
    return train(load_run_config(run_dir), progress=progress, run_dir=run_dir, resume=True)


def load_run_config(run_dir: str | Path) -> RunConfig:
    """The resolved config of a run directory; a clear error if it is not one."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(
            f"{run_dir} is not a netmarl run directory (it has no config.yaml); give the "
            "directory that `netmarl train` printed."
        )
    return from_dict(RunConfig, yaml.safe_load(path.read_text()), str(path))


def default_run_dir(config: RunConfig) -> Path:
    name = config.name or f"{config.algo}-{config.env}-{time.strftime('%Y%m%d-%H%M%S')}"
    return Path(config.out_dir) / name


def _resolved_yaml(config: RunConfig, algo_config: Any) -> str:
    resolved = to_dict(config)
    resolved["algo_kwargs"] = to_dict(algo_config)
    return yaml.safe_dump(resolved, sort_keys=False)


def _progress(config: RunConfig, enabled: bool, initial: int = 0) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(
        initial=initial,
        total=config.num_chunks * config.eval_every,
        desc=f"{config.algo} on {config.env} ({config.seeds} seeds)",
        unit="step",
        unit_scale=True,
    )


@jax.jit
def _all_finite(tree: Any) -> jax.Array:
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def _non_finite(metrics: dict[str, np.ndarray], params: Any) -> str | None:
    """The name of the first metric (or 'parameters') that is NaN/inf, or None."""
    for name, value in metrics.items():
        if np.issubdtype(np.asarray(value).dtype, np.floating) and not np.all(np.isfinite(value)):
            return f"metric {name!r}"
    if not bool(_all_finite(params)):
        return "the parameters"
    return None


def summary(result: RunResult) -> dict[str, Any]:
    """The JSON summary of a run: final and best return with 95% bootstrap CIs."""
    final = final_return(result.steps, result.metrics["return"])
    best = max_average_return(result.steps, result.metrics["return"])
    total_steps = result.config.steps * result.config.seeds
    out = {
        "algo": result.config.algo,
        "env": result.config.env,
        "seeds": result.config.seeds,
        "steps": result.config.steps,
        "final_return": {"mean": final.value, "ci95": [final.low, final.high]},
        "max_average_return": {
            "step": best.step,
            "mean": best.value,
            "ci95": [best.low, best.high],
        },
        "references": result.references,
        "wall_time_s": round(result.wall_time, 3),
        "env_steps_per_s": round(total_steps / result.wall_time, 1),
    }
    if "floats_sent" in result.metrics:
        # per-step mean of floats sent, averaged over chunks and seeds
        out["floats_sent_per_step"] = float(result.metrics["floats_sent"].mean())
    return out


def _atomic_write(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a crash never leaves a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, default_file_mode())
    os.replace(tmp, path)


def default_file_mode() -> int:
    """The mode ``open`` would give a new file (0o666 less the umask): ``mkstemp`` makes its
    files private (0o600), which results meant for others to read should not be."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_run(result: RunResult, run_dir: str | Path | None = None) -> Path:
    """Write config.yaml, metrics.csv, marl_eval.json, summary.json and plot.png (and
    TensorBoard events when asked) into the run directory."""
    from netmarl.report.plots import plot_panels

    cfg = result.config
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(run_dir / "config.yaml", _resolved_yaml(cfg, result.algo_config))

    _atomic_write(run_dir / "metrics.csv", writers.metrics_csv(result.steps, result.metrics))
    marl_eval = writers.marl_eval_json(
        result.steps, result.metrics, env=cfg.env, task=_task_name(cfg), algo=cfg.algo
    )
    _atomic_write(run_dir / "marl_eval.json", marl_eval)
    if cfg.tensorboard:
        writers.tensorboard(run_dir, result.steps, result.metrics)
    _atomic_write(run_dir / "summary.json", json.dumps(summary(result), indent=2) + "\n")
    title = f"{cfg.algo} on {cfg.env} (graph {cfg.graph})"
    plot_panels(
        [(title, {cfg.algo: (result.steps, result.metrics["return"])})], run_dir / "plot.png"
    )
    return run_dir


def _task_name(cfg: RunConfig) -> str:
    options = ",".join(f"{k}={v}" for k, v in sorted(cfg.env_kwargs.items()))
    return f"{cfg.env}[{options}]" if options else cfg.env


def read_metrics_csv(path: str | Path) -> dict[str, np.ndarray]:
    """Read a run's metrics.csv back into columns (used by reports and tests)."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) if r[k] != "" else np.nan for r in rows]) for k in rows[0]}


def with_overrides(config: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """A copy of ``config`` with validated overrides (dict-valued keys are merged)."""
    merged = to_dict(config)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return from_dict(RunConfig, merged, "run config")


__all__ = ["RunResult", "build", "train", "resume_run", "summary", "write_run", "with_overrides"]
