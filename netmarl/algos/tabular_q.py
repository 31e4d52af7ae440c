"""Tabular Q-learning baselines of Li & Jia §V: joint Q-learning and independent Q-learning.

* **Joint Q-learning** ("Q-learning ... by concatenating all the agents as a global agent",
  paper 003 §V): one table ``Q(s, a)`` over the ``|A|^N`` joint actions, learnt from the team
  reward with the Watkins update ``Q(s,a) += alpha [r + gamma max_a' Q(s',a') - Q(s,a)]``.
* **Independent Q-learning** (Tan 1993): agent i keeps ``Q^i(s, a^i)`` over its own action
  and updates it as if the others were part of the environment, from the reward it observes
  (the shared team reward, or its own local reward: ``reward_signal``).

Both explore epsilon-greedily (epsilon decays linearly from ``epsilon_start`` to
``epsilon_end`` over ``epsilon_steps`` steps) and are evaluated exactly on their greedy
policies. Step sizes use per-entry visit counts, as in Li & Jia Algorithm 1 [choice].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from netmarl.algos.tabular_base import (
    TabularLearner,
    Transition,
    UniformFn,
    epsilon_greedy,
    greedy,
    step_size,
)
from netmarl.envs.tabular import (
    joint_actions,
    joint_index,
)
from netmarl.errors import ConfigError

Array = jax.Array


@dataclass(frozen=True)
class QLearningConfig:
    lr: float = 1.0  # alpha base: the same Robbins-Monro schedule as Algorithm 1's critic
    lr_power: float = 0.65  # alpha = lr / (1 + n(s, a))^power
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_steps: int = 50_000
    reward_signal: Literal["team", "local"] = "team"  # IQL only; joint Q always uses the team

    def validate(self) -> None:
        if self.lr <= 0:
            raise ConfigError(f"lr must be positive, got {self.lr}.")
        for name in ("epsilon_start", "epsilon_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}.")
        if self.epsilon_steps < 1:
            raise ConfigError(f"epsilon_steps must be >= 1, got {self.epsilon_steps}.")
        if self.reward_signal not in ("team", "local"):
            raise ConfigError(
                f"reward_signal must be 'team' or 'local', got {self.reward_signal!r}."
            )


class QTables(NamedTuple):
    q: Array  # [L, S, A_l]
    visits: Array  # [L, S, A_l]
    step: Array  # [] int32, for the epsilon schedule


def epsilon_at(step: Array, cfg: QLearningConfig) -> Array:
    frac = jnp.minimum(step.astype(jnp.float32) / cfg.epsilon_steps, 1.0)
    return cfg.epsilon_start + frac * (cfg.epsilon_end - cfg.epsilon_start)


def q_learning_step(
    q: Array, visits: Array, s: Array, a: Array, r: Array, s_next: Array, terminated: Array,
    gamma: float, cfg: QLearningConfig,
) -> tuple[Array, Array, Array]:  # fmt: skip
    """Watkins' Q-learning update of every learner's table ``[L, S, A_l]`` at once.

    ``a, r [L]``: each learner's own action and reward; returns (q, visits, td_error [L]).
    """
    own = jnp.arange(q.shape[0])  # learner l's entries: [own[l], s, a[l]]
    n_sa = visits[own, s, a]
    alpha = step_size(cfg.lr, n_sa, cfg.lr_power)
    bootstrap = jnp.where(terminated, 0.0, gamma * jnp.max(q[:, s_next], axis=-1))
    td_error = r + bootstrap - q[own, s, a]
    # set(n + 1) rather than add(1): the write then depends on the read, which lets XLA update
    # the table in place instead of copying it every step.
    return q.at[own, s, a].add(alpha * td_error), visits.at[own, s, a].set(n_sa + 1), td_error


def greedy_policy(tables: QTables) -> Array:
    """The target policy of Q-learning: greedy in each learner's Q-table, [L, S, A_l]."""
    return greedy(tables.q)


def _tables(shape: tuple[int, ...]) -> QTables:
    return QTables(jnp.zeros(shape), jnp.zeros(shape, jnp.int32), jnp.int32(0))


def make_iql(env: Any, gamma: float, config: QLearningConfig | None = None) -> TabularLearner:
    """Independent tabular Q-learning: one Q^i(s, a^i) per agent."""
    cfg = config or QLearningConfig()
    cfg.validate()
    n, num_states, num_actions = env.num_agents, env.num_states, env.num_actions

    def act(tables: QTables, s: Array, u: Array) -> Array:
        eps = epsilon_at(tables.step, cfg)  # two U[0, 1) numbers per agent
        return epsilon_greedy(u.reshape(n, 2), tables.q[:, s], eps)

    def update(tables: QTables, tr: Transition, key: Array | None) -> tuple[QTables, dict]:
        rewards = tr.rewards if cfg.reward_signal == "local" else jnp.full((n,), tr.team_reward)
        q, visits, td = q_learning_step(
            tables.q, tables.visits, tr.s, tr.actions, rewards, tr.s_next, tr.terminated,
            gamma, cfg,
        )  # fmt: skip
        return QTables(q, visits, tables.step + 1), {"abs_td": jnp.mean(jnp.abs(td))}

    return TabularLearner.create(
        "tabular_iql",
        env,
        lambda key: _tables((n, num_states, num_actions)),
        UniformFn(act, 2 * n),
        UniformFn(lambda tables, tr, u: update(tables, tr, None), 0),
        greedy_policy,
    )


def make_joint_q(env: Any, gamma: float, config: QLearningConfig | None = None) -> TabularLearner:
    """Joint Q-learning: one learner over the joint action, learning from the team reward."""
    cfg = config or QLearningConfig()
    cfg.validate()
    n, num_states, num_actions = env.num_agents, env.num_states, env.num_actions
    num_joint = num_actions**n

    def act(tables: QTables, s: Array, u: Array) -> Array:
        joint = epsilon_greedy(u.reshape(1, 2), tables.q[:, s], epsilon_at(tables.step, cfg))[0]
        return joint_actions(joint, n, num_actions)

    def update(tables: QTables, tr: Transition, key: Array | None) -> tuple[QTables, dict]:
        joint = joint_index(tr.actions, num_actions)[None]
        q, visits, td = q_learning_step(
            tables.q, tables.visits, tr.s, joint, tr.team_reward[None], tr.s_next,
            tr.terminated, gamma, cfg,
        )  # fmt: skip
        return QTables(q, visits, tables.step + 1), {"abs_td": jnp.abs(td[0])}

    return TabularLearner.create(
        "joint_q",
        env,
        lambda key: _tables((1, num_states, num_joint)),
        UniformFn(act, 2),
        UniformFn(lambda tables, tr, u: update(tables, tr, None), 0),
        greedy_policy,
    )
