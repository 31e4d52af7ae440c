"""Value Propagation (Qu, Mannor, Xu, Qi, Song, Xiong; NeurIPS 2019) and its centralized PCL.

The paper itself is not in ``papers/`` (000 is a review of it); ALGORITHMS.md gives the
reconstructed algorithm, and the derivation below is the one implemented, equation by
equation. Labels (VP1)-(VP9) are ours.

**Setting.** A networked MDP: N agents observe the global state s (and their own observation
o_i, a function of s), act with private policies pi_i(a_i | o_i), and receive private rewards
r_i. The team maximises the entropy-regularised return of the *average* reward

    (VP1)  max_pi  E[ sum_t gamma^t ( rbar_t + lambda H(pi(. | s_t)) ) ],
           rbar = (1/N) sum_i r_i,   pi(a | s) = prod_i pi_i(a_i | o_i).

**Softmax temporal consistency** (Nachum et al. 2017, PCL; Dai et al. 2018, SBEED): the
optimal V and pi satisfy, for every (s, a),

    (VP2)  V(s) = E_{s'}[ rbar(s, a) + gamma V(s') ] - lambda log pi(a | s).

**Local decomposition.** Because log pi(a | s) = sum_i log pi_i(a_i | o_i),

    (VP3)  rbar + gamma V(s') - lambda log pi(a | s) = (1/N) sum_i delta_i,
           delta_i = r_i + gamma V(s') - lambda N log pi_i(a_i | o_i),

so each term only needs agent i's reward and agent i's policy.

**Saddle point** (SBEED's dual trick against the double-sampling problem): the squared
consistency residual E[(E[delta | s, a] - V(s))^2] equals
max_rho E[2 rho(s, a)(delta - V(s)) - rho(s, a)^2] (the maximiser is
rho* = E[delta | s, a] - V(s)), so the centralized problem is

    (VP4)  min_{V, pi} max_rho  L(V, rho, pi) = E[ 2 rho(s, a)(delta - V(s)) - rho(s, a)^2 ],
           delta = rbar + gamma V(s') - lambda log pi(a | s),

with transitions (s, a, r, s') from *any* behaviour policy (off-policy, a replay buffer).

**Value Propagation.** Agent i keeps its own V_i, rho_i and pi_i and minimises/maximises its
local objective

    (VP5)  L_i(V_i, rho_i, pi_i) = E[ 2 rho_i(s, a)(delta_i - V_i(s)) - rho_i(s, a)^2 ],
           delta_i = r_i + gamma V_i(s') - lambda N log pi_i(a_i | o_i),

subject to consensus V_1 = ... = V_N and rho_1 = ... = rho_N. Under consensus,
(1/N) sum_i L_i = L of (VP4) exactly: rho and V are common, (1/N) sum_i delta_i = delta by
(VP3), and the quadratic -rho^2 averages to itself (tested in tests/test_value_propagation.py).

**Updates** (one "primal-dual step", written for agent i):

    (VP6)  (V_i, rho_i) <- sum_j W_ij (V_j, rho_j)            propagation: network.mix
    (VP7)  rho_i <- rho_i + Adam(grad_rho L_i)                dual ascent, ``dual_steps`` times
    (VP8)  (V_i, pi_i) <- (V_i, pi_i) - Adam(grad L_i)        primal descent

Only V and rho parameters cross edges; the policy step (VP8) needs grad_pi L_i =
-2 lambda N E[rho_i(s, a) grad log pi_i(a_i | o_i)], local to agent i, so no policy parameter
ever leaves its agent (one step of agent j's update has zero derivative with respect to
agent i's policy parameters: tested with the locality audit). The gradient in V flows through
both V_i(s) and V_i(s') (the true gradient of (VP5), as in SBEED; no target network).

**Multi-step option** (PCL's d-step consistency): with a window s_0, a_0, ..., s_d,

    (VP9)  delta_i = sum_{k<d} gamma^k m_k (r_{i,k} - lambda N log pi_i(a_{i,k} | o_{i,k}))
                     + gamma^K (1 - terminal) V_i(s_K),

where m_k = 1 until the episode ends inside the window and K is the first end (or d); the
dual keeps rho_i(s_0, a_0). ``multi_step = 1`` is (VP5).

**Centralized reference** (``vp_central``): one learner with V(s), rho(s, a) and a policy over
the joint action (a softmax over all A^N joint actions, or N heads of one network, ``policy``)
runs (VP4) with the team reward and the same steps (VP7)-(VP8) without (VP6): the
"centralized PCL" of the paper, in its primal-dual (SBEED) form.

[choice] details (configurable): V_i and rho_i read the global state (consensus needs a common
input), rho_i also the joint action as concatenated one-hots (the networked-MDP assumption that
actions are observed); pi_i reads o_i (``policy_input="obs"``) or s. Propagation mixes
*parameters* combine-then-adapt (the mixed point is where the local gradients are taken).
Windows are cut from each rollout (starts 0..rollout-d), so ``rollout >= multi_step``. All agents
sample the same minibatch indices (each holds its own copy of the shared transitions and reads
only its own reward). Adam per agent with per-agent gradient clipping; learning starts after
``learning_starts`` windows are stored. Defaults follow the known unofficial settings
(ALGORITHMS.md: lambda 0.01, 4 dual steps per primal step, V and rho 128-64, pi 64, buffer 1e5,
batch 100) except the step sizes: with one lr 3e-4 for everything the policies barely moved in
our runs, and with equal primal and dual step sizes (3e-3) V diverged; so V 1e-3, pi and rho
3e-3 (the dual on the faster time scale), 2 primal-dual steps per 40 env steps, chosen on the
3-agent, 5-state random networked MDP of the tests.

Metrics: ``v_gap`` is the largest disagreement max_s (max_i V_i(s) - min_i V_i(s)) over the
states of a minibatch, measured on the agents' values as they enter an update (before
propagation), averaged over the iterations of a chunk.
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
    require_discrete,
    require_in_range,
    require_positive,
    runner_init,
)
from netmarl.algos.independent_ac import per_agent_init, per_agent_update
from netmarl.algos.networked_ac import (
    Critic,
    JointPolicy,
    LocalPolicies,
    action_one_hot,
    check_network,
    flat,
)
from netmarl.buffers import ReplayBuffer, buffer_add, buffer_init, buffer_sample
from netmarl.envs.api import AutoReset, TimeStep
from netmarl.errors import ConfigError
from netmarl.nets import categorical_log_prob

Array = jax.Array


@dataclass(frozen=True)
class VPConfig:
    num_envs: int = 8
    rollout: int = 5  # env steps per env per iteration (8 x 5 = 40 divides eval_every)
    updates: int = 2  # primal-dual steps (VP6)-(VP8) per iteration
    dual_steps: int = 4  # (VP7) steps per primal step
    batch_size: int = 100
    buffer_size: int = 100_000  # windows
    learning_starts: int = 1_000  # windows stored before the first update
    multi_step: int = 1  # d of (VP9)
    entropy: float = 0.01  # lambda
    lr: float = 1e-3  # primal: V
    policy_lr: float = 3e-3  # primal: pi
    dual_lr: float = 3e-3  # rho: faster than V, or the saddle dynamics diverge
    value_hidden: tuple[int, ...] = (128, 64)
    dual_hidden: tuple[int, ...] = (128, 64)
    policy_hidden: tuple[int, ...] = (64,)
    policy_input: Literal["obs", "state"] = "obs"
    max_grad_norm: float = 10.0  # per agent


@dataclass(frozen=True)
class VPCentralConfig(VPConfig):
    policy: Literal["joint", "factored"] = "joint"


class Window(NamedTuple):
    """``multi_step`` consecutive transitions of one environment (leaves ``[d, ...]``)."""

    obs: Array  # [d, N, *obs]
    state: Array  # [d, *state]
    avail: Array  # [d, N, A]
    actions: Array  # [d, N]
    rewards: Array  # [d, N] local rewards
    team_reward: Array  # [d]
    next_state: Array  # [d, *state]
    done: Array  # [d]
    terminated: Array  # [d]


class VPParams(NamedTuple):
    value: Any  # V_i   [N, ...] (or one set for vp_central)
    dual: Any  # rho_i [N, ...]
    policy: Any  # pi_i  [N, ...]


class VPOpt(NamedTuple):
    primal: Any  # Adam state of (value, policy) (one clip, two step sizes)
    dual: Any  # Adam state of dual


class VPState(NamedTuple):
    params: VPParams
    opt: VPOpt
    buffer: ReplayBuffer
    runner: Runner


# --- the objective ----------------------------------------------------------------------


def window_target(
    reward: Array, logp: Array, v_next: Array, done: Array, terminated: Array,
    gamma: float, lam: float,
) -> Array:  # fmt: skip
    """(VP9): sum_k gamma^k m_k (r_k - lam logp_k) + gamma^K (1 - term) V(s_K); inputs
    ``[..., d]`` (``v_next[k] = V(s_{k+1})``); ``lam`` is lambda N for an agent, lambda for
    the centralized learner. With d = 1 it is delta of (VP3)/(VP5)."""
    d = reward.shape[-1]
    done = done.astype(jnp.float32)
    live = 1.0 - terminated.astype(jnp.float32)
    alive = jnp.cumprod(jnp.concatenate([jnp.ones_like(done[..., :1]), 1 - done[..., :-1]], -1), -1)
    ends = jnp.concatenate([done[..., :-1], jnp.ones_like(done[..., -1:])], -1)  # K here
    disc = gamma ** jnp.arange(d, dtype=jnp.float32)
    rewards = jnp.sum(disc * alive * (reward - lam * logp), -1)
    return rewards + jnp.sum(disc * gamma * alive * ends * live * v_next, -1)


def saddle_objective(v0: Array, rho0: Array, target: Array) -> Array:
    """(VP4)/(VP5): E[2 rho(s, a)(delta - V(s)) - rho(s, a)^2] over the batch."""
    return jnp.mean(2.0 * rho0 * (target - v0) - rho0**2)


class VPNets:
    """V(s), rho(s, a) and the policies; the local (VP5) and centralized (VP4) objectives."""

    def __init__(self, env: Any, config: VPConfig):
        spec = env.spec
        self.n, self.a = spec.num_agents, spec.num_actions
        self.state_size = int(jnp.prod(jnp.array(spec.state_shape)))
        self.value = Critic(config.value_hidden)
        self.dual = Critic(config.dual_hidden)

    def init_value_dual(self, key: Array) -> tuple[Any, Any]:
        k_v, k_d = jax.random.split(key)
        s, a = jnp.zeros((self.state_size,)), jnp.zeros((self.n * self.a,))
        return self.value.init(k_v, s), self.dual.init(k_d, s, a)

    def values_and_dual(self, value: Any, dual: Any, batch: Window) -> tuple[Array, Array, Array]:
        """V(s_0) [B], rho(s_0, a_0) [B], V(s_{k+1}) [B, d] for one learner's parameters."""
        s0 = flat(batch.state[:, 0], 1)
        a0 = action_one_hot(batch.actions[:, 0], self.a)
        v = jax.vmap(lambda s: self.value.apply(value, s))
        v0 = v(s0)
        rho0 = jax.vmap(lambda s, a: self.dual.apply(dual, s, a))(s0, a0)
        v_next = jax.vmap(v)(flat(batch.next_state, 2))
        return v0, rho0, v_next

    def central_objective(
        self, value: Any, dual: Any, logp: Array, batch: Window, gamma: float, lam: float
    ) -> Array:
        """(VP4) with the team reward and ``logp [B, d]`` = log pi(a_k | s_k) of the joint
        action."""
        v0, rho0, v_next = self.values_and_dual(value, dual, batch)
        target = window_target(
            batch.team_reward, logp, v_next, batch.done, batch.terminated, gamma, lam
        )
        return saddle_objective(v0, rho0, target)


