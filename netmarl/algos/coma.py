"""COMA: counterfactual multi-agent policy gradients (Foerster et al., AAAI 2018).

The stochastic multi-agent policy-gradient baseline of DOP (paper 002, eq. 2)::

    g = E_pi[ sum_i grad log pi_i(a_i | tau_i) A_i(s, a) ],
    A_i(s, a) = Q(s, a) - sum_{a'_i} pi_i(a'_i | tau_i) Q(s, (a_-i, a'_i))

(the counterfactual baseline marginalises agent i's own action with the others' actions held
fixed). One centralized critic, shared by all agents as in Foerster et al. and pymarl, takes
(global state, agent i's observation, the other agents' actions one-hot, agent i's id) and
outputs Q(s, (a_-i, .)) for every action of agent i, so the baseline costs one forward pass.
Centralized training: labelled ``centralized`` and exempt from the locality audit.

On-policy, as the original: every iteration plays ``num_envs`` whole episodes with the
recurrent actors (:class:`netmarl.algos.dop.RecurrentActors`: GRU(64), epsilon floor), fits
the critic to TD(lambda) targets of the target critic (paper 002 eq. 9 with the joint critic),
then takes one actor step with the advantages of the updated critic. The target critic is
copied every ``target_update_interval`` iterations. Defaults follow pymarl's ``coma.yaml``
(lr 5e-4, RMSprop, lambda 0.8, clip 10).

[choice] A truncated episode's last step bootstraps from Q'(s_T, a_T) with a_T drawn from the
current policy (pymarl acts in the final state too); env steps per iteration are counted as
``num_envs x episode_limit``, as for DOP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from netmarl.algos.base import (
    NeuralLearner,
    collect_episodes,
    keep_if,
    require_discrete,
    require_positive,
)
from netmarl.algos.dop import (
    CriticMLP,
    Episode,
    RecurrentActors,
    check_optimiser,
    episodes_from_steps,
    epsilon_at,
    gradient_variance,
    masked_mean,
    rmsprop,
    td_lambda_targets,
)
from netmarl.algos.independent_ac import per_agent_init, per_agent_update
from netmarl.envs.api import AutoReset
from netmarl.errors import ConfigError

Array = jax.Array


@dataclass(frozen=True)
class COMAConfig:
    num_envs: int = 8  # episodes per iteration (one on-policy batch)
    td_lambda: float = 0.8
    actor_hidden: int = 64
    critic_hidden: tuple[int, ...] = (128, 128)
    actor_lr: float = 5e-4
    critic_lr: float = 5e-4
    rms_alpha: float = 0.99
    rms_eps: float = 1e-5
    max_grad_norm: float = 10.0
    epsilon_start: float = 0.5
    epsilon_end: float = 0.01
    epsilon_anneal_steps: int = 100_000
    target_update_interval: int = 25  # iterations (pymarl: 200 episodes = 25 batches of 8)
    updates_per_iteration: int = 1  # critic steps per iteration
    log_grad_variance: bool = False


class COMAState(NamedTuple):
    actor: Any
    critic: Any
    target_critic: Any
    actor_opt: Any
    critic_opt: Any
    iteration: Array
    env_steps: Array


class CentralCritic:
    """Q(s, (a_-i, .)) for every agent i from one shared MLP."""

    def __init__(self, env: Any, hidden: tuple[int, ...]):
        spec = env.spec
        self.n = spec.num_agents
        self.num_actions = spec.num_actions
        self.state_size = math.prod(spec.state_shape)
        self.obs_size = math.prod(spec.obs_shape)
        self.net = CriticMLP(tuple(hidden), spec.num_actions)
        self.in_size = self.state_size + self.obs_size + self.n * self.num_actions + self.n

    def init(self, key: Array) -> Any:
        return self.net.init(key, jnp.zeros((self.in_size,)))

    def inputs(self, state: Array, obs: Array, actions: Array) -> Array:
        """[N, in]: agent i's row holds the others' actions one-hot, its own zeroed."""
        onehot = jax.nn.one_hot(actions, self.num_actions)  # [N, A]
        others = jnp.broadcast_to(onehot, (self.n, self.n, self.num_actions))
        others = others * (1.0 - jnp.eye(self.n))[..., None]
        s = jnp.broadcast_to(state.reshape(-1), (self.n, self.state_size))
        return jnp.concatenate(
            [s, obs.reshape(self.n, -1), others.reshape(self.n, -1), jnp.eye(self.n)], axis=-1
        )

    def __call__(self, params: Any, state: Array, obs: Array, actions: Array) -> Array:
        """Q(s, (a_-i, .)) [N, A]."""
        return self.net.apply(params, self.inputs(state, obs, actions))


def counterfactual_advantage(q: Array, probs: Array, actions: Array) -> Array:
    """A_i = Q(s, a) - sum_a' pi_i(a') Q(s, (a_-i, a')) (eq. 2). ``q, probs [..., N, A]``."""
    taken = jnp.take_along_axis(q, actions[..., None], axis=-1)[..., 0]
    return taken - jnp.sum(probs * q, axis=-1)


def make_coma(env: Any, gamma: float, config: COMAConfig, name: str = "coma") -> NeuralLearner:
    """COMA (Foerster et al. 2018) as a :class:`NeuralLearner`."""
    require_discrete(env, name)
    check_optimiser(config, name)
    require_positive(config, name, "actor_hidden", "target_update_interval")
    for field in ("td_lambda", "epsilon_start", "epsilon_end"):
        value = getattr(config, field)
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{name}: {field} must be in [0, 1], got {value}.")
    env = AutoReset(env)
    limit = env.spec.episode_limit
    actors = RecurrentActors(env, config.actor_hidden)
    critic = CentralCritic(env, config.critic_hidden)
    actor_tx = rmsprop(config.actor_lr, config)
    critic_tx = rmsprop(config.critic_lr, config)
    steps_per_iteration = config.num_envs * limit
    act = actors.sample_act()

    def episode_q(params: Any, ep: Episode, last_actions: Array) -> Array:
        """Q(s_t, (a_-i, .)) [T + 1, N, A]; the last row uses ``last_actions``."""
        acts = jnp.concatenate([ep.actions, last_actions[None]], axis=0)
        return jax.vmap(lambda s, o, a: critic(params, s, o, a))(ep.state, ep.obs, acts)

    def critic_loss(params: Any, target: Any, ep: Episode, last: Array) -> Array:
        """Sum over agents and live steps of (y - Q(s, a))^2, y the TD(lambda) target."""
        acts = jnp.concatenate([ep.actions, last[None]], axis=0)
        q_target = jnp.take_along_axis(episode_q(target, ep, last), acts[..., None], -1)[..., 0]
        y = jax.vmap(
            lambda qt: td_lambda_targets(
                qt[:-1], qt[1:], ep.reward, ep.terminated, ep.filled, gamma, config.td_lambda
            ),
            in_axes=1,
            out_axes=1,
        )(q_target)  # per agent [T, N]
        q = episode_q(params, ep, last)[:-1]
        pred = jnp.take_along_axis(q, ep.actions[..., None], axis=-1)[..., 0]
        err = (jax.lax.stop_gradient(y) - pred) ** 2
        return jnp.sum(jnp.where(ep.filled[:, None], err, 0.0))

    def actor_terms(actor: Any, critic_params: Any, eps: Array, ep: Episode) -> Array:
        probs = actors.episode_probs(actor, ep.obs[:-1], ep.avail[:-1], eps)
        q = jax.vmap(lambda s, o, a: critic(critic_params, s, o, a))(
            ep.state[:-1], ep.obs[:-1], ep.actions
        )
        adv = jax.lax.stop_gradient(
            counterfactual_advantage(q, jax.lax.stop_gradient(probs), ep.actions)
        )
        logp = jnp.log(jnp.take_along_axis(probs, ep.actions[..., None], -1)[..., 0] + 1e-10)
        return -jnp.sum(adv * logp, axis=-1)  # [T]

    def actor_loss(actor: Any, critic_params: Any, eps: Array, batch: Episode) -> Array:
        per = jax.vmap(actor_terms, in_axes=(None, None, None, 0))(actor, critic_params, eps, batch)
        return masked_mean(per, batch.filled)

    def init(key: Array) -> COMAState:
        key_a, key_c = jax.random.split(key)
        actor = actors.init(key_a)
        params = critic.init(key_c)
        return COMAState(
            actor,
            params,
            params,
            per_agent_init(actor_tx, actor),
            critic_tx.init(params),
            jnp.int32(0),
            jnp.int32(0),
        )

    def iteration(state: COMAState, key: Array, active: Array | bool = True) -> tuple:
        """``num_envs`` on-policy episodes, then critic and actor updates (nothing where
        ``active`` is False)."""
        key_run, key_last = jax.random.split(key)
        eps = epsilon_at(config, state.env_steps)
        steps, filled = collect_episodes(
            env, act, (state.actor, eps), key_run, config.num_envs, actors.init_carry
        )
        batch = episodes_from_steps(steps, filled)
        # actions in the state after the last step (bootstrap of truncated episodes)
        last_probs = jax.vmap(lambda ep: actors.episode_probs(state.actor, ep.obs, ep.avail, eps))(
            batch
        )[:, -1]
        last = jax.random.categorical(key_last, jnp.log(last_probs + 1e-20)).astype(jnp.int32)

        def critic_step(carry: tuple, _: Any) -> tuple[tuple, Array]:
            params, opt = carry

            def loss(p: Any) -> Array:
                per = jax.vmap(critic_loss, in_axes=(None, None, 0, 0))(
                    p, state.target_critic, batch, last
                )
                return jnp.sum(per) / jnp.maximum(jnp.sum(batch.filled) * critic.n, 1.0)

            value, grads = jax.value_and_grad(loss)(params)
            updates, opt = critic_tx.update(grads, opt, params)
            return (optax.apply_updates(params, updates), opt), value

        (critic_params, critic_opt), closs = jax.lax.scan(
            critic_step, (state.critic, state.critic_opt), None, config.updates_per_iteration
        )
        aloss, grads = jax.value_and_grad(actor_loss)(state.actor, critic_params, eps, batch)
        actor, actor_opt = per_agent_update(actor_tx, grads, state.actor_opt, state.actor)
        metrics = {
            "critic_loss": jnp.mean(closs),
            "actor_loss": aloss,
            "epsilon": eps,
            "team_return": jnp.sum(steps.team_reward) / config.num_envs,
            "episode_length": jnp.sum(filled) / config.num_envs,
        }
        if config.log_grad_variance:  # per-episode policy gradients (DOP Fig. 2, left)

            def one(ep: Episode) -> Any:
                single = jax.tree.map(lambda x: x[None], ep)
                return jax.grad(actor_loss)(state.actor, critic_params, eps, single)

            metrics["pg_variance"] = gradient_variance(jax.vmap(one)(batch))
        it = state.iteration + 1
        target = jax.tree.map(
            lambda new, old: jnp.where(it % config.target_update_interval == 0, new, old),
            critic_params,
            state.target_critic,
        )
        taken = jnp.sum(filled).astype(jnp.int32)
        new_state = COMAState(
            actor, critic_params, target, actor_opt, critic_opt, it, state.env_steps + taken
        )
        return keep_if(active, new_state, state), metrics

    return NeuralLearner(
        name=name,
        env=env,
        init=init,
        iteration=iteration,
        steps_per_iteration=steps_per_iteration,
        policy=actors.greedy_policy(),
        policy_params=lambda state: state.actor,
        env_steps=lambda state: state.env_steps,
    )


def algo_specs() -> dict[str, Any]:
    from netmarl.algos import AlgoSpec

    return {
        "coma": AlgoSpec(
            "coma",
            lambda env, gamma, cfg, net: make_coma(env, gamma, cfg),
            COMAConfig,
            "dop",
            False,
            "COMA: centralized critic with the counterfactual baseline, recurrent actors "
            "(Foerster et al. 2018; paper 002 eq. 2)",
            centralized=True,
        ),
    }
