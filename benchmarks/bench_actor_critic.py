"""Benchmark: training throughput of Value Propagation and the networked actor-critic.

Cooperative navigation (discrete, ``make_env("navigation", num_agents=5)``, mpe2 rewards, local
observations), ring graph with one consensus round, default configs of ``value_propagation``
(``VPConfig``) and ``networked_ac`` (``NetworkedACConfig``, Algorithm 1, neural critic).

Each learner is driven like ``netmarl.run.driver.train``: the learner's ``Trainer``, then
``jax.jit(vmap_seeds(trainer.chunk))`` over seeds, one call per chunk of ``--chunk-steps``
environment steps (per seed) followed by the greedy evaluation (32 episodes), metrics fetched
to the host after every chunk. The chunk function is compiled ahead of time (timed apart).

* env steps/s = seeds x chunk steps x chunks / wall time of the timed loop (the evaluation
  episodes are not counted as steps, their time is);
* share outside compiled code = (loop wall time - time between issuing each compiled call and
  its results being ready) / loop wall time: Python, dispatch, host transfers.

Run: ``.venv/bin/python benchmarks/bench_actor_critic.py`` (a few minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import numpy as np

from netmarl.algos.base import vmap_seeds
from netmarl.algos.networked_ac import NetworkedACConfig, make_networked_ac
from netmarl.algos.value_propagation import VPConfig, make_value_propagation
from netmarl.envs import make_env
from netmarl.network import make_network

GAMMA = 0.95


def learners(num_agents: int) -> dict:
    env = make_env("navigation", num_agents=num_agents)
    network = make_network("ring", num_agents, rounds=1)
    return {
        "value_propagation": make_value_propagation(env, GAMMA, VPConfig(), network),
        "networked_ac": make_networked_ac(env, GAMMA, NetworkedACConfig(), network),
    }


def bench(learner, seeds: int, chunk_steps: int, chunks: int) -> dict:
    trainer = learner.trainer(chunk_steps, 32)
    state = jax.jit(jax.vmap(trainer.init))(jax.random.split(jax.random.key(0), seeds))
    start = time.perf_counter()
    chunk = jax.jit(vmap_seeds(trainer.chunk)).lower(state).compile()
    compile_s = time.perf_counter() - start
    state, metrics = chunk(state)  # warm-up (first execution)
    jax.block_until_ready(state)
    inside = 0.0
    start = time.perf_counter()
    for _ in range(chunks):
        t0 = time.perf_counter()
        state, metrics = chunk(state)
        jax.block_until_ready((state, metrics))
        inside += time.perf_counter() - t0
        metrics = jax.device_get(metrics)  # what the driver does after every chunk
        _ = float(np.mean(metrics["return"]))
    wall = time.perf_counter() - start
    return {
        "steps_per_s": seeds * chunk_steps * chunks / wall,
        "outside": (wall - inside) / wall,
        "compile_s": compile_s,
        "return": float(np.mean(metrics["return"])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--chunk-steps", type=int, default=4000)
    parser.add_argument("--chunks", type=int, default=3)
    parser.add_argument("--sync", action="store_true", help="synchronous XLA:CPU dispatch")
    args = parser.parse_args()
    if args.sync:
        jax.config.update("jax_cpu_enable_async_dispatch", False)
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"jax {jax.__version__} ({jax.default_backend()}), navigation N = {args.agents}, "
        f"chunks of {args.chunk_steps} steps x {args.chunks}"
    )
    print(f"{'learner':<18} {'seeds':>5} {'env steps/s':>12} {'outside':>8} {'compile':>8}")
    for name, learner in learners(args.agents).items():
        for seeds in args.seeds:
            r = bench(learner, seeds, args.chunk_steps, args.chunks)
            print(
                f"{name:<18} {seeds:>5} {r['steps_per_s']:>12,.0f} {r['outside']:>8.1%} "
                f"{r['compile_s']:>7.1f}s",
                flush=True,
            )


if __name__ == "__main__":
    main()
