"""Networked actor-critic of Zhang, Yang, Liu, Zhang & Basar (2018), and a centralized AC.

"Fully decentralized multi-agent reinforcement learning with networked agents" (ICML 2018),
the "MA-AC" baseline of Value Propagation (paper 000). Agents share the global state s and
observe the joint action a = (a_1, ..., a_N); each agent i has a *private* reward r_i and a
private policy pi_i(a_i | o_i; theta_i). The team maximises the long-run average of the mean
reward rbar = (1/N) sum_i r_i. The specification below is ALGORITHMS.md's ("[code; paper text
unverified]"); equation labels (A1.x), (A2.x) are ours, one per line of the two algorithms.

**Algorithm 1** (action-value critic Q(s, a; w_i), consensus on critic weights):

    (A1.1) mu_i   <- (1 - b_w) mu_i + b_w r_i                      running average reward
    (A1.2) delta_i = r_i - mu_i + Q(s', a'; w_i) - Q(s, a; w_i)     a' ~ pi(. | s') on-policy
    (A1.3) w~_i    = w_i + b_w delta_i grad_w Q(s, a; w_i)
    (A1.4) A_i     = Q(s, a; w_i) - sum_b pi_i(b | o_i) Q(s, (b, a_-i); w_i)   local advantage
    (A1.5) theta_i <- theta_i + b_theta A_i grad log pi_i(a_i | o_i)
    (A1.6) w_i     <- sum_j c_ij w~_j                               consensus (network.mix)

**Algorithm 2** (state-value critic V(s; v_i) plus a model R(s, a; lambda_i) of the averaged
reward, consensus on both):

    (A2.1) mu_i      <- (1 - b_w) mu_i + b_w r_i
    (A2.2) lambda~_i  = lambda_i + b_w (r_i - R(s, a; lambda_i)) grad R(s, a; lambda_i)
    (A2.3) delta_i    = r_i - mu_i + V(s'; v_i) - V(s; v_i)
    (A2.4) v~_i       = v_i + b_w delta_i grad V(s; v_i)
    (A2.5) delta~_i   = R(s, a; lambda_i) - mu_i + V(s'; v_i) - V(s; v_i)
    (A2.6) theta_i   <- theta_i + b_theta delta~_i grad log pi_i(a_i | o_i)
    (A2.7) (v_i, lambda_i) <- sum_j c_ij (v~_j, lambda~_j)

Consensus averages the critic *updates*, so the critics track the critic of the mean reward
while no agent ever reveals r_i or theta_i; only critic weights cross the edges.

Two time scales: ``b_w = critic_lr (1 + t / lr_decay_steps)^-critic_lr_power`` and
``b_theta = actor_lr (1 + t / lr_decay_steps)^-actor_lr_power`` with powers 0.65 and 0.85
(ALGORITHMS.md), so b_theta / b_w -> 0; t counts updates. [choice] ``lr_decay_steps`` stretches
the schedule (t^-0.65 from t = 1 would freeze a neural critic within a few thousand steps).

[choice] Implementation details, all configurable:

* plain stochastic approximation as in the paper (no Adam), but each update averages the
  per-transition directions of (A1.3)-(A2.6) over a batch of ``num_envs x rollout`` on-policy
  transitions, and each agent clips its own direction to ``max_grad_norm``;
* a' in (A1.2) is drawn afresh from the current policies at s' (what the next step of the
  chain would do, and defined at episode ends too);
* ``objective="average"`` is the paper's average-reward TD; ``objective="discounted"`` uses
  ``r_i + gamma Q(s', a') - Q(s, a)`` (mu unused) for episodic tasks; terminal states never
  bootstrap;
* critics see the global state (the networked-MDP assumption); the actor sees the agent's own
  observation (``policy_input="obs"``) or the global state;
* ``critic="linear"``: ``Q(s, a; w) = w . phi(s, a)`` with ``phi = vec([s, 1] (x) [onehot(a),
  1])`` (state features times per-agent action indicators), ``V(s; v) = v . [s, 1]`` and the
  reward model on ``phi``; ``critic="neural"``: MLPs on ``[s, onehot(a)]`` and ``s``.

**Centralized actor-critic** (``central_ac_neural``, the "centralized learner" of the Value
Propagation paper): one learner that sees the global state, the team reward rbar and owns the
joint action (a softmax over all ``A^N`` joint actions, or ``policy="factored"`` for a product
of N heads of one network when ``A^N`` is too large), with a state-value critic:
``mu <- (1-b_w) mu + b_w rbar``, ``delta = rbar - mu + V(s') - V(s)``, ``v += b_w delta grad V``,
``theta += b_theta delta grad log pi(a | s)`` (Algorithm 2 with N = 1, where the reward model
is unnecessary because the learner observes rbar itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from netmarl.algos.base import (
    NeuralLearner,
    Runner,
    Step,
    collect,
    feedforward_policy,
    require_discrete,
    require_in_range,
    require_positive,
    runner_init,
)
from netmarl.envs.api import AutoReset, TimeStep
from netmarl.envs.tabular import joint_actions, joint_index
from netmarl.errors import ConfigError
from netmarl.nets import (
    MLP,
    categorical_entropy,
    categorical_log_prob,
    init_stacked,
    masked_logits,
)

Array = jax.Array

# Joint-action softmax policies above this many joint actions are refused (use "factored").
MAX_JOINT_ACTIONS = 4096


# --- pieces shared by the networked and centralized learners (also used by VP) -------------


def check_network(env: Any, network: Any, name: str) -> None:
    """A networked learner needs one graph node per agent (checked before compiling)."""
    if network is None:
        raise ConfigError(f"{name} communicates over a graph: pass a network (make_network).")
    if network.num_agents != env.spec.num_agents:
        raise ConfigError(
            f"{name}: the graph has {network.num_agents} agents but the environment "
            f"{env.spec.name!r} has {env.spec.num_agents}: give a graph with one node per agent."
        )


def action_one_hot(actions: Array, num_actions: int) -> Array:
    """Joint action ``[..., N]`` -> concatenated per-agent one-hots ``[..., N * A]``."""
    hot = jax.nn.one_hot(actions, num_actions, dtype=jnp.float32)
    return hot.reshape(*actions.shape[:-1], -1)


def flat(x: Array, lead: int = 0) -> Array:
    """Flatten everything after the first ``lead`` axes (float32)."""
    return jnp.asarray(x, jnp.float32).reshape(*x.shape[:lead], -1)


class Critic(nn.Module):
    """A scalar function of the state (and, if given, the joint action).

    ``linear``: ``w . vec([s, 1] (x) [onehot(a), 1])`` (or ``w . [s, 1]`` without actions),
    zero-initialised; otherwise an MLP on ``[s, onehot(a)]``.
    """

    hidden: Sequence[int]
    linear: bool = False

    @nn.compact
    def __call__(self, state: Array, action: Array | None = None) -> Array:
        if self.linear:
            x = jnp.concatenate([state, jnp.ones((1,), state.dtype)])
            if action is not None:
                a = jnp.concatenate([action, jnp.ones((1,), action.dtype)])
                x = jnp.outer(x, a).reshape(-1)
            return nn.Dense(1, kernel_init=nn.initializers.zeros)(x)[0]
        x = state if action is None else jnp.concatenate([state, action])
        return MLP(tuple(self.hidden), 1)(x)[0]


class LocalPolicies:
    """N private softmax policies pi_i(a_i | x_i), x_i = own observation or global state.

    Parameters carry a leading agent axis; :meth:`logits_one` is agent i's forward pass (it
    reads agent i's parameters only).
    """

    def __init__(self, env: Any, hidden: Sequence[int], policy_input: str):
        spec = env.spec
        self.num_agents = spec.num_agents
        self.num_actions = spec.num_actions
        self.policy_input = policy_input
        size = spec.obs_shape if policy_input == "obs" else spec.state_shape
        self.input_size = int(jnp.prod(jnp.array(size)))
        self.state_rank = len(spec.state_shape)
        self.net = MLP(tuple(hidden), self.num_actions, final_scale=0.01)

    def init(self, key: Array) -> Any:
        return init_stacked(self.net, key, self.num_agents, jnp.zeros((self.input_size,)))

    def inputs(self, obs: Array, state: Array) -> Array:
        """Per-agent inputs ``[..., N, in]`` from obs ``[..., N, *obs]``, state ``[..., *s]``."""
        lead = state.ndim - self.state_rank  # batch axes in front of the state
        if self.policy_input == "obs":
            return flat(obs, lead + 1)
        s = flat(state, lead)
        return jnp.broadcast_to(s[..., None, :], (*s.shape[:-1], self.num_agents, s.shape[-1]))

    def logits_one(self, params_i: Any, x_i: Array, avail_i: Array) -> Array:
        return masked_logits(self.net.apply(params_i, x_i), avail_i)

    def logits(self, params: Any, ts: TimeStep) -> Array:
        x = self.inputs(ts.obs, ts.global_state)
        return jax.vmap(self.logits_one)(params, x, ts.avail_actions)

    def sample(self, params: Any, ts: TimeStep, key: Array) -> Array:
        logits = self.logits(params, ts)
        keys = jax.random.split(key, self.num_agents)  # each agent draws its own action
        return jax.vmap(jax.random.categorical)(keys, logits).astype(jnp.int32)

    def greedy(self, params: Any, ts: TimeStep, key: Array) -> Array:
        del key
        return jnp.argmax(self.logits(params, ts), axis=-1).astype(jnp.int32)


class JointPolicy:
    """One learner's policy over the joint action, from the global state.

    ``mode="joint"``: a softmax over all ``A^N`` joint actions (refused above
    :data:`MAX_JOINT_ACTIONS`); ``mode="factored"``: one network with N softmax heads,
    ``pi(a | s) = prod_i pi^(i)(a_i | s)``.
    """

    def __init__(self, env: Any, hidden: Sequence[int], mode: str, name: str):
        spec = env.spec
        self.n, self.a = spec.num_agents, spec.num_actions
        self.mode = mode
        self.state_size = int(jnp.prod(jnp.array(spec.state_shape)))
        if mode == "joint":
            self.num_joint = self.a**self.n
            if self.num_joint > MAX_JOINT_ACTIONS:
                raise ConfigError(
                    f"{name}: a softmax over the joint action has {self.num_joint:,} outputs "
                    f"for {self.n} agents with {self.a} actions (limit {MAX_JOINT_ACTIONS}). "
                    "Set algo_kwargs policy: factored (one network, one head per agent)."
                )
            self.table = joint_actions(jnp.arange(self.num_joint), self.n, self.a)  # [J, N]
            out = self.num_joint
        else:
            out = self.n * self.a
        self.net = MLP(tuple(hidden), out, final_scale=0.01)

    def init(self, key: Array) -> Any:
        return self.net.init(key, jnp.zeros((self.state_size,)))

    def logits(self, params: Any, state: Array, avail: Array) -> Array:
        out = self.net.apply(params, flat(state))
        if self.mode == "joint":
            ok = jnp.all(avail[jnp.arange(self.n)[None, :], self.table], axis=-1)  # [J]
            return masked_logits(out, ok)
        return masked_logits(out.reshape(self.n, self.a), avail)

    def log_prob(self, params: Any, state: Array, avail: Array, actions: Array) -> Array:
        """log pi(a | s) of the joint action ``actions [N]``."""
        logits = self.logits(params, state, avail)
        if self.mode == "joint":
            return categorical_log_prob(logits, joint_index(actions, self.a))
        return jnp.sum(categorical_log_prob(logits, actions))

    def entropy(self, params: Any, state: Array, avail: Array) -> Array:
        return jnp.sum(categorical_entropy(self.logits(params, state, avail)))

    def sample(self, params: Any, ts: TimeStep, key: Array) -> Array:
        logits = self.logits(params, ts.global_state, ts.avail_actions)
        a = jax.random.categorical(key, logits).astype(jnp.int32)
        return self.table[a] if self.mode == "joint" else a

    def greedy(self, params: Any, ts: TimeStep, key: Array) -> Array:
        del key
        a = jnp.argmax(self.logits(params, ts.global_state, ts.avail_actions), axis=-1)
        return self.table[a] if self.mode == "joint" else a.astype(jnp.int32)


def decayed(base: float, t: Array, power: float, decay_steps: float) -> Array:
    """Robbins-Monro step size ``base (1 + t / decay_steps)^-power``."""
    return base * (1.0 + t.astype(jnp.float32) / decay_steps) ** (-power)


def clipped_step(params: Any, direction: Any, step: Array, max_norm: float) -> Any:
    """``params + step * direction`` with the direction clipped to ``max_norm`` (one agent)."""
    # sqrt(sum + tiny): finite derivative at a zero direction (e.g. a zero TD error)
    norm = jnp.sqrt(sum(jnp.sum(d**2) for d in jax.tree.leaves(direction)) + 1e-30)
    scale = jnp.minimum(1.0, max_norm / (norm + 1e-12))
    return jax.tree.map(lambda p, d: p + step * scale * d, params, direction)


def flatten_batch(steps: Step) -> Step:
    """Steps ``[T, E, ...]`` -> transitions ``[T * E, ...]``."""
    return jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), steps)


# --- Zhang et al. 2018, Algorithms 1 and 2 --------------------------------------------------


@dataclass(frozen=True)
class NetworkedACConfig:
    algorithm: Literal[1, 2] = 1
    critic: Literal["linear", "neural"] = "neural"
    num_envs: int = 16
    rollout: int = 1  # on-policy steps per env per update
    hidden: tuple[int, ...] = (64, 64)  # neural critic / reward model
    actor_hidden: tuple[int, ...] = (64, 64)
    policy_input: Literal["obs", "state"] = "obs"
    critic_lr: float = 0.05  # b_w base
    actor_lr: float = 0.01  # b_theta base
    critic_lr_power: float = 0.65
    actor_lr_power: float = 0.85
    lr_decay_steps: float = 10_000.0
    objective: Literal["average", "discounted"] = "average"
    entropy_coef: float = 0.0  # [choice] optional entropy bonus in (A1.5)/(A2.6); paper: none
    max_grad_norm: float = 10.0


class NetworkedACState(NamedTuple):
    actor: Any  # [N, ...] theta_i
    critic: Any  # [N, ...] w_i (Alg. 1) or v_i (Alg. 2)
    reward_model: Any  # [N, ...] lambda_i (Alg. 2), () for Alg. 1
    mu: Array  # [N] running average of the local reward
    t: Array  # [] updates done
    runner: Runner


def check_ac_config(config: Any, name: str) -> None:
    require_positive(
        config, name, "num_envs", "rollout", "critic_lr", "actor_lr", "lr_decay_steps",
        "max_grad_norm",
    )  # fmt: skip
    for power in ("critic_lr_power", "actor_lr_power"):
        require_in_range(config, name, power, 0.0, 1.0)
    require_in_range(config, name, "entropy_coef", 0.0, float("inf"))


def make_networked_ac(
    env: Any, gamma: float, config: NetworkedACConfig, network: Any
) -> NeuralLearner:
    """Zhang et al. 2018 Algorithm 1 or 2 over ``network`` (see the module docstring)."""
    return build_networked_ac(env, gamma, config, network)[0]


def build_networked_ac(
    env: Any, gamma: float, config: NetworkedACConfig, network: Any
) -> tuple[NeuralLearner, Any]:
    """The learner and its update ``update(state, batch [B, ...], key) -> (state, metrics)``
    (one step of every agent plus one consensus; the locality audit checks it)."""
    name = "networked_ac"
    require_discrete(env, name)
    check_network(env, network, name)
    check_ac_config(config, name)
    if config.algorithm not in (1, 2):
        raise ConfigError(f"{name}: algorithm must be 1 or 2, got {config.algorithm!r}.")
    if config.critic not in ("linear", "neural"):
        raise ConfigError(f"{name}: critic must be 'linear' or 'neural', got {config.critic!r}.")
    env = AutoReset(env)
    spec = env.spec
    n, num_actions = spec.num_agents, spec.num_actions
    state_size = int(jnp.prod(jnp.array(spec.state_shape)))
    policies = LocalPolicies(env, config.actor_hidden, config.policy_input)
    critic = Critic(config.hidden, config.critic == "linear")
    alg1 = config.algorithm == 1
    discount = 1.0 if config.objective == "average" else gamma

    def init(key: Array) -> NetworkedACState:
        k_actor, k_critic, k_model, k_env = jax.random.split(key, 4)
        s0, a0 = jnp.zeros((state_size,)), jnp.zeros((n * num_actions,))
        critic_params = init_stacked(critic, k_critic, n, s0, a0 if alg1 else None)
        model = () if alg1 else init_stacked(critic, k_model, n, s0, a0)
        runner = runner_init(env, k_env, config.num_envs, lambda: ())
        return NetworkedACState(
            policies.init(k_actor), critic_params, model, jnp.zeros((n,)), jnp.int32(0), runner
        )

    def act(actor: Any, carry: Any, ts: TimeStep, key: Array) -> tuple:
        return policies.sample(actor, ts, key), carry, ()

    # One agent's update: agent i's parameters, its reward column and the shared transitions.

    def actor_direction(theta_i, i, x_i, avail_i, actions, weight):  # noqa: ANN001, ANN202
        """(A1.5) / (A2.6): mean of weight * grad log pi_i(a_i | x_i) (+ entropy bonus)."""

        def surrogate(theta):  # noqa: ANN001, ANN202
            logits = jax.vmap(policies.logits_one, (None, 0, 0))(theta, x_i, avail_i)
            logp = categorical_log_prob(logits, actions[:, i])
            ent = categorical_entropy(logits)
            return jnp.mean(weight * logp + config.entropy_coef * ent)

        return jax.grad(surrogate)(theta_i)

    def agent_update_alg1(theta_i, w_i, mu_i, i, r_i, batch, a_next, b_w, b_theta):  # noqa: ANN001, ANN202
        s, s_next = flat(batch.global_state, 1), flat(batch.next_global_state, 1)
        a_hot, a_next_hot = (
            action_one_hot(batch.actions, num_actions),
            action_one_hot(a_next, num_actions),
        )
        q_fn = jax.vmap(lambda w, s_, a_: critic.apply(w, s_, a_), (None, 0, 0))
        q = q_fn(w_i, s, a_hot)
        q_next = q_fn(w_i, s_next, a_next_hot)
        live = 1.0 - batch.terminated.astype(jnp.float32)
        base = r_i - mu_i if config.objective == "average" else r_i
        delta = base + discount * live * q_next - q  # (A1.2)
        critic_dir = jax.grad(lambda w: jnp.mean(delta * q_fn(w, s, a_hot)))(w_i)  # (A1.3)
        # (A1.4): the counterfactual joint actions (b, a_-i) for every own action b
        alt = jnp.broadcast_to(batch.actions[:, None, :], (len(q), num_actions, n))
        alt = alt.at[:, :, i].set(jnp.arange(num_actions)[None, :])
        q_alt = jax.vmap(
            jax.vmap(lambda s_, a_: critic.apply(w_i, s_, action_one_hot(a_, num_actions)),
                     (None, 0)),
        )(s, alt)  # fmt: skip  # [B, A]
        x_i = policies.inputs(batch.obs, batch.global_state)[:, i]
        avail_i = batch.avail_actions[:, i]
        pi_i = jax.nn.softmax(jax.vmap(policies.logits_one, (None, 0, 0))(theta_i, x_i, avail_i))
        adv = q - jnp.sum(pi_i * q_alt, axis=-1)
        actor_dir = actor_direction(theta_i, i, x_i, avail_i, batch.actions, adv)
        theta_i = clipped_step(theta_i, actor_dir, b_theta, config.max_grad_norm)  # (A1.5)
        w_i = clipped_step(w_i, critic_dir, b_w, config.max_grad_norm)
        mu_i = (1 - b_w) * mu_i + b_w * jnp.mean(r_i)  # (A1.1)
        return theta_i, w_i, (), mu_i, jnp.mean(jnp.abs(delta))

    def agent_update_alg2(theta_i, v_i, lam_i, mu_i, i, r_i, batch, b_w, b_theta):  # noqa: ANN001, ANN202
        s, s_next = flat(batch.global_state, 1), flat(batch.next_global_state, 1)
        a_hot = action_one_hot(batch.actions, num_actions)
        v_fn = jax.vmap(lambda v, s_: critic.apply(v, s_), (None, 0))
        r_fn = jax.vmap(lambda lam, s_, a_: critic.apply(lam, s_, a_), (None, 0, 0))
        r_hat = r_fn(lam_i, s, a_hot)
        model_dir = jax.grad(lambda lam: jnp.mean((r_i - r_hat) * r_fn(lam, s, a_hot)))(lam_i)
        v, v_next = v_fn(v_i, s), v_fn(v_i, s_next)
        live = 1.0 - batch.terminated.astype(jnp.float32)
        base_r = r_i - mu_i if config.objective == "average" else r_i
        base_hat = r_hat - mu_i if config.objective == "average" else r_hat
        delta = base_r + discount * live * v_next - v  # (A2.3)
        critic_dir = jax.grad(lambda p: jnp.mean(delta * v_fn(p, s)))(v_i)  # (A2.4)
        delta_hat = base_hat + discount * live * v_next - v  # (A2.5)
        x_i = policies.inputs(batch.obs, batch.global_state)[:, i]
        avail_i = batch.avail_actions[:, i]
        actor_dir = actor_direction(theta_i, i, x_i, avail_i, batch.actions, delta_hat)
        theta_i = clipped_step(theta_i, actor_dir, b_theta, config.max_grad_norm)  # (A2.6)
        v_i = clipped_step(v_i, critic_dir, b_w, config.max_grad_norm)
        lam_i = clipped_step(lam_i, model_dir, b_w, config.max_grad_norm)  # (A2.2)
        mu_i = (1 - b_w) * mu_i + b_w * jnp.mean(r_i)  # (A2.1)
        return theta_i, v_i, lam_i, mu_i, jnp.mean(jnp.abs(delta))

    def update(state: NetworkedACState, batch: Step, key: Array) -> tuple[NetworkedACState, dict]:
        """One update of every agent from transitions ``batch [B, ...]``, then consensus."""
        key_next, key_mix = jax.random.split(key)
        b_w = decayed(config.critic_lr, state.t, config.critic_lr_power, config.lr_decay_steps)
        b_theta = decayed(config.actor_lr, state.t, config.actor_lr_power, config.lr_decay_steps)
        ids = jnp.arange(n)
        rewards = batch.rewards.T  # [N, B]: row i is agent i's private reward
        if alg1:
            next_ts = TimeStep(
                batch.next_obs, batch.next_global_state, batch.rewards, batch.team_reward,
                batch.done, batch.terminated, batch.next_avail_actions,
                jnp.zeros_like(batch.done, jnp.int32),
            )  # fmt: skip
            keys = jax.random.split(key_next, len(batch.done))
            a_next = jax.vmap(policies.sample, (None, 0, 0))(state.actor, next_ts, keys)
            theta, w, model, mu, td = jax.vmap(
                agent_update_alg1, (0, 0, 0, 0, 0, None, None, None, None)
            )(state.actor, state.critic, state.mu, ids, rewards, batch, a_next, b_w, b_theta)
            mixed, stats = network.mix(w, key_mix)  # (A1.6)
            critic_params = mixed
        else:
            theta, v, model, mu, td = jax.vmap(
                agent_update_alg2, (0, 0, 0, 0, 0, 0, None, None, None)
            )(state.actor, state.critic, state.reward_model, state.mu, ids, rewards, batch,
              b_w, b_theta)  # fmt: skip
            (critic_params, model), stats = network.mix((v, model), key_mix)  # (A2.7)
        new = state._replace(actor=theta, critic=critic_params, reward_model=model, mu=mu,
                             t=state.t + 1)  # fmt: skip
        return new, {"td_error": jnp.mean(td), "mu": jnp.mean(mu), "floats_sent": stats.floats_sent}

    def iteration(state: NetworkedACState, key: Array) -> tuple[NetworkedACState, dict]:
        key_collect, key_update = jax.random.split(key)
        runner, steps = collect(env, act, state.actor, state.runner, key_collect, config.rollout)
        state, metrics = update(state._replace(runner=runner), flatten_batch(steps), key_update)
        metrics["team_reward"] = jnp.mean(steps.team_reward)
        return state, metrics

    learner = NeuralLearner(
        name=name,
        env=env,
        init=init,
        iteration=iteration,
        steps_per_iteration=config.num_envs * config.rollout,
        policy=feedforward_policy(policies.greedy),
        policy_params=lambda state: state.actor,
    )
    return learner, update


# --- the centralized actor-critic -----------------------------------------------------------


@dataclass(frozen=True)
class CentralACConfig:
    critic: Literal["linear", "neural"] = "neural"
    policy: Literal["joint", "factored"] = "joint"
    num_envs: int = 16
    rollout: int = 1
    hidden: tuple[int, ...] = (64, 64)
    actor_hidden: tuple[int, ...] = (64, 64)
    critic_lr: float = 0.05
    actor_lr: float = 0.01
    critic_lr_power: float = 0.65
    actor_lr_power: float = 0.85
    lr_decay_steps: float = 10_000.0
    objective: Literal["average", "discounted"] = "average"
    entropy_coef: float = 0.0
    max_grad_norm: float = 10.0


class CentralACState(NamedTuple):
    actor: Any
    critic: Any
    mu: Array  # []
    t: Array
    runner: Runner


def make_central_ac_neural(env: Any, gamma: float, config: CentralACConfig) -> NeuralLearner:
    name = "central_ac_neural"
    require_discrete(env, name)
    check_ac_config(config, name)
    env = AutoReset(env)
    spec = env.spec
    state_size = int(jnp.prod(jnp.array(spec.state_shape)))
    policy = JointPolicy(env, config.actor_hidden, config.policy, name)
    critic = Critic(config.hidden, config.critic == "linear")
    discount = 1.0 if config.objective == "average" else gamma

    def init(key: Array) -> CentralACState:
        k_actor, k_critic, k_env = jax.random.split(key, 3)
        runner = runner_init(env, k_env, config.num_envs, lambda: ())
        return CentralACState(
            policy.init(k_actor), critic.init(k_critic, jnp.zeros((state_size,))),
            jnp.float32(0.0), jnp.int32(0), runner,
        )  # fmt: skip

    def act(actor: Any, carry: Any, ts: TimeStep, key: Array) -> tuple:
        return policy.sample(actor, ts, key), carry, ()

    def update(state: CentralACState, batch: Step) -> tuple[CentralACState, dict]:
        b_w = decayed(config.critic_lr, state.t, config.critic_lr_power, config.lr_decay_steps)
        b_theta = decayed(config.actor_lr, state.t, config.actor_lr_power, config.lr_decay_steps)
        s, s_next = flat(batch.global_state, 1), flat(batch.next_global_state, 1)
        v_fn = jax.vmap(lambda v, s_: critic.apply(v, s_), (None, 0))
        r = batch.team_reward
        live = 1.0 - batch.terminated.astype(jnp.float32)
        base = r - state.mu if config.objective == "average" else r
        delta = base + discount * live * v_fn(state.critic, s_next) - v_fn(state.critic, s)
        critic_dir = jax.grad(lambda p: jnp.mean(delta * v_fn(p, s)))(state.critic)

        def surrogate(theta: Any) -> Array:
            logp = jax.vmap(policy.log_prob, (None, 0, 0, 0))(
                theta, batch.global_state, batch.avail_actions, batch.actions
            )
            ent = jax.vmap(policy.entropy, (None, 0, 0))(
                theta, batch.global_state, batch.avail_actions
            )
            return jnp.mean(delta * logp + config.entropy_coef * ent)

        actor_dir = jax.grad(surrogate)(state.actor)
        new = state._replace(
            actor=clipped_step(state.actor, actor_dir, b_theta, config.max_grad_norm),
            critic=clipped_step(state.critic, critic_dir, b_w, config.max_grad_norm),
            mu=(1 - b_w) * state.mu + b_w * jnp.mean(r),
            t=state.t + 1,
        )
        return new, {"td_error": jnp.mean(jnp.abs(delta)), "mu": new.mu}

    def iteration(state: CentralACState, key: Array) -> tuple[CentralACState, dict]:
        runner, steps = collect(env, act, state.actor, state.runner, key, config.rollout)
        state, metrics = update(state._replace(runner=runner), flatten_batch(steps))
        metrics["team_reward"] = jnp.mean(steps.team_reward)
        return state, metrics

    return NeuralLearner(
        name=name,
        env=env,
        init=init,
        iteration=iteration,
        steps_per_iteration=config.num_envs * config.rollout,
        policy=feedforward_policy(policy.greedy),
        policy_params=lambda state: state.actor,
    )


def algo_specs() -> dict[str, Any]:
    from netmarl.algos import AlgoSpec

    return {
        "networked_ac": AlgoSpec(
            "networked_ac", make_networked_ac, NetworkedACConfig, "actor_critic", True,
            "Zhang et al. 2018 networked actor-critic (MA-AC): Algorithm 1 (Q critic, local "
            "advantage) or 2 (V critic + reward model), consensus on critic weights",
        ),
        "central_ac_neural": AlgoSpec(
            "central_ac_neural",
            lambda env, gamma, cfg, net: make_central_ac_neural(env, gamma, cfg),
            CentralACConfig, "actor_critic", False,
            "centralized actor-critic: one learner, global state, team reward, joint action",
            centralized=True,
        ),
    }  # fmt: skip
