"""Li & Jia (2021) Algorithm 1: decentralized tabular actor-critic, and its centralized twin.

Paper 003 ("Decentralized MARL: an off-policy method", §III). Every agent i keeps private
tables and never sees another agent's policy:

* a critic ``Q^i(s, a^i)`` over the global state and its *own* action, the other agents
  being part of the environment (eq. 2, 5);
* a policy table ``zeta^i(s, a^i)`` with the softmax policy of eq. (6).

One step of Algorithm 1, for each agent i at once:

* policy evaluation, eq. (7):
  ``Q^i(s_t, a^i_t) += alpha [r_t + gamma Q^i(s_{t+1}, a~^i) - Q^i(s_t, a^i_t)]`` with
  ``a~^i ~ pi^i(s_{t+1}, .)`` freshly sampled;
* policy improvement, eq. (32)-(34):
  ``v^i = sum_a pi^i(s_t, a) Q^i(s_t, a)``,
  ``zeta^i(s_t, .) += beta pi^i(s_t, .) * (Q^i(s_t, .) - v^i)`` (the exact gradient of
  E_{pi^i} Q^i, eq. 35-38), then clip to ``[T_m, T_M]`` so every action keeps a positive
  probability (Assumption 1).

Two time scales: the critic step ``alpha`` is much larger than the actor step ``beta``.
Step sizes follow ``base / (1 + n(s, a))^power`` with per-entry visit counts n, which
satisfies eq. (9)-(10) for power in (0.5, 1] [choice: the paper gives no schedule].

The reward each agent learns from (``reward_signal``):

* ``"team"`` (the paper's setting, Def. 1): the reward is shared and observed by all, so
  Algorithm 1 needs **no messages at all**;
* ``"consensus"``: each agent only observes its local reward r_i and estimates the team
  reward (their mean) with K rounds of consensus over the communication network, the
  natural extension to the local-reward MDPs of Zhang et al. 2018 [choice];
* ``"local"``: each agent learns from its own reward only (no communication).

**Centralized actor-critic** (paper §V) is Algorithm 1 with a single learner that owns the
joint action: its tables are ``Q(s, a)`` and ``zeta(s, a)`` over all ``|A|^N`` joint
actions. The same per-learner functions implement both.
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
    sample_softmax,
    softmax_probs,
    step_size,
)
from netmarl.envs.tabular import (
    joint_actions,
    joint_index,
)
from netmarl.errors import ConfigError

Array = jax.Array
RewardSignal = Literal["team", "consensus", "local"]


@dataclass(frozen=True)
class LiJiaACConfig:
    """Hyper-parameters of Algorithm 1 (all [choice] unless noted: the paper gives none)."""

    # Step sizes: the critic follows a Robbins-Monro schedule per (s, a^i) entry, which
    # Theorem 1 (eq. 9-10) needs; the actor takes a small constant step, so the policy moves
    # on a slower time scale than its critic (beta / alpha -> 0 as visits grow). Chosen on
    # the N = 4, 5 random MDPs from {0.1, 0.01, 0.003} x {constant, visit-decayed}: faster
    # actors plateau lower (a worse local optimum), slower ones are still climbing at 1M steps.
    critic_lr: float = 1.0  # alpha base (eq. 7): alpha = critic_lr / (1 + n(s, a))^power
    critic_lr_power: float = 0.65
    actor_lr: float = 0.01  # beta base (eq. 33): beta = actor_lr / (1 + n(s))^power
    actor_lr_power: float = 0.0
    zeta_min: float = -8.0  # T_m (eq. 34)
    zeta_max: float = 8.0  # T_M (eq. 34)
    q_init_scale: float = 0.0  # Q^i_0 ~ U(-scale, scale); the paper initialises randomly
    reward_signal: RewardSignal = "team"

    def validate(self) -> None:
        for name in ("critic_lr", "actor_lr"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}.")
        if not self.zeta_min < self.zeta_max:
            raise ConfigError(
                f"zeta_min ({self.zeta_min}) must be below zeta_max ({self.zeta_max}): "
                "they are the clipping thresholds T_m < T_M of Li & Jia eq. (34)."
            )
        if self.reward_signal not in ("team", "consensus", "local"):
            raise ConfigError(
                f"reward_signal must be 'team', 'consensus' or 'local', got {self.reward_signal!r}."
            )


class ACTables(NamedTuple):
    """Per-learner tables, leading axis = learners (N agents, or 1 for centralized AC)."""

    q: Array  # [L, S, A_l] critic Q^i(s, a^i)
    zeta: Array  # [L, S, A_l] policy preferences, pi^i = softmax(zeta^i) (eq. 6)
    critic_visits: Array  # [L, S, A_l] n(s, a) for alpha
    actor_visits: Array  # [L, S] n(s) for beta


# --- one learner's update: what runs inside agent i -------------------------------------
#
# The equations are written once, on the entries / rows that a step touches (critic_entry,
# actor_row); critic_step and actor_step apply them to one learner's tables, learner_step to
# every learner's tables at once (a leading learner axis rather than a vmap: the same reads
# and writes, but the row zeta[:, s] is then literally act's, and XLA computes it and its
# exponentials once per step).


def critic_entry(
    q_sa: Array, n_sa: Array, r: Array, q_next: Array, terminated: Array, gamma: float,
    cfg: LiJiaACConfig,
) -> tuple[Array, Array]:  # fmt: skip
    """Li & Jia eq. (7) on the entry ``Q^i(s_t, a^i_t)`` with ``n_sa`` visits and
    ``q_next = Q^i(s_{t+1}, a~^i)``; returns (the increment of Q^i(s_t, a^i_t), td_error)."""
    alpha = step_size(cfg.critic_lr, n_sa, cfg.critic_lr_power)
    td_error = r + jnp.where(terminated, 0.0, gamma * q_next) - q_sa
    return alpha * td_error, td_error


def actor_row(
    zeta_s: Array, pi_s: Array, q_s: Array, n_s: Array, cfg: LiJiaACConfig
) -> tuple[Array, Array]:
    """Li & Jia eq. (32)-(34) on the rows at s_t: ``zeta_s, q_s [..., A]``, ``pi_s`` =
    softmax(zeta_s), ``n_s [...]`` the visits of s_t; returns the new row and count."""
    beta = step_size(cfg.actor_lr, n_s, cfg.actor_lr_power)[..., None]
    v_s = jnp.sum(pi_s * q_s, axis=-1, keepdims=True)  # eq. (32)
    row = zeta_s + beta * pi_s * (q_s - v_s)  # eq. (33)
    return jnp.clip(row, cfg.zeta_min, cfg.zeta_max), n_s + 1  # eq. (34)


def critic_step(
    q: Array, visits: Array, s: Array, a: Array, r: Array, s_next: Array, a_next: Array,
    terminated: Array, gamma: float, cfg: LiJiaACConfig,
) -> tuple[Array, Array, Array]:  # fmt: skip
    """Li & Jia eq. (7) on one learner's tables ``[S, A]``; returns (q, visits, td_error)."""
    n_sa = visits[s, a]
    delta, td_error = critic_entry(q[s, a], n_sa, r, q[s_next, a_next], terminated, gamma, cfg)
    # set(n + 1) rather than add(1): the write then depends on the read, which lets XLA update
    # the table in place instead of copying it every step.
    return q.at[s, a].add(delta), visits.at[s, a].set(n_sa + 1), td_error