# --- Value Propagation ------------------------------------------------------------------


class VPParts(NamedTuple):
    """Pieces of a VP learner exposed for tests and audits."""

    nets: VPNets
    policies: LocalPolicies
    local_objective: Any  # (params_i, i, batch) -> (L_i, V_i(s_0))
    local_logp: Any  # (policy_i, i, batch) -> log pi_i(a_i | o_i) [B, d]
    step: Any  # (params, opt, batches [K+1, B, ...], key) -> (params, opt, metrics)


def check_vp_config(config: VPConfig, name: str) -> None:
    require_positive(
        config, name, "num_envs", "rollout", "updates", "batch_size", "buffer_size",
        "multi_step", "lr", "policy_lr", "dual_lr", "max_grad_norm",
    )  # fmt: skip
    require_in_range(config, name, "dual_steps", 0, 1_000)
    require_in_range(config, name, "entropy", 0.0, float("inf"))
    require_in_range(config, name, "learning_starts", 0, config.buffer_size)
    if config.multi_step > config.rollout:
        raise ConfigError(
            f"{name}: multi_step ({config.multi_step}) windows are cut from rollouts of "
            f"{config.rollout} steps; set rollout >= multi_step."
        )


# Adam's sqrt(nu) has an infinite derivative at a zero gradient entry (a weight on a zero
# input); a tiny eps_root inside the root keeps the update differentiable, which the
# locality audit needs, and changes nothing else.
EPS_ROOT = 1e-16


