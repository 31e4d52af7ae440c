"""Benchmark: training throughput of stochastic DOP on SMAX and deterministic DOP on Aggregation.

* ``dop`` on SMAX ``3m`` (JaxMARL, needs the ``smax`` extra; falls back to ``hallway`` and says
  so when jaxmarl is missing) with the App. H.1 settings except a 1000-episode off-policy
  buffer (as ``experiments/dop_smax.yaml``): 4 episodes of 100 steps per iteration, one actor
  and one critic update per iteration (32 + 16 episodes, 5-step tree backup).
* ``dop_deterministic`` on ``aggregation`` (5 agents, one landmark; falls back to continuous
  navigation with 5 agents if that env is not registered) with the App. H.2 settings: one
  environment, one step and one critic update (batch 1250) per iteration, actors every 2.

Each learner is driven exactly like ``netmarl.run.driver.train``: ``make_trainer`` then
``jax.jit(jax.vmap(chunk))`` over seeds, a chunk being ``--chunk-steps`` env steps followed by
a greedy evaluation of one episode, metrics fetched after every chunk. Compilation is timed
apart. Throughput = seeds x env steps / wall time (for DOP the env steps of an iteration are
4 x episode_limit, padding after an early episode end included), best of ``--repeats``.

Run: ``.venv/bin/python benchmarks/bench_dop.py [--seeds 1 10] [--chunks 2] [--only dop|ddop]``.
"""

from __future__ import annotations

import argparse
import platform
import time

import jax
import numpy as np

from netmarl.algos.base import vmap_seeds
from netmarl.envs import ENVIRONMENTS
from netmarl.run.config import RunConfig
from netmarl.run.driver import build, make_trainer


def cases(chunk_dop: int, chunk_ddop: int) -> list[tuple[str, RunConfig]]:
    try:
        import jaxmarl  # noqa: F401

        smax = ("SMAX 3m", "smax", {"map": "3m"})
    except ImportError:
        smax = ("hallway (jaxmarl missing)", "hallway", {"num_agents": 2, "lengths": 4})
    if "aggregation" in ENVIRONMENTS:
        agg = ("Aggregation", "aggregation", {})
    else:
        agg = ("navigation N=5 (no aggregation env)", "navigation",
               {"num_agents": 5, "continuous": True})  # fmt: skip
    return [
        (f"stochastic DOP, {smax[0]}",
         RunConfig(algo="dop", env=smax[1], env_kwargs=smax[2], steps=chunk_dop,
                   eval_every=chunk_dop, eval_episodes=1, algo_kwargs={"off_buffer": 1000})),
        (f"deterministic DOP, {agg[0]}",
         RunConfig(algo="dop_deterministic", env=agg[1], env_kwargs=agg[2], steps=chunk_ddop,
                   eval_every=chunk_ddop, eval_episodes=1, gamma=0.95)),
    ]  # fmt: skip


def time_case(config: RunConfig, seeds: int, chunks: int, repeats: int) -> tuple[float, float]:
    """(env steps per second over all seeds, compile seconds)."""
    built = build(config)
    trainer = make_trainer(built)
    keys = jax.random.split(jax.random.key(0), seeds)
    state = jax.block_until_ready(jax.jit(jax.vmap(trainer.init))(keys))
    start = time.perf_counter()
    chunk = jax.jit(vmap_seeds(trainer.chunk)).lower(state).compile()
    compile_s = time.perf_counter() - start
    state, metrics = chunk(state)  # warm-up (first buffer fills)
    jax.device_get(metrics)
    best = 0.0
    for _ in range(repeats):
        begin = np.asarray(metrics["env_steps"])
        start = time.perf_counter()
        for _ in range(chunks):
            state, metrics = chunk(state)
            metrics = jax.device_get(metrics)
        wall = time.perf_counter() - start
        # env steps actually taken (SMAX episodes that end early count their real length)
        best = max(best, float(np.sum(np.asarray(metrics["env_steps"]) - begin)) / wall)
    return best, compile_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--chunks", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--chunk-steps-dop", type=int, default=4000)
    parser.add_argument("--chunk-steps-ddop", type=int, default=2000)
    parser.add_argument(
        "--only",
        choices=["dop", "ddop"],
        default=None,
        help="run only stochastic DOP (dop) or deterministic DOP (ddop)",
    )
    args = parser.parse_args()
    print(f"{platform.machine()}, {jax.devices()[0].device_kind}, jax {jax.__version__}")
    print("| learner, env | seeds | env steps/s | compile |")
    print("|---|---:|---:|---:|")
    selected = cases(args.chunk_steps_dop, args.chunk_steps_ddop)
    if args.only is not None:
        selected = selected[:1] if args.only == "dop" else selected[1:]
    for label, config in selected:
        for seeds in args.seeds:
            rate, compile_s = time_case(config, seeds, args.chunks, args.repeats)
            print(f"| {label} | {seeds} | {rate:,.0f} | {compile_s:.1f} s |", flush=True)


if __name__ == "__main__":
    main()
