"""Hand-written signal plans on the 3 x 3 traffic grid, scored like the driver's evaluation.

Context for experiment 4 of issue 3 (``experiments/vp_traffic_reduced.yaml``): what return a
learned policy has to beat. Team return = the sum over a 100-step episode of the team reward
(minus the mean queue per intersection), the quantity the driver's greedy evaluation reports.
Policies: uniform random phases; always north-south green; longest queue first (serve the
axis with more waiting cars, from the agent's own observation); fixed cycles of p steps per
phase (all intersections in step; each switch costs one yellow step).

Run:  python experiments/vp_traffic_baselines.py  -> experiments/results/vp_traffic_reduced/
baselines.csv (mean and normal 95% CI over 256 episodes).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from netmarl.envs import make_env

EPISODES = 256
OUT = Path("experiments/results/vp_traffic_reduced/baselines.csv")


def team_returns(env, policy, key: jax.Array, episodes: int = EPISODES) -> np.ndarray:
    """Team return of ``episodes`` fresh episodes under ``policy(obs, t, key) -> actions``."""

    def one(key):
        k0, key = jax.random.split(key)
        state, ts = env.reset(k0)

        def body(carry, t):
            state, ts, key = carry
            key, ka, ks = jax.random.split(key, 3)
            state, ts = env.step(ks, state, policy(ts.obs, t, ka))
            return (state, ts, key), ts.team_reward

        _, rewards = jax.lax.scan(body, (state, ts, key), jnp.arange(env.spec.episode_limit))
        return rewards.sum()

    return np.asarray(jax.jit(jax.vmap(one))(jax.random.split(key, episodes)))


def main() -> None:
    env = make_env("traffic_grid", rows=3, cols=3)
    n = env.spec.num_agents
    # obs: 4 queues / max_queue (lanes N, S, E, W), phase one-hot (2), time since switch
    policies = {
        "uniform random": lambda o, t, k: jax.random.randint(k, (n,), 0, 2),
        "always north-south green": lambda o, t, k: jnp.zeros(n, jnp.int32),
        "longest queue first": lambda o, t, k: (o[:, 2] + o[:, 3] > o[:, 0] + o[:, 1]).astype(
            jnp.int32
        ),
    }

    def fixed_cycle(period: int):
        return lambda o, t, k: jnp.full(n, (t // period) % 2, jnp.int32)

    for p in (2, 5, 10, 20):
        policies[f"fixed cycle, {p} steps per phase"] = fixed_cycle(p)
    lines = ["policy,mean,ci95_low,ci95_high,episodes"]
    for name, policy in policies.items():
        r = team_returns(env, policy, jax.random.key(1))
        half = 1.96 * r.std() / np.sqrt(len(r))
        lines.append(f"{name},{r.mean():.1f},{r.mean() - half:.1f},{r.mean() + half:.1f},{len(r)}")
        print(lines[-1])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
