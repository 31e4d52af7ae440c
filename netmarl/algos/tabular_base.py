"""The shared training loop of the tabular learners (one online trajectory per seed).

A tabular learner is three pure functions over a pytree of tables:

    params = init(key)
    actions = act(params, s, key)                          # env actions [N] for state index s
    params, metrics = update(params, transition, key)      # one online step
    value = evaluate(params, gamma)                        # exact PolicyValue of the current policy

:func:`make_trainer` turns a learner and a :class:`~netmarl.envs.tabular.TabularMDP` env into
``init_fn(key) -> TrainState`` and ``chunk_fn(TrainState) -> (TrainState, metrics)``: a chunk
is ``lax.scan`` over ``steps_per_chunk`` environment steps followed by an exact evaluation of
the policy, so one call of the compiled chunk advances every seed (vmapped) at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


class Transition(NamedTuple):
    """One online transition as every agent sees it (the state is global, Li & Jia Def. 1)."""

    s: Array  # [] int32 state index
    actions: Array  # [N] int32 every agent's own action (agent i only reads actions[i])
    rewards: Array  # [N] local rewards
    team_reward: Array  # [] the shared / team reward
    s_next: Array  # [] int32 next state index (before any reset)
    terminated: Array  # [] bool: s_next is terminal (no bootstrap)


class TabularLearner(NamedTuple):
    """A tabular learner: pure functions over its tables (see the module docstring)."""

    name: str
    init: Callable[[Array], Any]
    act: Callable[[Any, Array, Array], Array]
    update: Callable[[Any, Transition, Array], tuple[Any, dict[str, Array]]]
    evaluate: Callable[[Any, float], Any]


class TrainState(NamedTuple):
    params: Any
    env_state: Any
    key: Array
    step: Array  # [] int32 environment steps taken


def make_trainer(
    env: Any, learner: TabularLearner, steps_per_chunk: int, gamma: float, unroll: int = 1
) -> tuple[Callable[[Array], TrainState], Callable[[TrainState], tuple[TrainState, dict]]]:
    """Build ``init_fn`` and ``chunk_fn`` for one seed; vmap/jit them in the driver."""

    def init_fn(key: Array) -> TrainState:
        key_params, key_env, key_run = jax.random.split(key, 3)
        env_state, _ = env.reset(key_env)
        return TrainState(learner.init(key_params), env_state, key_run, jnp.int32(0))

    def env_step(train_state: TrainState, _: Any) -> tuple[TrainState, dict]:
        params, env_state, key, step = train_state
        key, key_act, key_env, key_reset, key_update = jax.random.split(key, 5)
        s = env.state_index(env_state)
        actions = learner.act(params, s, key_act)
        next_env_state, ts = env.step(key_env, env_state, actions)
        transition = Transition(
            s=s,
            actions=actions,
            rewards=ts.rewards,
            team_reward=ts.team_reward,
            s_next=env.state_index(next_env_state),
            terminated=ts.terminated,
        )
        params, metrics = learner.update(params, transition, key_update)
        # Episodes that end restart from the initial distribution; the update above has
        # already used the true next state, so truncation does not cut the bootstrap.
        reset_state, _ = env.reset(key_reset)
        next_env_state = jax.tree.map(
            lambda r, n: jnp.where(ts.done, r, n), reset_state, next_env_state
        )
        metrics = {"team_reward": ts.team_reward, **metrics}
        return TrainState(params, next_env_state, key, step + 1), metrics

    def chunk_fn(train_state: TrainState) -> tuple[TrainState, dict]:
        train_state, step_metrics = jax.lax.scan(
            env_step, train_state, None, steps_per_chunk, unroll=unroll
        )
        metrics = jax.tree.map(jnp.mean, step_metrics)
        value = learner.evaluate(train_state.params, gamma)
        metrics["return"] = value.ret
        metrics["env_steps"] = train_state.step
        return train_state, metrics

    return init_fn, chunk_fn


def softmax_sample(key: Array, logits: Array) -> Array:
    """Sample one action per row of ``logits`` [..., A] (int32)."""
    return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)


def epsilon_greedy(key: Array, q: Array, epsilon: float | Array) -> Array:
    """Greedy action of ``q`` [A] with probability 1 - epsilon, else uniform."""
    key_explore, key_action = jax.random.split(key)
    random_action = jax.random.randint(key_action, (), 0, q.shape[-1], dtype=jnp.int32)
    greedy = jnp.argmax(q, axis=-1).astype(jnp.int32)
    return jnp.where(jax.random.uniform(key_explore) < epsilon, random_action, greedy)


def step_size(base: float, visits: Array, power: float) -> Array:
    """Robbins-Monro step ``base / (1 + visits)^power`` (power 0 gives a constant step).

    Li & Jia Theorem 1 asks sum(alpha) = inf and sum(alpha^2) < inf per state-action pair
    (eq. 9-10): any power in (0.5, 1] satisfies both.
    """
    return base / (1.0 + visits.astype(jnp.float32)) ** power
