"""What the final greedy policies of SMAX runs do (DOP paper 002, §5.2 reduced runs).

For each run directory given, loads the newest checkpoint, plays 32 greedy episodes per seed
and prints the action histogram over real (filled) steps (SMAX: 0-3 move, 4 stop, 5.. attack
enemy j), the fraction of steps where some attack is available, and how often the policy
attacks when it can.

Run: ``python experiments/dop_smax_greedy_actions.py RUN_DIR...`` (e.g. the ``runs/3m--*``
directories of ``experiments/results/dop_smax_reduced``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import numpy as np

from netmarl.algos.base import collect_episodes
from netmarl.run import checkpoint
from netmarl.run.driver import build, load_run_config, make_trainer

FIRST_ATTACK = 5  # SMAX: 4 moves + stop come first


def describe(run_dir: Path) -> None:
    config = load_run_config(run_dir)
    built = build(config)
    trainer = make_trainer(built)
    learner = built.learner
    keys = jax.random.split(jax.random.key(0), config.seeds)
    like = jax.jit(jax.vmap(trainer.init))(keys)
    chunk, state, _ = checkpoint.load_latest(run_dir / "checkpoints", like)
    params = jax.vmap(learner.policy_params)(state.learner)
    policy = learner.policy

    def act(p, carry, ts, key):
        actions, carry = policy.act(p, carry, ts, key)
        return actions, carry, ()

    def run(p, key):
        steps, filled = collect_episodes(learner.env, act, p, key, 32, policy.init_carry)
        return steps.actions, steps.avail_actions, filled, steps.team_reward.sum(0)

    keys = jax.random.split(jax.random.key(1), config.seeds)
    acts, avail, filled, ret = jax.device_get(jax.jit(jax.vmap(run))(params, keys))
    print(f"{run_dir.name} (checkpoint after chunk {chunk})")
    for s in range(config.seeds):
        real = filled[s].astype(bool)  # [T, E]
        a, av = acts[s][real], avail[s][real]  # [n, N], [n, N, A]
        hist = np.bincount(a.ravel(), minlength=av.shape[-1]) / a.size
        can = av[..., FIRST_ATTACK:].any(-1)
        does = (a >= FIRST_ATTACK)[can].mean() if can.any() else float("nan")
        print(
            f"  seed {s}: return {ret[s].mean():.3f}, episode length {real.sum(0).mean():.1f}, "
            f"actions {np.round(hist, 2)}, attack available {can.mean():.2f}, "
            f"attacks when available {does:.2f}"
        )


def main() -> None:
    for run_dir in map(Path, sys.argv[1:]):
        describe(run_dir)


if __name__ == "__main__":
    main()