def actor_step(
    zeta: Array, q: Array, visits: Array, s: Array, cfg: LiJiaACConfig
) -> tuple[Array, Array]:
    """Li & Jia eq. (32)-(34) for one learner at state s; returns (zeta, visits)."""
    zeta_s, n_s = actor_row(zeta[s], softmax_probs(zeta[s]), q[s], visits[s], cfg)
    return zeta.at[s].set(zeta_s), visits.at[s].set(n_s)


def learner_step(
    tables: ACTables, s: Array, a: Array, r: Array, s_next: Array, terminated: Array,
    u: Array, gamma: float, cfg: LiJiaACConfig,
) -> tuple[ACTables, Array]:  # fmt: skip
    """One full step of Algorithm 1 for every learner (tables with the learner axis L).

    ``a, r, u [L]``: each learner's own action, reward and the U[0, 1) number that samples its
    fresh next action of eq. (7). Learner l only reads and writes its own tables.
    """
    q, zeta, critic_visits, actor_visits = tables
    own = jnp.arange(q.shape[0])  # learner l's entries: [own[l], s, a[l]]
    a_next = sample_softmax(zeta[:, s_next], u)  # a~^i ~ pi^i(s_{t+1}, .)
    n_sa = critic_visits[own, s, a]
    delta, td_error = critic_entry(
        q[own, s, a], n_sa, r, q[own, s_next, a_next], terminated, gamma, cfg
    )
    q = q.at[own, s, a].add(delta)  # eq. (7)
    critic_visits = critic_visits.at[own, s, a].set(n_sa + 1)  # set(n + 1): see critic_step
    zeta_s = zeta[:, s]
    zeta_s, m_s = actor_row(zeta_s, softmax_probs(zeta_s), q[:, s], actor_visits[:, s], cfg)
    tables = ACTables(q, zeta.at[:, s].set(zeta_s), critic_visits, actor_visits.at[:, s].set(m_s))
    return tables, td_error


# --- the reward each agent learns from ----------------------------------------------------


