"""Greedy win rates of the final policies of an SMAX experiment (DOP paper 002, §5.2, Fig. 3-4).

The harness scores SMAX runs by the greedy team return: the allies' normalised damage dealt
(the enemies' summed health fractions removed / number of enemies, so at most 1 per episode;
SMAX units do not heal on these maps) plus ``won_battle_bonus`` = 1 when every enemy is dead
and an ally is alive. A won episode therefore returns exactly 2 (up to float rounding) and a
lost or drawn one at most 1, so "won" is "return > 1.5". The paper reports test win rates;
this script loads each run's newest checkpoint (the final policies), plays ``--episodes``
greedy episodes per seed and writes ``winrates.csv`` / ``winrates.json`` next to the
experiment's ``curves.csv``: per cell, the mean win rate over seeds with a 95% bootstrap CI
and the per-seed rates.

Run: ``python experiments/dop_smax_winrate.py experiments/results/dop_smax_reduced``.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import jax
import numpy as np

from netmarl.algos.base import episode_returns
from netmarl.report.stats import bootstrap_ci
from netmarl.run import checkpoint
from netmarl.run.driver import build, load_run_config, make_trainer

WIN_THRESHOLD = 1.5  # won: 1 (damage) + 1 (bonus); not won: damage <= 1


def run_win_rates(run_dir: Path, episodes: int, seed: int) -> dict:
    config = load_run_config(run_dir)
    built = build(config)
    trainer = make_trainer(built)
    like = jax.jit(jax.vmap(trainer.init))(jax.random.split(jax.random.key(0), config.seeds))
    chunk, state, _ = checkpoint.load_latest(run_dir / "checkpoints", like)
    learner = built.learner
    params = jax.vmap(learner.policy_params)(state.learner)
    score = jax.jit(
        jax.vmap(lambda p, k: episode_returns(learner.env, learner.policy, p, k, episodes))
    )
    keys = jax.random.split(jax.random.key(seed), config.seeds)
    returns = np.asarray(jax.device_get(score(params, keys)))  # [seeds, episodes]
    per_seed = (returns > WIN_THRESHOLD).mean(axis=1)
    ci = bootstrap_ci(per_seed)
    return {
        "run": run_dir.name,
        "algo": config.algo,
        "env_kwargs": config.env_kwargs,
        "algo_kwargs": config.algo_kwargs,
        "env_steps": int(chunk * config.eval_every),
        "episodes_per_seed": episodes,
        "win_rate": {"mean": float(per_seed.mean()), "ci95": [float(ci.low), float(ci.high)]},
        "win_rate_per_seed": [float(x) for x in per_seed],
        "return_per_seed": [float(x) for x in returns.mean(axis=1)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="the experiment's out_dir")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = []
    for run_dir in sorted(p for p in (args.out_dir / "runs").iterdir() if p.is_dir()):
        if not (run_dir / "checkpoints").is_dir():
            print(f"{run_dir.name}: no checkpoints, skipped")
            continue
        row = run_win_rates(run_dir, args.episodes, args.seed)
        rows.append(row)
        lo, hi = row["win_rate"]["ci95"]
        print(
            f"{row['run']}: win rate {row['win_rate']['mean']:.1%} [{lo:.1%}, {hi:.1%}] "
            f"per seed {row['win_rate_per_seed']} at {row['env_steps']} steps",
            flush=True,
        )
    (args.out_dir / "winrates.json").write_text(json.dumps(rows, indent=2) + "\n")
    with open(args.out_dir / "winrates.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["run", "env_steps", "win_rate_mean", "ci_low", "ci_high", "per_seed"])
        for row in rows:
            writer.writerow(
                [row["run"], row["env_steps"], f"{row['win_rate']['mean']:.4f}",
                 f"{row['win_rate']['ci95'][0]:.4f}", f"{row['win_rate']['ci95'][1]:.4f}",
                 " ".join(f"{x:.4f}" for x in row["win_rate_per_seed"])]
            )  # fmt: skip


if __name__ == "__main__":
    main()
