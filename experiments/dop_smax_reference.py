"""Reference points for the SMAX runs of DOP (paper 002, §5.2): two hand-made ally policies.

* ``random``: every ally picks a uniformly random available action each step (what the
  learners' behaviour policies do at epsilon = 1);
* ``heuristic``: JaxMARL's scripted unit micro, the same rule the enemies follow (attack the
  closest enemy in range, otherwise advance past the middle of the enemy half or follow a
  visible enemy), run for the allies: a mirror match against the built-in AI.

Each is played for ``--episodes`` episodes through netmarl's SMAX wrapper (so returns are
scored exactly as in the experiments: normalised damage dealt plus 1 for a win, a win returns
2); prints the mean return and the win rate with binomial standard errors, and writes
``reference.json`` into ``--out`` if given.

Run: ``python experiments/dop_smax_reference.py --map 3m --episodes 256``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from netmarl.envs import make_env

WIN_THRESHOLD = 1.5  # as experiments/dop_smax_winrate.py


def play(env, policy: str, key: jax.Array, episodes: int) -> np.ndarray:
    """Undiscounted team returns [episodes] of one of the reference policies."""
    from jaxmarl.environments.smax.heuristic_enemy import (
        create_heuristic_policy,
        get_heuristic_policy_initial_state,
    )

    n, limit = env.spec.num_agents, env.spec.episode_limit
    heuristic = create_heuristic_policy(env._env._env, 0)  # the inner SMAX, team 0 = allies

    def episode(key: jax.Array) -> jax.Array:
        state, ts = env.reset(jax.random.fold_in(key, 0))
        hstate = jax.tree.map(
            lambda *xs: jnp.stack(xs), *([get_heuristic_policy_initial_state()] * n)
        )

        def body(carry, k):
            state, ts, hstate, done, total = carry
            k_act, k_env = jax.random.split(k)
            if policy == "random":
                logits = jnp.where(ts.avail_actions, 0.0, -1e9)
                actions = jax.random.categorical(k_act, logits)
            else:
                actions, hstate = jax.vmap(heuristic)(jax.random.split(k_act, n), hstate, ts.obs)
                # the heuristic can pick an attack that the mask forbids at the range edge
                actions = jnp.where(ts.avail_actions[jnp.arange(n), actions], actions, 4)
            state, nts = env.step(k_env, state, actions.astype(jnp.int32))
            total = total + jnp.where(done, 0.0, nts.team_reward)
            return (state, nts, hstate, done | nts.done, total), None

        init = (state, ts, hstate, jnp.bool_(False), jnp.float32(0))
        (_, _, _, _, total), _ = jax.lax.scan(body, init, jax.random.split(key, limit))
        return total

    return np.asarray(jax.jit(jax.vmap(episode))(jax.random.split(key, episodes)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--map", default="3m")
    parser.add_argument("--episodes", type=int, default=256)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    env = make_env("smax", map=args.map)
    result = {"map": args.map, "episodes": args.episodes}
    for i, policy in enumerate(("random", "heuristic")):
        returns = play(env, policy, jax.random.key(i), args.episodes)
        wins = returns > WIN_THRESHOLD
        se = lambda x: float(x.std(ddof=1) / np.sqrt(len(x)))  # noqa: E731
        result[policy] = {
            "return_mean": float(returns.mean()),
            "return_se": se(returns),
            "win_rate": float(wins.mean()),
            "win_rate_se": se(wins.astype(float)),
        }
        print(f"{args.map}, {policy}: {result[policy]}", flush=True)
    if args.out is not None:
        (args.out / "reference.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