def agent_rewards(
    transition: Transition, reward_signal: str, network: Any, key: Array | None
) -> tuple[Array, Any]:
    """Rewards [N] the agents learn from, and the MixStats of any messages sent."""
    from netmarl.network import MixStats  # local import: the network is optional here

    if reward_signal == "team":
        rewards = jnp.broadcast_to(transition.team_reward, transition.rewards.shape)
        return rewards, MixStats.zero()
    if reward_signal == "local":
        return transition.rewards, MixStats.zero()
    # "consensus": each agent starts from its own reward; K rounds estimate the mean.
    return network.mix(transition.rewards, key)


# --- learners ------------------------------------------------------------------------------


def make_lijia_ac(
    env: Any, gamma: float, config: LiJiaACConfig | None = None, network: Any = None
) -> TabularLearner:
    """Algorithm 1: one learner per agent, each owning its own action (decentralized)."""
    cfg = config or LiJiaACConfig()
    cfg.validate()
    if cfg.reward_signal == "consensus" and network is None:
        raise ConfigError("reward_signal='consensus' needs a communication network (graph).")
    n, num_states, num_actions = env.num_agents, env.num_states, env.num_actions
    shape = (n, num_states, num_actions)

    def init(key: Array) -> ACTables:
        q = jax.random.uniform(key, shape, minval=-1.0, maxval=1.0) * cfg.q_init_scale
        return ACTables(q, jnp.zeros(shape), jnp.zeros(shape, jnp.int32),
                        jnp.zeros(shape[:2], jnp.int32))  # fmt: skip

    def act(tables: ACTables, s: Array, u: Array) -> Array:
        return sample_softmax(tables.zeta[:, s], u)  # each agent samples a^i ~ pi^i(s)

    def update_agents(
        tables: ACTables, tr: Transition, u: Array, key_mix: Array | None
    ) -> tuple[ACTables, dict]:
        rewards, stats = agent_rewards(tr, cfg.reward_signal, network, key_mix)
        tables, td = learner_step(
            tables, tr.s, tr.actions, rewards, tr.s_next, tr.terminated, u, gamma, cfg
        )
        return tables, {"abs_td": jnp.mean(jnp.abs(td)), "floats_sent": stats.floats_sent}

    if cfg.reward_signal == "consensus":  # the mixing may draw graphs: it needs a PRNG key

        def update(tables: ACTables, tr: Transition, key: Array) -> tuple[ACTables, dict]:
            key_mix, key_agents = jax.random.split(key)
            return update_agents(tables, tr, jax.random.uniform(key_agents, (n,)), key_mix)

    else:  # one U[0, 1) number per agent for its next action a~^i
        update = UniformFn(lambda tables, tr, u: update_agents(tables, tr, u, None), n)

    def policy(tables: ACTables) -> Array:
        return jax.nn.softmax(tables.zeta, axis=-1)  # eq. (6), each agent over its own actions

    return TabularLearner.create("lijia_ac", env, init, UniformFn(act, n), update, policy)


def make_central_ac(env: Any, gamma: float, config: LiJiaACConfig | None = None) -> TabularLearner:
    """Centralized AC: Algorithm 1 with one learner owning the joint action (paper §V)."""
    cfg = config or LiJiaACConfig()
    cfg.validate()
    n, num_states, num_actions = env.num_agents, env.num_states, env.num_actions
    num_joint = num_actions**n
    shape = (1, num_states, num_joint)

    def init(key: Array) -> ACTables:
        q = jax.random.uniform(key, shape, minval=-1.0, maxval=1.0) * cfg.q_init_scale
        return ACTables(q, jnp.zeros(shape), jnp.zeros(shape, jnp.int32),
                        jnp.zeros(shape[:2], jnp.int32))  # fmt: skip

    def act(tables: ACTables, s: Array, u: Array) -> Array:
        joint = sample_softmax(tables.zeta[:, s], u)[0]  # the one learner samples a ~ pi(s)
        return joint_actions(joint, n, num_actions)

    def update(tables: ACTables, tr: Transition, u: Array) -> tuple[ACTables, dict]:
        joint = joint_index(tr.actions, num_actions)[None]
        tables, td = learner_step(
            tables, tr.s, joint, tr.team_reward[None], tr.s_next, tr.terminated, u, gamma, cfg
        )
        return tables, {"abs_td": jnp.abs(td[0]), "floats_sent": jnp.float32(0.0)}

    def policy(tables: ACTables) -> Array:
        return jax.nn.softmax(tables.zeta, axis=-1)  # [1, S, A^N]: one learner, joint actions

    return TabularLearner.create(
        "central_ac", env, init, UniformFn(act, 1), UniformFn(update, 1), policy
    )
