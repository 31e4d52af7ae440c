"""Independent actor-critic: every agent runs its own advantage actor-critic (A2C).

The "independent learners" baseline of the Value Propagation and Li & Jia papers: agent i has
an actor pi_i(a_i | o_i) and a critic V_i(o_i) on its own observation, learns from its own
reward (``reward: local``, the networked setting) or the team reward (``reward: team``), and
never communicates. On-policy: each iteration collects ``rollout`` steps of ``num_envs``
parallel environments and takes one gradient step per agent on

    L_i = -E[log pi_i(a_i | o_i) A_i] + c_v E[(V_i(o_i) - G_i)^2] - c_H E[H(pi_i(. | o_i))]

with generalised advantage estimation (Schulman et al. 2016): A_i = sum_l (gamma lambda)^l
delta_{t+l}, delta_t = r_t + gamma (1 - term_{t+1}) V_i(o_{t+1}) - V_i(o_t), G_i = A_i + V_i.
Episodes cut by the time limit bootstrap from the final observation (only true terminal
states do not). Discrete actions use a softmax policy over available actions; continuous ones
a diagonal Gaussian (learned state-independent log std) clipped to the Box for the env.
Gradients are clipped per agent (never across agents).
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
from netmarl.envs.api import AutoReset, TimeStep
from netmarl.nets import (
    MLP,
    apply_stacked,
    categorical_entropy,
    categorical_log_prob,
    gaussian_log_prob,
    init_stacked,
    masked_logits,
)

Array = jax.Array


@dataclass(frozen=True)
class IndependentACConfig:
    num_envs: int = 8
    rollout: int = 25  # steps per env per iteration (n of the n-step returns)
    hidden: tuple[int, ...] = (64, 64)
    lr: float = 1e-3
    gae_lambda: float = 0.95
    value_coef: float = 0.5
    entropy_coef: float = 0.01
    max_grad_norm: float = 10.0  # per agent
    reward: Literal["local", "team"] = "local"


class ActorCriticParams(NamedTuple):
    actor: Any  # [N, ...]
    critic: Any  # [N, ...]
    log_std: Array  # [N, action_dim] (unused for discrete actions)


class IndependentACState(NamedTuple):
    params: ActorCriticParams
    opt_state: Any
    runner: Runner


def per_agent_adam(lr: float, max_grad_norm: float) -> optax.GradientTransformation:
    """Adam after clipping each agent's gradient to ``max_grad_norm`` on its own; apply to
    parameters with a leading agent axis through :func:`per_agent_update`."""
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(lr))


def per_agent_init(tx: optax.GradientTransformation, params: Any) -> Any:
    return jax.vmap(tx.init)(params)


def per_agent_update(
    tx: optax.GradientTransformation, grads: Any, opt_state: Any, params: Any
) -> tuple[Any, Any]:
    """One optimiser step per agent (vmapped over the leading agent axis): clipping and
    Adam's moments never mix agents."""
    updates, opt_state = jax.vmap(tx.update)(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


class ActorCriticNets:
    """Per-agent actor and critic MLPs on local observations, and the action distribution."""

    def __init__(self, env: Any, hidden: tuple[int, ...]):
        spec = env.spec
        self.discrete = spec.discrete
        self.space = spec.action_space
        self.num_agents = spec.num_agents
        self.obs_size = int(jnp.prod(jnp.array(spec.obs_shape)))
        out = spec.num_actions if self.discrete else int(self.space.shape[0])
        self.action_dim = out
        self.actor = MLP(hidden, out, final_scale=0.01)
        self.critic = MLP(hidden, 1, final_scale=1.0)

    def init(self, key: Array) -> ActorCriticParams:
        key_a, key_c = jax.random.split(key)
        x = jnp.zeros((self.obs_size,))
        return ActorCriticParams(
            init_stacked(self.actor, key_a, self.num_agents, x),
            init_stacked(self.critic, key_c, self.num_agents, x),
            jnp.full((self.num_agents, self.action_dim), -0.5),
        )

    def logits(self, params: ActorCriticParams, obs: Array, avail: Array) -> Array:
        """Per-agent policy outputs [N, A] from observations [N, obs]."""
        out = apply_stacked(self.actor, params.actor, obs.reshape(self.num_agents, -1))
        return masked_logits(out, avail) if self.discrete else out

    def value(self, params: ActorCriticParams, obs: Array) -> Array:
        return apply_stacked(self.critic, params.critic, obs.reshape(self.num_agents, -1))[..., 0]

    def sample(self, params: ActorCriticParams, ts: TimeStep, key: Array) -> tuple[Array, Array]:
        """(actions [N] or [N, d], the raw sample used for log-probs)."""
        out = self.logits(params, ts.obs, ts.avail_actions)
        if self.discrete:
            a = jax.random.categorical(key, out).astype(jnp.int32)
            return a, a.astype(jnp.float32)[:, None]
        raw = out + jnp.exp(params.log_std) * jax.random.normal(key, out.shape)
        return jnp.clip(raw, self.space.low, self.space.high), raw

    def greedy(self, params: ActorCriticParams, ts: TimeStep, key: Array) -> Array:
        del key
        out = self.logits(params, ts.obs, ts.avail_actions)
        if self.discrete:
            return jnp.argmax(out, axis=-1).astype(jnp.int32)
        return jnp.clip(out, self.space.low, self.space.high)

    def log_prob_entropy(
        self, params: ActorCriticParams, obs: Array, avail: Array, raw: Array
    ) -> tuple[Array, Array]:
        """log pi_i(a_i | o_i) and the entropy, per agent [N]."""
        out = self.logits(params, obs, avail)
        if self.discrete:
            action = raw[:, 0].astype(jnp.int32)
            return categorical_log_prob(out, action), categorical_entropy(out)
        log_std = params.log_std
        entropy = jnp.sum(log_std + 0.5 * jnp.log(2 * jnp.pi * jnp.e), axis=-1)
        return gaussian_log_prob(out, log_std, raw), entropy


def gae(
    rewards: Array, values: Array, next_values: Array, done: Array, terminated: Array,
    gamma: float, lam: float,
) -> Array:  # fmt: skip
    """Generalised advantages over time axis 0 (leaves [T, ...]); the recursion stops at
    episode ends, and only true terminal states drop the bootstrap."""
    delta = rewards + gamma * (1.0 - terminated) * next_values - values

    def back(acc: Array, x: tuple[Array, Array]) -> tuple[Array, Array]:
        d, end = x
        acc = d + gamma * lam * (1.0 - end) * acc
        return acc, acc

    _, adv = jax.lax.scan(back, jnp.zeros_like(delta[0]), (delta, done), reverse=True)
    return adv


def make_independent_ac(env: Any, gamma: float, config: IndependentACConfig) -> NeuralLearner:
    name = "independent_ac"
    require_positive(config, name, "num_envs", "rollout", "lr", "max_grad_norm")
    require_in_range(config, name, "gae_lambda", 0.0, 1.0)
    env = AutoReset(env)
    nets = ActorCriticNets(env, config.hidden)
    tx = per_agent_adam(config.lr, config.max_grad_norm)

    def act(params: ActorCriticParams, carry: Any, ts: TimeStep, key: Array) -> tuple:
        actions, raw = nets.sample(params, ts, key)
        return actions, carry, raw

    def init(key: Array) -> IndependentACState:
        key_params, key_env = jax.random.split(key)
        params = nets.init(key_params)
        runner = runner_init(env, key_env, config.num_envs, lambda: ())
        return IndependentACState(params, per_agent_init(tx, params), runner)

    def agent_rewards(steps: Step) -> Array:
        if config.reward == "team":
            return jnp.broadcast_to(steps.team_reward[..., None], steps.rewards.shape)
        return steps.rewards

    def loss(params: ActorCriticParams, steps: Step) -> tuple[Array, dict[str, Array]]:
        """Sum over agents of L_i; agent i's term depends only on agent i's parameters, so
        the gradient of the sum is every agent's own gradient."""
        per_step = jax.vmap(jax.vmap(lambda o: nets.value(params, o)))  # over [T, E]
        values = per_step(steps.obs)
        next_values = jax.lax.stop_gradient(per_step(steps.next_obs))
        done = steps.done[..., None].astype(jnp.float32)
        term = steps.terminated[..., None].astype(jnp.float32)
        adv = gae(
            agent_rewards(steps), jax.lax.stop_gradient(values), next_values, done, term,
            gamma, config.gae_lambda,
        )  # fmt: skip
        returns = adv + jax.lax.stop_gradient(values)
        logp, entropy = jax.vmap(
            jax.vmap(lambda o, av, r: nets.log_prob_entropy(params, o, av, r))
        )(steps.obs, steps.avail_actions, steps.extras)
        actor = -jnp.mean(logp * adv, axis=(0, 1))  # [N]
        critic = jnp.mean((values - returns) ** 2, axis=(0, 1))
        ent = jnp.mean(entropy, axis=(0, 1))
        total = actor + config.value_coef * critic - config.entropy_coef * ent
        return jnp.sum(total), {
            "actor_loss": actor.mean(),
            "critic_loss": critic.mean(),
            "entropy": ent.mean(),
        }

    def iteration(state: IndependentACState, key: Array) -> tuple[IndependentACState, dict]:
        runner, steps = collect(env, act, state.params, state.runner, key, config.rollout)
        grads, metrics = jax.grad(loss, has_aux=True)(state.params, steps)
        params, opt_state = per_agent_update(tx, grads, state.opt_state, state.params)
        metrics["team_reward"] = jnp.mean(steps.team_reward)
        return IndependentACState(params, opt_state, runner), metrics

    return NeuralLearner(
        name=name,
        env=env,
        init=init,
        iteration=iteration,
        steps_per_iteration=config.num_envs * config.rollout,
        policy=feedforward_policy(nets.greedy),
        policy_params=lambda state: state.params,
    )
