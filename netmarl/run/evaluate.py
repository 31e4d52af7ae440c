"""``netmarl eval RUN_DIR``: load a run's trained policies and evaluate them greedily.

For every seed of the run, the newest good checkpoint's policies are made greedy (each
learner takes its most probable action) and scored by rolling out ``episodes`` episodes of
the environment, all seeds and episodes vmapped in one compiled program; tabular policies are
also scored exactly (Bellman linear system). Neural learners use their evaluation policy
(greedy or deterministic). Results go to ``RUN_DIR/eval.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from netmarl.algos.base import episode_returns
from netmarl.algos.tabular_base import exact_policy_value, greedy
from netmarl.envs.tabular import joint_actions
from netmarl.errors import ConfigError
from netmarl.run import checkpoint
from netmarl.run.driver import _atomic_write, build, is_tabular, load_run_config, make_trainer


def greedy_actions(env: Any, probs: jax.Array, s: jax.Array) -> jax.Array:
    """Env actions [N] of the greedy policy ``probs [L, S, A_l]`` in state s."""
    best = jnp.argmax(probs[:, s], axis=-1).astype(jnp.int32)
    if probs.shape[0] == env.num_agents and probs.shape[-1] == env.num_actions:
        return best
    return joint_actions(best[0], env.num_agents, env.num_actions)


def rollout_returns(env: Any, probs: jax.Array, key: jax.Array, gamma: float) -> jax.Array:
    """(undiscounted, discounted) team return of one episode of the greedy policy."""
    state, _ = env.reset(key)

    def step(carry: tuple, k: jax.Array) -> tuple:
        state, total, discounted, discount, done = carry
        actions = greedy_actions(env, probs, env.state_index(state))
        state, ts = env.step(k, state, actions)
        live = ~done
        total = total + jnp.where(live, ts.team_reward, 0.0)
        discounted = discounted + jnp.where(live, discount * ts.team_reward, 0.0)
        return (state, total, discounted, discount * gamma, done | ts.done), None

    init = (state, jnp.float32(0), jnp.float32(0), jnp.float32(1), jnp.bool_(False))
    keys = jax.random.split(jax.random.fold_in(key, 1), env.spec.episode_limit)
    (_, total, discounted, _, _), _ = jax.lax.scan(step, init, keys)
    return jnp.stack([total, discounted])


def evaluate_run(run_dir: str | Path, episodes: int = 100, seed: int = 0) -> dict[str, Any]:
    """Greedy evaluation of every seed of a finished (or checkpointed) run."""
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}.")
    built = build(config)
    trainer = make_trainer(built)
    like = jax.jit(jax.vmap(trainer.init))(jax.random.split(jax.random.key(0), config.seeds))
    chunk, state, _ = checkpoint.load_latest(run_dir / "checkpoints", like)
    if not is_tabular(built):
        scores = _neural_scores(built, state, episodes, seed)
        return _write_eval(run_dir, config, chunk, episodes, scores)

    env, gamma = built.env, config.gamma

    @jax.jit
    def score(params: Any, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        probs = greedy(built.learner.policy(params))
        exact = exact_policy_value(env, probs, gamma).ret
        keys = jax.random.split(key, episodes)
        sampled = jax.vmap(lambda k: rollout_returns(env, probs, k, gamma))(keys)
        return exact, sampled[:, 0], sampled[:, 1]

    keys = jax.random.split(jax.random.key(seed), config.seeds)
    exact, totals, discounted = jax.device_get(jax.vmap(score)(state.params, keys))
    per_seed = []
    for i in range(config.seeds):
        per_seed.append(
            {
                "seed": i,
                "exact_greedy_return": float(exact[i]),
                "episode_return_mean": float(totals[i].mean()),
                "episode_return_stderr": float(totals[i].std(ddof=1) / np.sqrt(episodes))
                if episodes > 1
                else 0.0,
                "discounted_return_mean": float(discounted[i].mean()),
                "discounted_return_stderr": float(discounted[i].std(ddof=1) / np.sqrt(episodes))
                if episodes > 1
                else 0.0,
            }
        )
    extra = {"gamma": gamma, "mean_exact_greedy_return": float(np.mean(exact))}
    return _write_eval(run_dir, config, chunk, episodes, (per_seed, totals, extra))


def _neural_scores(
    built: Any, state: Any, episodes: int, seed: int
) -> tuple[list[dict], np.ndarray, dict]:
    learner = built.learner
    params = jax.vmap(learner.policy_params)(state.learner)
    score = jax.jit(
        jax.vmap(lambda p, k: episode_returns(learner.env, learner.policy, p, k, episodes))
    )
    keys = jax.random.split(jax.random.key(seed), built.config.seeds)
    totals = np.asarray(jax.device_get(score(params, keys)))
    per_seed = [
        {
            "seed": i,
            "episode_return_mean": float(totals[i].mean()),
            "episode_return_stderr": _stderr(totals[i]),
        }
        for i in range(built.config.seeds)
    ]
    return per_seed, totals, {}


def config_episode_limit(config: Any) -> int:
    from netmarl.envs import make_env

    return make_env(config.env, **config.env_kwargs).spec.episode_limit


def _stderr(x: np.ndarray) -> float:
    return float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else 0.0


def _write_eval(
    run_dir: Path, config: Any, chunk: int, episodes: int, scores: tuple[list, np.ndarray, dict]
) -> dict[str, Any]:
    per_seed, totals, extra = scores
    result = {
        "run_dir": str(run_dir),
        "checkpoint_chunk": chunk,
        "env_steps": chunk * config.eval_every,
        "episodes_per_seed": episodes,
        "episode_limit": config_episode_limit(config),
        "per_seed": per_seed,
        "mean_episode_return": float(np.mean(totals)),
        **extra,
    }
    _atomic_write(run_dir / "eval.json", json.dumps(result, indent=2) + "\n")
    return result