def adam(lr: float, max_grad_norm: float) -> optax.GradientTransformation:
    """Adam after clipping the (one agent's) gradient to ``max_grad_norm``."""
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(lr, eps_root=EPS_ROOT))


def primal_optimizer(config: VPConfig) -> optax.GradientTransformation:
    """Adam on (V, pi) after clipping their joint gradient; ``lr`` for V, ``policy_lr`` for pi."""

    def labels(params: tuple) -> tuple:
        return (
            jax.tree.map(lambda _: "value", params[0]),
            jax.tree.map(lambda _: "policy", params[1]),
        )

    return optax.chain(
        optax.clip_by_global_norm(config.max_grad_norm),
        optax.multi_transform(
            {
                "value": optax.adam(config.lr, eps_root=EPS_ROOT),
                "policy": optax.adam(config.policy_lr, eps_root=EPS_ROOT),
            },
            labels,
        ),
    )


def rollout_windows(steps: Step, d: int) -> Window:
    """Every window of ``d`` consecutive steps inside a rollout ``[T, E]`` ->
    ``[(T - d + 1) * E, d, ...]``."""
    t = steps.done.shape[0]
    index = jnp.arange(t - d + 1)[:, None] + jnp.arange(d)[None, :]  # [W, d]

    def cut(x: Array) -> Array:
        y = jnp.moveaxis(x[index], 2, 1)  # [W, E, d, ...]
        return y.reshape(-1, *y.shape[2:])

    return Window(
        cut(steps.obs), cut(steps.global_state), cut(steps.avail_actions), cut(steps.actions),
        cut(steps.rewards), cut(steps.team_reward), cut(steps.next_global_state),
        cut(steps.done), cut(steps.terminated),
    )  # fmt: skip


