"""Benchmark: what one value-decomposition update costs as a function of the batch's shape.

Times one compiled update (IQL with per-agent GRU 64 networks, the DVDN Table 1 Easy task
``Foraging-8x8-2p-2f-coop-v3``) on batches of B episodes cut to L steps, B in {32, 16, 8},
L in {50, 25, 13}: the figures behind the "grouped by length" idea (sort the 32 sampled
episodes by length and update on groups of 8, each cut after its own longest episode; the
loss is a masked sum over steps, so the gradient would be the same). Late in Easy training
most episodes last ~15 steps, but a batch of 32 nearly always holds one long one, so the
whole batch is cut at 50 (or 25).

Run: ``taskset -c 0 .venv/bin/python benchmarks/bench_update_batch_shape.py`` (~1 minute).
Prints CPU ms per update (the minimum over 5 repeats of 5 updates, each on a fresh batch).
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp

from netmarl.algos.value_decomposition import ValueDecomposition, ValueDecompositionConfig
from netmarl.envs import make_env

LIMIT = 50


def main() -> None:
    env = make_env("lbf", task="Foraging-8x8-2p-2f-coop-v3")
    learner = ValueDecomposition("iql", env, 0.99, ValueDecompositionConfig())
    learn = learner.init_learn(jax.random.key(0))
    episode = learner.empty_episode()
    episode = episode._replace(
        avail=jnp.ones_like(episode.avail), filled=jnp.ones_like(episode.filled)
    )
    update = jax.jit(learner.update)

    def batch(size: int, length: int, key: jax.Array):
        b = jax.tree.map(lambda x: jnp.broadcast_to(x, (size, *x.shape)), episode)
        b = b._replace(obs=jax.random.normal(key, b.obs.shape))
        return jax.tree.map(lambda x: x[:, : length + x.shape[1] - LIMIT], b)

    print(f"# load average at start: {os.getloadavg()[0]:.2f}; jax {jax.__version__}")
    print("| episodes B | steps L | CPU ms per update | CPU us per episode-step |")
    print("|---|---|---|---|")
    for size in (32, 16, 8):
        for length in (50, 25, 13):
            batches = [batch(size, length, jax.random.key(i)) for i in range(6)]
            jax.block_until_ready(update(learn, batches[0], jax.random.key(0)))
            best = float("inf")
            for _ in range(5):
                start = time.process_time()
                for b in batches[1:]:
                    jax.block_until_ready(update(learn, b, jax.random.key(1)))
                best = min(best, (time.process_time() - start) / 5)
            per = 1000 * best / (size * length) * 1000
            print(f"| {size} | {length} | {1000 * best:.2f} | {per:.2f} |", flush=True)


if __name__ == "__main__":
    main()
