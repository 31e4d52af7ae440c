"""MADDPG (Lowe et al. 2017): centralized critics, decentralized deterministic actors.

A centralized-training baseline (Li & Jia Fig. 1(c); DOP §5.1 and §5.3): every agent i has an
actor mu_i(o_i) on its own observation and a critic Q_i(x, a_1, ..., a_N) that sees what every
agent observed (``x`` = all observations, or the global state with ``critic_input="state"``)
and every agent's action. Training is centralized (critics read all actions and the target
actors of all agents), execution is decentralized (mu_i needs only o_i). Exempt from the
locality audit: labelled ``centralized`` in the registry.

Critic of agent i, from a shared replay buffer of joint transitions (MADDPG eq. 6):

    L(phi_i) = E[(Q_i(x, a_1..a_N) - y_i)^2],
    y_i = r_i + gamma (1 - terminal) Q'_i(x', a'_1..a'_N),   a'_j = mu'_j(o'_j)   (target actors)

Actor of agent i (MADDPG eq. 5; DOP eq. 1): ascend
``E[Q_i(x, a_1, .., mu_i(o_i), .., a_N)]`` with the other agents' actions taken from the
buffer, through ``grad_{a_i} Q_i grad_theta mu_i``. Targets: ``theta' <- tau theta + (1 - tau)
theta'`` for actors and critics. Actors (and targets) are updated every ``policy_delay``
critic steps (TD3's delay, which DOP App. H.2 applies to all its baselines).

Actions:

* continuous (Box): ``mu_i(o_i) = squash(MLP(o_i))`` (tanh onto the Box); exploration adds
  Gaussian noise of std ``exploration_noise`` x half the Box width, then clips.
* discrete: the actor outputs logits; acting samples a Gumbel-softmax one-hot (a sample of the
  softmax policy), and the actor gradient flows through the straight-through Gumbel-softmax
  (``nets.gumbel_softmax``, Jang et al. 2017), as in the MADDPG paper's discrete experiments
  and DOP §5.1. Critics see one-hot actions; target actions are Gumbel-softmax samples of the
  target actors; a small penalty ``logit_reg`` on the squared logits (the reference
  implementation's 1e-3) keeps them bounded. Unavailable actions are masked.

Rewards: ``reward="team"`` (default) trains every critic on the team reward, ``"local"`` on
the agent's own. Per-agent Adam with per-agent gradient clipping.

API (reused by the DOP family as a baseline): :class:`MADDPGConfig`, :func:`make_maddpg`
(``NeuralLearner``) and :class:`MADDPG` with the pieces (``actions``, ``critic_loss``,
``actor_loss``, ``update``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from netmarl.algos.base import (
    NeuralLearner,
    Runner,
    Step,
    collect,
    feedforward_policy,
    require_in_range,
    require_positive,
    runner_init,
)
from netmarl.algos.independent_ac import per_agent_adam, per_agent_init, per_agent_update
from netmarl.buffers import ReplayBuffer, buffer_add, buffer_init, buffer_ready, buffer_sample
from netmarl.envs.api import AutoReset, TimeStep
from netmarl.errors import ConfigError
from netmarl.nets import MLP, apply_stacked, gumbel_softmax, init_stacked, masked_logits, squash

Array = jax.Array


@dataclass(frozen=True)
class MADDPGConfig:
    num_envs: int = 4
    rollout: int = 25  # env steps per env per iteration
    updates: int = 50  # critic steps per iteration
    batch_size: int = 256
    buffer_size: int = 50_000  # joint transitions
    warmup: int = 1_000  # transitions stored before the first update
    hidden: tuple[int, ...] = (64, 64)
    critic_lr: float = 1e-3
    actor_lr: float = 1e-3
    tau: float = 0.01
    policy_delay: int = 1  # critic steps per actor/target step (DOP App. H.2 uses 2)
    exploration_noise: float = 0.1  # continuous: std as a fraction of half the Box width
    gumbel_temperature: float = 1.0
    logit_reg: float = 1e-3  # discrete: penalty on the actors' squared logits
    max_grad_norm: float = 10.0  # per agent
    reward: Literal["team", "local"] = "team"
    critic_input: Literal["obs", "state"] = "obs"


class Transition(NamedTuple):
    """One joint transition of the shared buffer."""

    obs: Array  # [N, O]
    state: Array  # [S]
    actions: Array  # [N, A] the action as critics see it (continuous value or one-hot)
    reward: Array  # [N] per critic (team or local)
    next_obs: Array
    next_state: Array
    next_avail: Array  # [N, num_actions] (discrete) or [N, 1]
    terminal: Array  # [] 1.0 if s' is terminal


class MADDPGParams(NamedTuple):
    actor: Any  # [N, ...]
    critic: Any  # [N, ...]
    target_actor: Any
    target_critic: Any


class MADDPGState(NamedTuple):
    params: MADDPGParams
    actor_opt: Any
    critic_opt: Any
    buffer: ReplayBuffer
    runner: Runner
    updates: Array  # [] int32 critic steps taken (for the policy delay)


class MADDPG:
    """MADDPG for ``env`` (continuous or discrete actions); :meth:`learner` builds the learner."""

    name = "maddpg"

    def __init__(self, env: Any, gamma: float, config: MADDPGConfig):
        name = self.name
        require_positive(
            config, name, "num_envs", "rollout", "updates", "batch_size", "buffer_size",
            "critic_lr", "actor_lr", "policy_delay", "gumbel_temperature", "max_grad_norm",
        )  # fmt: skip
        require_in_range(config, name, "tau", 0.0, 1.0)
        if config.warmup < 0 or config.exploration_noise < 0 or config.logit_reg < 0:
            raise ConfigError(f"{name}: warmup, exploration_noise and logit_reg must be >= 0.")
        if config.batch_size > config.buffer_size:
            raise ConfigError(
                f"{name}: batch_size ({config.batch_size}) exceeds buffer_size "
                f"({config.buffer_size}); lower batch_size or raise buffer_size."
            )
        self.env = AutoReset(env)
        self.gamma = gamma
        self.config = config
        spec = env.spec
        self.num_agents = n = spec.num_agents
        self.discrete = spec.discrete
        self.obs_size = int(jnp.prod(jnp.array(spec.obs_shape)))
        self.state_size = int(jnp.prod(jnp.array(spec.state_shape)))
        if self.discrete:
            self.action_dim = spec.num_actions
        else:
            self.action_dim = int(jnp.prod(jnp.array(spec.action_space.shape)))
            self.low, self.high = float(spec.action_space.low), float(spec.action_space.high)
        x_size = self.state_size if config.critic_input == "state" else n * self.obs_size
        self.critic_in = x_size + n * self.action_dim
        self.actor_net = MLP(config.hidden, self.action_dim, final_scale=0.01)
        self.critic_net = MLP(config.hidden, 1, final_scale=1.0)
        self.actor_tx = per_agent_adam(config.actor_lr, config.max_grad_norm)
        self.critic_tx = per_agent_adam(config.critic_lr, config.max_grad_norm)

    # --- actors -------------------------------------------------------------------------------

    def actor_out(self, actors: Any, obs: Array, avail: Array) -> Array:
        """Per-agent actor outputs [..., N, A] (pre-squash values or masked logits)."""

        def per_agent(o: Array) -> Array:
            out = apply_stacked(self.actor_net, actors, o.reshape(self.num_agents, -1))
            return out

        lead = obs.shape[:-2] if obs.ndim > 2 else ()
        flat = obs.reshape(-1, self.num_agents, self.obs_size)
        out = jax.vmap(per_agent)(flat).reshape(*lead, self.num_agents, self.action_dim)
        return masked_logits(out, avail) if self.discrete else out

    def actions(
        self, actors: Any, obs: Array, avail: Array, key: Array | None, differentiable: bool
    ) -> Array:
        """mu(o) as the critics see it, [..., N, A]: squashed values, or Gumbel-softmax one-hots
        (straight-through when ``differentiable``; argmax one-hots when ``key`` is None)."""
        out = self.actor_out(actors, obs, avail)
        if not self.discrete:
            return squash(out, self.low, self.high)
        if key is None:
            return jax.nn.one_hot(jnp.argmax(out, axis=-1), self.action_dim)
        sample = gumbel_softmax(key, out, self.config.gumbel_temperature)
        return sample if differentiable else jax.lax.stop_gradient(sample)

    def act(self, actors: Any, carry: Any, ts: TimeStep, key: Array) -> tuple[Array, Any, Array]:
        """Exploratory actions for one environment: (env actions, carry, critic encoding)."""
        k_act, k_noise = jax.random.split(key)
        a = self.actions(actors, ts.obs, ts.avail_actions, k_act, differentiable=False)
        if self.discrete:
            return jnp.argmax(a, axis=-1).astype(jnp.int32), carry, a
        half = (self.high - self.low) / 2
        noise = self.config.exploration_noise * half * jax.random.normal(k_noise, a.shape)
        a = jnp.clip(a + noise, self.low, self.high)
        return a.reshape(self.num_agents, *self.env.spec.action_space.shape), carry, a

    def greedy(self, actors: Any, ts: TimeStep, key: Array) -> Array:
        del key
        a = self.actions(actors, ts.obs, ts.avail_actions, None, differentiable=False)
        if self.discrete:
            return jnp.argmax(a, axis=-1).astype(jnp.int32)
        return a.reshape(self.num_agents, *self.env.spec.action_space.shape)

    # --- critics ------------------------------------------------------------------------------

    def critic_x(self, obs: Array, state: Array) -> Array:
        """What every critic conditions on, [B, X]: all observations or the global state."""
        if self.config.critic_input == "state":
            return state.reshape(state.shape[0], -1)
        return obs.reshape(obs.shape[0], -1)

    def q_values(self, critics: Any, x: Array, joint_actions: Array) -> Array:
        """Q_i(x, joint action of row i) for every agent i: ``joint_actions`` [B, N(i), N, A]
        (a joint action per critic) -> [B, N]."""
        b = x.shape[0]
        inputs = jnp.concatenate(
            [
                jnp.broadcast_to(x[:, None, :], (b, self.num_agents, x.shape[-1])),
                joint_actions.reshape(b, self.num_agents, -1),
            ],
            axis=-1,
        )
        out = apply_stacked(self.critic_net, critics, jnp.swapaxes(inputs, 0, 1))  # [N, B, 1]
        return jnp.swapaxes(out[..., 0], 0, 1)

    def critic_loss(
        self, critics: Any, params: MADDPGParams, batch: Transition, key: Array
    ) -> tuple[Array, dict[str, Array]]:
        """Sum over agents of mean (Q_i - y_i)^2 (critic i's term only involves phi_i)."""
        n = self.num_agents
        next_a = self.actions(
            params.target_actor, batch.next_obs, batch.next_avail, key, differentiable=False
        )  # a'_j = mu'_j(o'_j)
        next_x = self.critic_x(batch.next_obs, batch.next_state)
        tile = lambda a: jnp.broadcast_to(a[:, None], (a.shape[0], n, *a.shape[1:]))  # noqa: E731
        next_q = self.q_values(params.target_critic, next_x, tile(next_a))
        y = batch.reward + self.gamma * (1.0 - batch.terminal[:, None]) * next_q
        q = self.q_values(critics, self.critic_x(batch.obs, batch.state), tile(batch.actions))
        per_agent = jnp.mean((q - jax.lax.stop_gradient(y)) ** 2, axis=0)
        return jnp.sum(per_agent), {"critic_loss": jnp.mean(per_agent), "q": jnp.mean(q)}

    def actor_loss(
        self, actors: Any, critics: Any, batch: Transition, avail: Array, key: Array
    ) -> tuple[Array, dict[str, Array]]:
        """-sum_i E[Q_i(x, a_1, .., mu_i(o_i), .., a_N)]: critic i sees agent i's new action and
        the others' buffer actions, so actor i's gradient comes from Q_i alone."""
        n = self.num_agents
        new_a = self.actions(actors, batch.obs, avail, key, differentiable=True)  # [B, N, A]
        eye = jnp.eye(n, dtype=bool)[None, :, :, None]  # [1, N(i), N(j), 1]
        joint = jnp.where(eye, new_a[:, None], batch.actions[:, None])  # row i: a_i <- mu_i
        # differentiated w.r.t. the actors only: the critics are not moved by this loss
        values = self.q_values(critics, self.critic_x(batch.obs, batch.state), joint)
        loss = -jnp.sum(jnp.mean(values, axis=0))
        if self.discrete:
            logits = self.actor_out(actors, batch.obs, jnp.ones_like(avail, bool))
            loss = loss + self.config.logit_reg * jnp.sum(jnp.mean(logits**2, axis=(0, 2)))
        return loss, {"actor_q": jnp.mean(values)}

    # --- update -------------------------------------------------------------------------------

    def update(self, state: MADDPGState, key: Array) -> tuple[MADDPGState, dict[str, Array]]:
        """One critic step per agent; every ``policy_delay``-th time also an actor and a target
        step. Nothing moves before ``warmup`` transitions are stored."""
        cfg = self.config
        p = state.params
        k_batch, k_critic, k_actor = jax.random.split(key, 3)
        batch, avail = buffer_sample(state.buffer, k_batch, cfg.batch_size)
        grads, metrics = jax.grad(self.critic_loss, has_aux=True)(p.critic, p, batch, k_critic)
        critic, critic_opt = per_agent_update(self.critic_tx, grads, state.critic_opt, p.critic)
        grads, actor_metrics = jax.grad(self.actor_loss, has_aux=True)(
            p.actor, critic, batch, avail, k_actor
        )
        actor, actor_opt = per_agent_update(self.actor_tx, grads, state.actor_opt, p.actor)
        delayed = (state.updates + 1) % cfg.policy_delay == 0
        pick = lambda new, old: jax.tree.map(lambda a, b: jnp.where(delayed, a, b), new, old)  # noqa: E731
        actor, actor_opt = pick(actor, p.actor), pick(actor_opt, state.actor_opt)
        target_actor = pick(
            optax.incremental_update(actor, p.target_actor, cfg.tau), p.target_actor
        )
        target_critic = pick(
            optax.incremental_update(critic, p.target_critic, cfg.tau), p.target_critic
        )
        new = state._replace(
            params=MADDPGParams(actor, critic, target_actor, target_critic),
            actor_opt=actor_opt,
            critic_opt=critic_opt,
            updates=state.updates + 1,
        )
        ready = buffer_ready(state.buffer, max(cfg.warmup, 1))
        new = jax.tree.map(lambda a, b: jnp.where(ready, a, b), new, state)
        return new, {**metrics, **actor_metrics}

    # --- learner ------------------------------------------------------------------------------

    def transitions(self, steps: Step) -> tuple[Transition, Array]:
        """Steps [T, E, ...] -> (transitions [T*E, ...], avail actions at s [T*E, N, A])."""
        flat = jax.tree.map(lambda v: v.reshape(-1, *v.shape[2:]), steps)
        b, n = flat.team_reward.shape[0], self.num_agents
        if self.config.reward == "team":
            reward = jnp.broadcast_to(flat.team_reward[:, None], (b, n))
        else:
            reward = flat.rewards
        tr = Transition(
            flat.obs.reshape(b, n, -1), flat.global_state.reshape(b, -1), flat.extras,
            reward, flat.next_obs.reshape(b, n, -1), flat.next_global_state.reshape(b, -1),
            flat.next_avail_actions, flat.terminated.astype(jnp.float32),
        )  # fmt: skip
        return tr, flat.avail_actions

    def init(self, key: Array) -> MADDPGState:
        k_actor, k_critic, k_env, k_step = jax.random.split(key, 4)
        n = self.num_agents
        actor = init_stacked(self.actor_net, k_actor, n, jnp.zeros(self.obs_size))
        critic = init_stacked(self.critic_net, k_critic, n, jnp.zeros(self.critic_in))
        params = MADDPGParams(actor, critic, actor, critic)
        runner = runner_init(self.env, k_env, self.config.num_envs, lambda: ())
        # one example transition, to shape the buffer
        _, example = collect(self.env, self.act, actor, runner, k_step, 1)
        tr, avail = jax.tree.map(lambda v: v[0], self.transitions(example))
        buffer = buffer_init((tr, avail), self.config.buffer_size)
        return MADDPGState(
            params, per_agent_init(self.actor_tx, actor), per_agent_init(self.critic_tx, critic),
            buffer, runner, jnp.int32(0),
        )  # fmt: skip

    def iteration(self, state: MADDPGState, key: Array) -> tuple[MADDPGState, dict[str, Array]]:
        k_collect, k_update = jax.random.split(key)
        runner, steps = collect(
            self.env, self.act, state.params.actor, state.runner, k_collect, self.config.rollout
        )
        state = state._replace(
            buffer=buffer_add(state.buffer, self.transitions(steps)), runner=runner
        )
        state, metrics = jax.lax.scan(
            self.update, state, jax.random.split(k_update, self.config.updates)
        )
        metrics = jax.tree.map(jnp.mean, metrics)
        metrics["team_reward"] = jnp.mean(steps.team_reward)
        return state, metrics

    def learner(self) -> NeuralLearner:
        cfg = self.config
        return NeuralLearner(
            name=self.name,
            env=self.env,
            init=self.init,
            iteration=self.iteration,
            steps_per_iteration=cfg.num_envs * cfg.rollout,
            policy=feedforward_policy(self.greedy),
            policy_params=lambda state: state.params.actor,
        )


def make_maddpg(env: Any, gamma: float, config: MADDPGConfig) -> NeuralLearner:
    """MADDPG as a :class:`~netmarl.algos.base.NeuralLearner` (continuous or discrete)."""
    return MADDPG(env, gamma, config).learner()


def algo_specs() -> dict[str, Any]:
    from netmarl.algos import AlgoSpec

    return {
        "maddpg": AlgoSpec(
            "maddpg", lambda env, gamma, cfg, net: make_maddpg(env, gamma, cfg), MADDPGConfig,
            "actor_critic", False,
            "MADDPG: centralized critics on all observations and actions, deterministic "
            "actors (Gumbel-softmax for discrete actions)",
            centralized=True,
        ),
    }  # fmt: skip