def _empty_window(env: Any, d: int) -> Window:
    _, ts = env.reset(jax.random.key(0))
    rep = lambda x: jnp.zeros((d, *jnp.shape(x)), jnp.asarray(x).dtype)  # noqa: E731
    return Window(
        rep(ts.obs), rep(ts.global_state), rep(ts.avail_actions),
        jnp.zeros((d, env.spec.num_agents), jnp.int32), rep(ts.rewards), rep(ts.team_reward),
        rep(ts.global_state), rep(ts.done), rep(ts.terminated),
    )  # fmt: skip


def _sample_batches(buffer: ReplayBuffer, key: Array, count: int, size: int) -> Window:
    return jax.vmap(lambda k: buffer_sample(buffer, k, size))(jax.random.split(key, count))


def _gated(ready: Array, new: Any, old: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(ready, a, b), new, old)


def make_value_propagation(env: Any, gamma: float, config: VPConfig, network: Any) -> NeuralLearner:
    """Value Propagation over ``network`` (see the module docstring)."""
    return build_value_propagation(env, gamma, config, network)[0]


def build_value_propagation(
    env: Any, gamma: float, config: VPConfig, network: Any
) -> tuple[NeuralLearner, VPParts]:
    name = "value_propagation"
    require_discrete(env, name)
    check_network(env, network, name)
    check_vp_config(config, name)
    env = AutoReset(env)
    n = env.spec.num_agents
    nets = VPNets(env, config)
    policies = LocalPolicies(env, config.policy_hidden, config.policy_input)
    tx_primal = primal_optimizer(config)
    tx_dual = adam(config.dual_lr, config.max_grad_norm)
    lam_n = config.entropy * n  # lambda N of (VP3)
    ids = jnp.arange(n)

    def init(key: Array) -> VPState:
        k_vd, k_pi, k_env = jax.random.split(key, 3)
        value, dual = jax.vmap(nets.init_value_dual)(jax.random.split(k_vd, n))
        params = VPParams(value, dual, policies.init(k_pi))
        opt = VPOpt(
            per_agent_init(tx_primal, (params.value, params.policy)),
            per_agent_init(tx_dual, params.dual),
        )
        buffer = buffer_init(_empty_window(env, config.multi_step), config.buffer_size)
        return VPState(params, opt, buffer, runner_init(env, k_env, config.num_envs, lambda: ()))

    def act(policy: Any, carry: Any, ts: TimeStep, key: Array) -> tuple:
        return policies.sample(policy, ts, key), carry, ()

    # --- what runs inside agent i ---

    def local_logp(policy_i: Any, i: Array, batch: Window) -> Array:
        """log pi_i(a_{i,k} | o_{i,k}) [B, d]: agent i's own policy on its own input."""
        x_i = policies.inputs(batch.obs, batch.state)[:, :, i]
        logits = jax.vmap(jax.vmap(policies.logits_one, (None, 0, 0)), (None, 0, 0))(
            policy_i, x_i, batch.avail[:, :, i]
        )
        return categorical_log_prob(logits, batch.actions[:, :, i])

    def local_objective(params_i: VPParams, i: Array, batch: Window) -> tuple[Array, Array]:
        """(VP5)/(VP9) for agent i: its reward column, its V_i, rho_i, pi_i; returns
        (L_i, V_i(s_0) [B])."""
        v0, rho0, v_next = nets.values_and_dual(params_i.value, params_i.dual, batch)
        logp = local_logp(params_i.policy, i, batch)
        target = window_target(
            batch.rewards[..., i], logp, v_next, batch.done, batch.terminated, gamma, lam_n
        )
        return saddle_objective(v0, rho0, target), v0

    def dual_grad(params_i: VPParams, i: Array, batch: Window) -> Any:
        return jax.grad(lambda d: -local_objective(params_i._replace(dual=d), i, batch)[0])(
            params_i.dual
        )

    def primal_grad(params_i: VPParams, i: Array, batch: Window) -> tuple[Any, Array]:
        def objective(vp: tuple) -> tuple[Array, Array]:
            return local_objective(params_i._replace(value=vp[0], policy=vp[1]), i, batch)

        (loss, _), grads = jax.value_and_grad(objective, has_aux=True)(
            (params_i.value, params_i.policy)
        )
        return grads, loss

    def step(
        params: VPParams, opt: VPOpt, batches: Window, key: Array
    ) -> tuple[VPParams, VPOpt, dict[str, Array]]:
        """One primal-dual step of every agent: (VP6), ``dual_steps`` x (VP7), (VP8).
        ``batches`` holds ``dual_steps + 1`` minibatches ``[K + 1, B, d, ...]``."""
        v_before = jax.vmap(lambda v: jax.vmap(lambda s: nets.value.apply(v, s))(
            flat(batches.state[-1, :, 0], 1)))(params.value)  # fmt: skip  # [N, B]
        (value, dual), stats = network.mix((params.value, params.dual), key)  # (VP6)
        params = params._replace(value=value, dual=dual)
        dual_batches = jax.tree.map(lambda x: x[:-1], batches)
        primal_batch = jax.tree.map(lambda x: x[-1], batches)

        def dual_step(carry: tuple, batch: Window) -> tuple[tuple, None]:  # (VP7)
            params, opt_dual = carry
            grads = jax.vmap(dual_grad, (0, 0, None))(params, ids, batch)
            dual, opt_dual = per_agent_update(tx_dual, grads, opt_dual, params.dual)
            return (params._replace(dual=dual), opt_dual), None

        (params, opt_dual), _ = jax.lax.scan(dual_step, (params, opt.dual), dual_batches)
        grads, losses = jax.vmap(primal_grad, (0, 0, None))(params, ids, primal_batch)
        (value, policy), opt_primal = per_agent_update(
            tx_primal, grads, opt.primal, (params.value, params.policy)
        )  # (VP8)
        metrics = {
            "objective": jnp.mean(losses),
            "v_gap": jnp.max(jnp.max(v_before, 0) - jnp.min(v_before, 0)),
            "v_mean": jnp.mean(v_before),
            "floats_sent": stats.floats_sent,
        }
        return VPParams(value, params.dual, policy), VPOpt(opt_primal, opt_dual), metrics

    def iteration(state: VPState, key: Array) -> tuple[VPState, dict[str, Array]]:
        key_collect, key_update = jax.random.split(key)
        runner, steps = collect(
            env, act, state.params.policy, state.runner, key_collect, config.rollout
        )
        buffer = buffer_add(state.buffer, rollout_windows(steps, config.multi_step))

        def update(carry: tuple, k: Array) -> tuple[tuple, dict]:
            params, opt = carry
            k_sample, k_mix = jax.random.split(k)
            batches = _sample_batches(buffer, k_sample, config.dual_steps + 1, config.batch_size)
            params, opt, metrics = step(params, opt, batches, k_mix)
            return (params, opt), metrics

        (params, opt), metrics = jax.lax.scan(
            update, (state.params, state.opt), jax.random.split(key_update, config.updates)
        )
        ready = buffer.size >= max(config.learning_starts, 1)
        params, opt = _gated(ready, (params, opt), (state.params, state.opt))
        metrics = jax.tree.map(jnp.mean, metrics)
        metrics["team_reward"] = jnp.mean(steps.team_reward)
        return VPState(params, opt, buffer, runner), metrics

    learner = NeuralLearner(
        name=name,
        env=env,
        init=init,
        iteration=iteration,
        steps_per_iteration=config.num_envs * config.rollout,
        policy=feedforward_policy(policies.greedy),
        policy_params=lambda state: state.params.policy,
    )
    return learner, VPParts(nets, policies, local_objective, local_logp, step)


# --- the centralized reference (PCL-style, primal-dual) -----------------------------------


def make_vp_central(env: Any, gamma: float, config: VPCentralConfig) -> NeuralLearner:
    name = "vp_central"
    require_discrete(env, name)
    check_vp_config(config, name)
    env = AutoReset(env)
    nets = VPNets(env, config)
    policy = JointPolicy(env, config.policy_hidden, config.policy, name)
    tx_primal = primal_optimizer(config)
    tx_dual = adam(config.dual_lr, config.max_grad_norm)

    def init(key: Array) -> VPState:
        k_vd, k_pi, k_env = jax.random.split(key, 3)
        value, dual = nets.init_value_dual(k_vd)
        params = VPParams(value, dual, policy.init(k_pi))
        opt = VPOpt(tx_primal.init((value, params.policy)), tx_dual.init(dual))
        buffer = buffer_init(_empty_window(env, config.multi_step), config.buffer_size)
        return VPState(params, opt, buffer, runner_init(env, k_env, config.num_envs, lambda: ()))

    def act(pi: Any, carry: Any, ts: TimeStep, key: Array) -> tuple:
        return policy.sample(pi, ts, key), carry, ()

    def objective(params: VPParams, batch: Window) -> Array:
        logp = jax.vmap(jax.vmap(policy.log_prob, (None, 0, 0, 0)), (None, 0, 0, 0))(
            params.policy, batch.state, batch.avail, batch.actions
        )
        return nets.central_objective(params.value, params.dual, logp, batch, gamma, config.entropy)

    def step(params: VPParams, opt: VPOpt, batches: Window) -> tuple[VPParams, VPOpt, Array]:
        def dual_step(carry: tuple, batch: Window) -> tuple[tuple, None]:  # (VP7)
            params, opt_dual = carry
            grads = jax.grad(lambda d: -objective(params._replace(dual=d), batch))(params.dual)
            updates, opt_dual = tx_dual.update(grads, opt_dual, params.dual)
            return (params._replace(dual=optax.apply_updates(params.dual, updates)), opt_dual), None

        dual_batches = jax.tree.map(lambda x: x[:-1], batches)
        (params, opt_dual), _ = jax.lax.scan(dual_step, (params, opt.dual), dual_batches)
        batch = jax.tree.map(lambda x: x[-1], batches)
        primal = (params.value, params.policy)
        loss, grads = jax.value_and_grad(
            lambda vp: objective(params._replace(value=vp[0], policy=vp[1]), batch)
        )(primal)
        updates, opt_primal = tx_primal.update(grads, opt.primal, primal)
        value, pi = optax.apply_updates(primal, updates)  # (VP8)
        return VPParams(value, params.dual, pi), VPOpt(opt_primal, opt_dual), loss

    def iteration(state: VPState, key: Array) -> tuple[VPState, dict[str, Array]]:
        key_collect, key_update = jax.random.split(key)
        runner, steps = collect(
            env, act, state.params.policy, state.runner, key_collect, config.rollout
        )
        buffer = buffer_add(state.buffer, rollout_windows(steps, config.multi_step))

        def update(carry: tuple, k: Array) -> tuple[tuple, Array]:
            batches = _sample_batches(buffer, k, config.dual_steps + 1, config.batch_size)
            params, opt, loss = step(*carry, batches)
            return (params, opt), loss

        (params, opt), losses = jax.lax.scan(
            update, (state.params, state.opt), jax.random.split(key_update, config.updates)
        )
        ready = buffer.size >= max(config.learning_starts, 1)
        params, opt = _gated(ready, (params, opt), (state.params, state.opt))
        metrics = {"objective": jnp.mean(losses), "team_reward": jnp.mean(steps.team_reward)}
        return VPState(params, opt, buffer, runner), metrics

    return NeuralLearner(
        name=name,
        env=env,
        init=init,
        iteration=iteration,
        steps_per_iteration=config.num_envs * config.rollout,
        policy=feedforward_policy(policy.greedy),
        policy_params=lambda state: state.params.policy,
    )


def algo_specs() -> dict[str, Any]:
    from netmarl.algos import AlgoSpec

    return {
        "value_propagation": AlgoSpec(
            "value_propagation", make_value_propagation, VPConfig, "actor_critic", True,
            "Value Propagation (Qu et al. 2019): per-agent V, dual rho and policy on the "
            "softmax temporal consistency; V and rho propagated by consensus; off-policy",
        ),
        "vp_central": AlgoSpec(
            "vp_central", lambda env, gamma, cfg, net: make_vp_central(env, gamma, cfg),
            VPCentralConfig, "actor_critic", False,
            "centralized PCL-style reference of Value Propagation: one learner, joint action, "
            "team reward, primal-dual softmax consistency",
            centralized=True,
        ),
    }  # fmt: skip
