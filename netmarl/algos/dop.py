"""DOP: off-policy multi-agent decomposed policy gradients (Wang et al., ICLR 2021; paper 002).

Centralized training, decentralized execution: the critic sees the global state and every
agent's action, so these learners are labelled ``centralized`` and are exempt from the
locality audit. Agents act on their own observation history only.

**Decomposed critic** (eq. 5, App. H.1)::

    Q_tot(s, a) = sum_i k_i(s) Q_i(s, o_i, a_i) + b(s),   k_i = |w_i(s)| / sum_j |w_j(s)|

local critics Q_i (one MLP 256-256 per agent on (global state, own observation), one output
per local action), k and b from linear layers on the state ("absolute activation, then
divided by sum_i k_i"). The expectation of Q_tot under a product policy pi is then a sum of
N local expectations, O(n|A|) instead of O(|A|^n) (**eq. 6**, App. A.1)::

    E_pi[Q_tot(s, .)] = sum_i k_i(s) sum_a pi_i(a | tau_i) Q_i(s, a) + b(s)

**Stochastic DOP** (§4.1, App. E Algorithm 1, App. H.1): recurrent actors pi_i(a_i | tau_i)
(Dense-ReLU-GRU(64)-Dense, :class:`netmarl.nets.GRUAgent`) with an epsilon floor
``(1 - eps) softmax + eps / |available|`` (eps annealed, as in the authors' pymarl code).
Every iteration plays ``num_envs`` whole episodes and stores them in an off-policy buffer
(``off_buffer`` episodes) and an on-policy buffer (the latest ``on_buffer`` episodes). The critic
minimises (**eq. 7**)

    L(phi) = kappa * L_TB(phi) + (1 - kappa) * L_On(phi)

with L_TB on ``off_batch`` episodes from the off-policy buffer, regressing Q_tot onto the
k-step decomposed tree-backup target (**eq. 8**)

    y_TB = Q'_tot(s_t, a_t) + sum_{j<k} gamma^j c_j [r_{t+j} + gamma E_pi Q'_tot(s_{t+j+1}, .)
           - Q'_tot(s_{t+j}, a_{t+j})],    c_j = prod_{l=1..j} lambda pi(a_{t+l} | tau_{t+l})

(pi(a) = prod_i pi_i(a_i), the expectation by eq. 6, Q' the target critic), and L_On on
``on_batch`` episodes from the on-policy buffer, regressing onto the TD(lambda) target
(**eq. 9**) ``y_On = Q'_tot(s_t, a_t) + sum_l (gamma lambda)^l delta_{t+l}``,
``delta = r + gamma Q'_tot(s', a') - Q'_tot(s, a)``. The actors follow **eq. 10** with the
advantage of the authors' code (a baseline that leaves the expectation unchanged)::

    g = E_pi[ sum_i k_i(s) grad log pi_i(a_i | tau_i) (Q_i(s, a_i) - sum_a pi_i(a) Q_i(s, a)) ]

on ``on_batch`` on-policy episodes. The target critic is copied every
``target_update_interval`` iterations. Ablations of §5.2.1: ``kappa = 0`` (on-policy DOP),
``kappa = 1`` (off-policy DOP), ``tree_backup = "common"`` (the expectation in the tree
backup estimated from ``common_samples`` joint actions sampled from pi instead of eq. 6).

**Deterministic DOP** (§4.2, App. E Algorithm 2, App. H.2): continuous actions, deterministic
actors mu_i(o_i) (MLP 64-64, tanh onto the Box), local critics Q_i(s, o_i, a_i) -> scalar,
the same mixer. Critic loss **eq. 11** ``(r + gamma Q'_tot(s', mu'(o')) - Q_tot(s, a))^2`` on
transitions from a replay buffer; actor gradient **eq. 12**
``sum_i k_i(s) grad mu_i(o_i) grad_{a_i} Q_i(s, o_i, a_i)`` (= grad of Q_tot(s, mu(o)) because
the critic is linear in the Q_i); actors and the soft targets (rate ``tau``) move once every
``policy_delay`` critic updates (TD3, Fujimoto et al. 2018). Exploration: Gaussian noise.

[choice] details not in the paper, all configurable: the TD(lambda) target bootstraps a
truncated episode's last step from E_pi Q'_tot (eq. 6) since no next action was taken;
``tb_lambda`` (the lambda of the tree-backup coefficients c) defaults to ``td_lambda``;
env steps are the steps episodes actually took (pymarl's ``t_env``), not their
``episode_limit`` slots in the buffers, and updates run only up to the longest episode of their
batches (``trim_levels``, as pymarl); deterministic DOP uses one learning
rate 5e-4 (App. H.2 states both 5e-3 and 5e-4) and soft-target rate 0.05 (TD3's 0.005
learned nothing on navigation within 20k steps: the target critic lagged too far).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from netmarl.algos.base import (
    NeuralLearner,
    Policy,
    Runner,
    collect,
    collect_episodes,
    feedforward_policy,
    on_trimmed_episodes,
    require_continuous,
    require_discrete,
    require_in_range,
    require_positive,
    runner_init,
)
from netmarl.algos.independent_ac import per_agent_init, per_agent_update
from netmarl.buffers import ReplayBuffer, buffer_add, buffer_init, buffer_ready, buffer_sample
from netmarl.envs.api import AutoReset, TimeStep
from netmarl.errors import ConfigError
from netmarl.nets import MLP, GRUAgent, apply_stacked, init_stacked, masked_logits, squash

Array = jax.Array


# --- configuration --------------------------------------------------------------------------


@dataclass(frozen=True)
class DOPConfig:
    """Stochastic DOP; defaults are App. H.1 (SMAC) except the epsilon schedule length."""

    num_envs: int = 4  # episodes played per iteration
    kappa: float = 0.5  # eq. 7: weight of the tree-backup loss (0 on-policy, 1 off-policy)
    tree_backup: Literal["decomposed", "common"] = "decomposed"  # eq. 6 or sampled (ablation)
    common_samples: int = 200  # joint actions sampled per state by the common tree backup
    tb_steps: int = 5  # k of the k-step tree backup (eq. 8)
    tb_lambda: float | None = None  # lambda of c_t in eq. 8 (None: td_lambda)
    td_lambda: float = 0.8  # eq. 9
    off_buffer: int = 5000  # episodes
    on_buffer: int = 32  # episodes
    off_batch: int = 32
    on_batch: int = 16
    actor_hidden: int = 64
    critic_hidden: tuple[int, ...] = (256, 256)
    actor_lr: float = 5e-4
    critic_lr: float = 1e-4
    rms_alpha: float = 0.99
    rms_eps: float = 1e-5
    max_grad_norm: float = 10.0
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_anneal_steps: int = 500_000
    target_update_interval: int = 50  # iterations between hard target-critic copies
    updates_per_iteration: int = 1
    entropy_coef: float = 0.0
    log_grad_variance: bool = False  # per-episode actor gradients (Fig. 2 left); costs B x
    # updates skip the padding after a batch's longest episode, rounded up to one of this many
    # lengths (T, T/2, T/4, ...; one compiled branch each); 1 = always the whole episode_limit
    trim_levels: int = 3


@dataclass(frozen=True)
class DeterministicDOPConfig:
    """Deterministic DOP; defaults are App. H.2 (buffer 10000, batch 1250, delay 2)."""

    num_envs: int = 1  # App. H.2: one environment
    rollout: int = 1  # steps per env per iteration
    buffer_size: int = 10_000  # transitions
    batch_size: int = 1250
    warmup: int = 1250  # transitions stored before learning starts
    updates_per_iteration: int = 1
    actor_hidden: tuple[int, ...] = (64, 64)
    critic_hidden: tuple[int, ...] = (256, 256)
    actor_lr: float = 5e-4
    critic_lr: float = 5e-4
    rms_alpha: float = 0.99
    rms_eps: float = 1e-5
    max_grad_norm: float = 10.0
    policy_delay: int = 2  # critic updates per actor and target update
    tau: float = 0.05  # soft target rate (alpha of Algorithm 2; not published)
    noise_std: float = 0.1  # exploration noise, as a fraction of the half-range of the Box


def check_optimiser(config: Any, name: str) -> None:
    require_positive(
        config,
        name,
        "num_envs",
        "actor_lr",
        "critic_lr",
        "max_grad_norm",
        "rms_eps",
        "updates_per_iteration",
    )
    require_in_range(config, name, "rms_alpha", 0.0, 1.0)


def validate_dop(config: DOPConfig, name: str = "dop") -> None:
    """Every bad hyper-parameter as one readable ConfigError, before compiling."""
    check_optimiser(config, name)
    require_positive(
        config,
        name,
        "off_buffer",
        "on_buffer",
        "off_batch",
        "on_batch",
        "actor_hidden",
        "target_update_interval",
        "common_samples",
        "trim_levels",
    )
    require_in_range(config, name, "kappa", 0.0, 1.0)
    require_in_range(config, name, "td_lambda", 0.0, 1.0)
    if config.tb_lambda is not None:
        require_in_range(config, name, "tb_lambda", 0.0, 1.0)
    if isinstance(config.tb_steps, bool) or config.tb_steps < 1:
        raise ConfigError(
            f"{name}: tb_steps (k of the k-step tree backup, eq. 8) must be an integer >= 1, "
            f"got {config.tb_steps}."
        )
    if config.tree_backup not in ("decomposed", "common"):
        raise ConfigError(
            f"{name}: tree_backup must be 'decomposed' (eq. 6) or 'common' (sampled), "
            f"got {config.tree_backup!r}."
        )
    for field in ("epsilon_start", "epsilon_end"):
        require_in_range(config, name, field, 0.0, 1.0)
    if config.epsilon_anneal_steps < 0 or config.entropy_coef < 0:
        raise ConfigError(f"{name}: epsilon_anneal_steps and entropy_coef must be >= 0.")


# --- the decomposed critic (eq. 5, 6) -------------------------------------------------------


class Mixer(nn.Module):
    """k_i(s) >= 0 normalised to sum 1, and b(s): linear layers on the state (App. H.1)."""

    num_agents: int

    @nn.compact
    def __call__(self, state: Array) -> tuple[Array, Array]:
        w = jnp.abs(nn.Dense(self.num_agents)(state))  # "absolute activation"
        k = w / (jnp.sum(w, axis=-1, keepdims=True) + 1e-8)  # "divide k_i by sum_i k_i"
        b = nn.Dense(1)(state)[..., 0]
        return k, b


class CriticMLP(nn.Module):
    """Dense-ReLU layers with Flax's default (LeCun-normal) kernels for the wide critics.

    Not :class:`netmarl.nets.MLP`, whose He-normal init draws different weights: DOP's
    recorded runs were made with this init. (Its first reason, nets.MLP's old QR-based
    orthogonal init deadlocking XLA:CPU, is gone: see :func:`netmarl.nets.orthogonal_init`.)
    """

    hidden: tuple[int, ...]
    out: int

    @nn.compact
    def __call__(self, x: Array) -> Array:
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.out)(x)


class CriticParams(NamedTuple):
    local: Any  # [N, ...] one local critic per agent
    mixer: Any


def q_tot(k: Array, b: Array, q_local: Array, actions: Array) -> Array:
    """Eq. 5 for discrete actions: sum_i k_i Q_i(a_i) + b. ``q_local [..., N, A]``."""
    taken = jnp.take_along_axis(q_local, actions[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return jnp.sum(k * taken, axis=-1) + b


def expected_q_tot(k: Array, b: Array, q_local: Array, probs: Array) -> Array:
    """Eq. 6: E_pi[Q_tot(s, .)] = sum_i k_i sum_a pi_i(a) Q_i(a) + b, in O(N |A|)."""
    return jnp.sum(k * jnp.sum(probs * q_local, axis=-1), axis=-1) + b


def sampled_q_tot(key: Array, k: Array, b: Array, q_local: Array, probs: Array, m: int) -> Array:
    """The common tree backup's estimate of E_pi[Q_tot(s, .)]: the mean of Q_tot over ``m``
    joint actions drawn from pi (§5.2.1, "DOP with common tree backup"). ``[N, A]`` inputs."""
    actions = jax.random.categorical(key, jnp.log(probs + 1e-20), shape=(m, probs.shape[0]))
    return jnp.mean(jax.vmap(lambda a: q_tot(k, b, q_local, a))(actions))


# --- targets (eq. 8, 9) ---------------------------------------------------------------------


def tree_backup_targets(
    q_taken: Array,
    v_next: Array,
    rewards: Array,
    terminated: Array,
    filled: Array,
    joint_prob: Array,
    gamma: float,
    lam: float,
    k: int,
) -> Array:
    """The k-step decomposed tree-backup target of eq. 8 for every step of one episode.

    ``q_taken[t] = Q'_tot(s_t, a_t)``, ``v_next[t] = E_pi Q'_tot(s_{t+1}, .)`` (eq. 6),
    ``joint_prob[t] = pi(a_t | tau_t)``, all ``[T]``; steps with ``filled = False`` (after
    the episode ended) contribute nothing. Returns ``y_TB [T]``.
    """
    length = q_taken.shape[0]
    delta = rewards + gamma * (1.0 - terminated) * v_next - q_taken
    delta = jnp.where(filled, delta, 0.0)
    pad = jnp.zeros((k,), delta.dtype)
    delta_p = jnp.concatenate([delta, pad])
    prob_p = jnp.concatenate([joint_prob, pad])
    target = q_taken
    c = jnp.ones_like(q_taken)  # c_0 = 1 (empty product)
    for j in range(k):
        if j > 0:  # c_j = c_{j-1} * lambda * pi(a_{t+j} | tau_{t+j})
            c = c * lam * prob_p[j : j + length]
        target = target + gamma**j * c * delta_p[j : j + length]
    return target


def td_lambda_targets(
    q_taken: Array,
    q_next: Array,
    rewards: Array,
    terminated: Array,
    filled: Array,
    gamma: float,
    lam: float,
) -> Array:
    """The TD(lambda) target of eq. 9 for one episode: ``q_taken[t] + sum_l (gamma
    lambda)^l delta_{t+l}``, ``delta_t = r_t + gamma Q'_tot(s_{t+1}, a_{t+1}) - q_taken[t]``
    (``q_next[t]`` is that bootstrap value). ``[T]`` arrays; the sum stops at the episode end."""
    delta = rewards + gamma * (1.0 - terminated) * q_next - q_taken
    delta = jnp.where(filled, delta, 0.0)
    live_next = jnp.concatenate([filled[1:], jnp.zeros((1,), bool)])

    def back(acc: Array, x: tuple[Array, Array]) -> tuple[Array, Array]:
        d, more = x
        acc = d + gamma * lam * more * acc
        return acc, acc

    _, adv = jax.lax.scan(back, jnp.zeros(()), (delta, live_next.astype(delta.dtype)), reverse=True)
    return q_taken + adv


# --- episodes and the recurrent actor -------------------------------------------------------


class Episode(NamedTuple):
    """One stored episode of ``T = episode_limit`` steps; ``*_ext`` leaves have T + 1 entries
    (the last is the observation after the final step, for bootstrapping)."""

    obs: Array  # [T+1, N, O]
    state: Array  # [T+1, S]
    avail: Array  # [T+1, N, A]
    actions: Array  # [T, N]
    reward: Array  # [T] team reward
    terminated: Array  # [T]
    filled: Array  # [T]


def episodes_from_steps(steps: Any, filled: Array) -> Episode:
    """:func:`collect_episodes` output ``[T, E, ...]`` -> a batch of :class:`Episode` ``[E]``.

    After an episode ends the env is frozen, so ``obs[t + 1]`` equals ``next_obs[t]`` on
    every live step and appending the last ``next_obs`` gives the T + 1 observations.
    """

    def ext(x: Array, x_next: Array) -> Array:
        return jnp.concatenate([x, x_next[-1:]], axis=0)

    e = Episode(
        obs=ext(steps.obs, steps.next_obs),
        state=ext(steps.global_state, steps.next_global_state),
        avail=ext(steps.avail_actions, steps.next_avail_actions),
        actions=steps.actions,
        reward=steps.team_reward,
        terminated=steps.terminated.astype(jnp.float32),
        filled=filled,
    )
    return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), e)  # [E, T, ...]


def epsilon_at(config: Any, env_steps: Array) -> Array:
    """Linear annealing from epsilon_start to epsilon_end over epsilon_anneal_steps."""
    frac = jnp.clip(env_steps / max(config.epsilon_anneal_steps, 1), 0.0, 1.0)
    return config.epsilon_start + frac * (config.epsilon_end - config.epsilon_start)


class RecurrentActors:
    """One GRU actor per agent on its own observation; the epsilon-floored policy."""

    def __init__(self, env: Any, hidden: int):
        spec = env.spec
        self.num_agents = spec.num_agents
        self.num_actions = spec.num_actions
        self.obs_size = math.prod(spec.obs_shape)
        self.net = GRUAgent(hidden, spec.num_actions)
        self.hidden = hidden

    def init(self, key: Array) -> Any:
        h = self.net.initial_carry()
        return init_stacked(self.net, key, self.num_agents, h, jnp.zeros((self.obs_size,)))

    def init_carry(self) -> Array:
        return self.net.initial_carry((self.num_agents,))

    def step(self, params: Any, h: Array, obs: Array, avail: Array) -> tuple[Array, Array]:
        """(next hidden [N, H], masked logits [N, A]) for one time step."""
        h, out = apply_stacked(self.net, params, h, obs.reshape(self.num_agents, -1))
        return h, masked_logits(out, avail)

    @staticmethod
    def probs(logits: Array, avail: Array, epsilon: Array) -> Array:
        """(1 - eps) softmax(logits) + eps uniform over the available actions."""
        avail = avail.astype(jnp.float32)
        uniform = avail / jnp.maximum(jnp.sum(avail, axis=-1, keepdims=True), 1.0)
        return (1.0 - epsilon) * jax.nn.softmax(logits, axis=-1) + epsilon * uniform

    def episode_probs(self, params: Any, obs: Array, avail: Array, epsilon: Array) -> Array:
        """pi_i(. | tau_i) along one episode: ``obs [T', N, O]`` -> ``[T', N, A]``."""

        def body(h: Array, x: tuple[Array, Array]) -> tuple[Array, Array]:
            h, logits = self.step(params, h, *x)
            return h, self.probs(logits, x[1], epsilon)

        _, probs = jax.lax.scan(body, self.init_carry(), (obs, avail))
        return probs

    def greedy_policy(self) -> Policy:
        def act(params: Any, h: Array, ts: TimeStep, key: Array) -> tuple[Array, Array]:
            del key
            h, logits = self.step(params, h, ts.obs, ts.avail_actions)
            return jnp.argmax(logits, axis=-1).astype(jnp.int32), h

        return Policy(self.init_carry, act)

    def sample_act(self) -> Any:
        """act(params=(actor, epsilon), carry, ts, key) for :func:`collect_episodes`."""

        def act(params: Any, h: Array, ts: TimeStep, key: Array) -> tuple[Array, Array, Any]:
            actor, epsilon = params
            h, logits = self.step(actor, h, ts.obs, ts.avail_actions)
            probs = self.probs(logits, ts.avail_actions, epsilon)
            a = jax.random.categorical(key, jnp.log(probs + 1e-20)).astype(jnp.int32)
            return a, h, ()

        return act


def rmsprop(lr: float, config: Any) -> optax.GradientTransformation:
    """RMSprop (alpha 0.99, no momentum) after clipping, as App. H / pymarl."""
    return optax.chain(
        optax.clip_by_global_norm(config.max_grad_norm),
        optax.rmsprop(lr, decay=config.rms_alpha, eps=config.rms_eps),
    )


def masked_mean(x: Array, mask: Array) -> Array:
    mask = mask.astype(x.dtype)
    return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def gradient_variance(per_sample_grads: Any) -> Array:
    """Trace of the covariance of per-sample gradients (sum over parameters of the variance
    across the leading sample axis), averaged over agents (leaves [B, N, ...])."""
    leaves = jax.tree.leaves(per_sample_grads)
    total = sum(jnp.sum(jnp.var(g, axis=0).reshape(g.shape[1], -1), axis=-1) for g in leaves)
    return jnp.mean(total)


# --- stochastic DOP -------------------------------------------------------------------------


class DecomposedCritic:
    """Local critics Q_i(s, o_i, .) -> [A] and the mixer (k, b), for discrete actions."""

    def __init__(self, env: Any, hidden: tuple[int, ...]):
        spec = env.spec
        self.num_agents = spec.num_agents
        self.state_size = math.prod(spec.state_shape)
        self.obs_size = math.prod(spec.obs_shape)
        self.local = CriticMLP(tuple(hidden), spec.num_actions)
        self.mixer = Mixer(spec.num_agents)

    def inputs(self, state: Array, obs: Array) -> Array:
        s = jnp.broadcast_to(state.reshape(-1), (self.num_agents, self.state_size))
        return jnp.concatenate([s, obs.reshape(self.num_agents, -1)], axis=-1)

    def init(self, key: Array) -> CriticParams:
        key_l, key_m = jax.random.split(key)
        x = jnp.zeros((self.state_size + self.obs_size,))
        return CriticParams(
            init_stacked(self.local, key_l, self.num_agents, x),
            self.mixer.init(key_m, jnp.zeros((self.state_size,))),
        )

    def __call__(self, params: CriticParams, state: Array, obs: Array) -> tuple:
        """(Q_i(s, o_i, .) [N, A], k [N], b []) for one time step."""
        q = apply_stacked(self.local, params.local, self.inputs(state, obs))
        k, b = self.mixer.apply(params.mixer, state.reshape(-1))
        return q, k, b


class DOPState(NamedTuple):
    actor: Any
    critic: CriticParams
    target_critic: CriticParams
    actor_opt: Any
    critic_opt: Any
    off_buffer: ReplayBuffer
    on_buffer: ReplayBuffer
    iteration: Array  # [] int32
    env_steps: Array  # [] int32


def make_dop(env: Any, gamma: float, config: DOPConfig, name: str = "dop") -> NeuralLearner:
    """Stochastic DOP (paper 002, §4.1, Algorithm 1) as a :class:`NeuralLearner`."""
    require_discrete(env, name, "dop_deterministic")
    validate_dop(config, name)
    env = AutoReset(env)
    spec = env.spec
    n, limit = spec.num_agents, spec.episode_limit
    actors = RecurrentActors(env, config.actor_hidden)
    critic = DecomposedCritic(env, config.critic_hidden)
    actor_tx = rmsprop(config.actor_lr, config)
    critic_tx = rmsprop(config.critic_lr, config)
    tb_lambda = config.td_lambda if config.tb_lambda is None else config.tb_lambda
    steps_per_iteration = config.num_envs * limit
    act = actors.sample_act()

    def critic_over_episode(params: CriticParams, ep: Episode) -> tuple[Array, Array, Array]:
        """Q_i, k, b for the T + 1 states of one episode."""
        return jax.vmap(lambda s, o: critic(params, s, o))(ep.state, ep.obs)

    def targets(target: CriticParams, probs: Array, ep: Episode, key: Array) -> tuple:
        """(Q'_tot(s_t, a_t) [T], E_pi Q'_tot(s_t) [T+1]) under the target critic."""
        q, k, b = critic_over_episode(target, ep)
        taken = q_tot(k[:-1], b[:-1], q[:-1], ep.actions)
        if config.tree_backup == "common":
            keys = jax.random.split(key, ep.state.shape[0])
            expect = jax.vmap(
                lambda kk, k_, b_, q_, p_: sampled_q_tot(kk, k_, b_, q_, p_, config.common_samples)
            )(keys, k, b, q, probs)
        else:
            expect = expected_q_tot(k, b, q, probs)  # eq. 6
        return taken, expect

    def tb_loss(
        params: CriticParams, target: CriticParams, actor: Any, eps: Array, ep: Episode, key: Array
    ) -> Array:
        """(y_TB - Q_tot)^2 on one off-policy episode (eq. 7-8); masked mean numerator."""
        probs = jax.lax.stop_gradient(actors.episode_probs(actor, ep.obs, ep.avail, eps))
        taken_t, expect_t = targets(target, probs, ep, key)
        pa = jnp.take_along_axis(probs[:-1], ep.actions[..., None], axis=-1)[..., 0]
        y = tree_backup_targets(
            taken_t,
            expect_t[1:],
            ep.reward,
            ep.terminated,
            ep.filled,
            jnp.prod(pa, axis=-1),
            gamma,
            tb_lambda,
            config.tb_steps,
        )
        q, k, b = critic_over_episode(params, ep)
        pred = q_tot(k[:-1], b[:-1], q[:-1], ep.actions)
        return jnp.sum(jnp.where(ep.filled, (jax.lax.stop_gradient(y) - pred) ** 2, 0.0))

    def on_loss(
        params: CriticParams, target: CriticParams, actor: Any, eps: Array, ep: Episode, key: Array
    ) -> Array:
        """(y_On - Q_tot)^2 on one on-policy episode (eq. 7, 9)."""
        probs = jax.lax.stop_gradient(actors.episode_probs(actor, ep.obs, ep.avail, eps))
        taken_t, expect_t = targets(target, probs, ep, key)
        # Q'_tot(s_{t+1}, a_{t+1}); the last step bootstraps from E_pi (no next action)
        q_next = jnp.concatenate([taken_t[1:], expect_t[-1:]])
        y = td_lambda_targets(
            taken_t, q_next, ep.reward, ep.terminated, ep.filled, gamma, config.td_lambda
        )
        q, k, b = critic_over_episode(params, ep)
        pred = q_tot(k[:-1], b[:-1], q[:-1], ep.actions)
        return jnp.sum(jnp.where(ep.filled, (jax.lax.stop_gradient(y) - pred) ** 2, 0.0))

    def critic_loss(
        params: CriticParams, state: DOPState, eps: Array, off: Episode, on: Episode, key: Array
    ) -> tuple[Array, dict]:
        key_off, key_on = jax.random.split(key)
        metrics = {}
        total = jnp.zeros(())
        if config.kappa > 0:
            per = jax.vmap(tb_loss, in_axes=(None, None, None, None, 0, 0))(
                params,
                state.target_critic,
                state.actor,
                eps,
                off,
                jax.random.split(key_off, config.off_batch),
            )
            loss_tb = jnp.sum(per) / jnp.maximum(jnp.sum(off.filled), 1.0)
            total = total + config.kappa * loss_tb
            metrics["critic_loss_tb"] = loss_tb
        if config.kappa < 1:
            per = jax.vmap(on_loss, in_axes=(None, None, None, None, 0, 0))(
                params,
                state.target_critic,
                state.actor,
                eps,
                on,
                jax.random.split(key_on, config.on_batch),
            )
            loss_on = jnp.sum(per) / jnp.maximum(jnp.sum(on.filled), 1.0)
            total = total + (1.0 - config.kappa) * loss_on
            metrics["critic_loss_on"] = loss_on
        return total, metrics

    def actor_episode_terms(
        actor: Any, critic_params: CriticParams, eps: Array, ep: Episode
    ) -> tuple[Array, Array]:
        """Per-step sum over agents of -k_i A_i log pi_i(a_i) (eq. 10) and the entropy."""
        probs = actors.episode_probs(actor, ep.obs[:-1], ep.avail[:-1], eps)  # [T, N, A]
        q, k, _ = jax.lax.stop_gradient(critic_over_episode(critic_params, ep))
        q, k = q[:-1], k[:-1]
        p = jax.lax.stop_gradient(probs)
        taken = jnp.take_along_axis(q, ep.actions[..., None], axis=-1)[..., 0]
        adv = taken - jnp.sum(p * q, axis=-1)  # Q_i(a_i) - sum_a pi_i(a) Q_i(a)
        logp = jnp.log(jnp.take_along_axis(probs, ep.actions[..., None], axis=-1)[..., 0] + 1e-10)
        entropy = -jnp.sum(probs * jnp.log(probs + 1e-10), axis=-1)
        return -jnp.sum(k * adv * logp, axis=-1), jnp.mean(entropy, axis=-1)

    def actor_loss(
        actor: Any, critic_params: CriticParams, eps: Array, batch: Episode
    ) -> tuple[Array, dict]:
        pg, ent = jax.vmap(actor_episode_terms, in_axes=(None, None, None, 0))(
            actor, critic_params, eps, batch
        )
        loss = masked_mean(pg, batch.filled) - config.entropy_coef * masked_mean(ent, batch.filled)
        return loss, {"actor_loss": loss, "entropy": masked_mean(ent, batch.filled)}

    def init(key: Array) -> DOPState:
        key_a, key_c = jax.random.split(key)
        actor = actors.init(key_a)
        critic_params = critic.init(key_c)
        t1 = limit + 1
        example = Episode(
            jnp.zeros((t1, n, *spec.obs_shape)),
            jnp.zeros((t1, *spec.state_shape)),
            jnp.zeros((t1, n, spec.num_actions), bool),
            jnp.zeros((limit, n), jnp.int32),
            jnp.zeros((limit,)),
            jnp.zeros((limit,)),
            jnp.zeros((limit,), bool),
        )
        return DOPState(
            actor,
            critic_params,
            critic_params,
            per_agent_init(actor_tx, actor),
            critic_tx.init(critic_params),
            buffer_init(example, config.off_buffer),
            buffer_init(example, config.on_buffer),
            jnp.int32(0),
            jnp.int32(0),
        )

    def update(state: DOPState, key: Array) -> tuple[DOPState, dict]:
        key_on, key_off, key_c, key_a = jax.random.split(key, 4)
        eps = epsilon_at(config, state.env_steps)
        on = buffer_sample(state.on_buffer, key_on, config.on_batch)
        off = buffer_sample(state.off_buffer, key_off, config.off_batch)
        filled = jnp.concatenate([on.filled, off.filled])
        return learn_trimmed((on, off), filled, state, eps, key_c)

    def learn(
        batches: tuple[Episode, Episode], state: DOPState, eps: Array, key_c: Array
    ) -> tuple[DOPState, dict]:
        on, off = batches
        # Algorithm 1: actors on the on-policy batch (eq. 10), then the critic (eq. 7)
        grads, metrics = jax.grad(actor_loss, has_aux=True)(state.actor, state.critic, eps, on)
        actor, actor_opt = per_agent_update(actor_tx, grads, state.actor_opt, state.actor)
        if config.log_grad_variance:  # the per-episode policy gradients of Fig. 2 (left)

            def one_episode_grad(ep: Episode) -> Any:
                single = jax.tree.map(lambda x: x[None], ep)
                return jax.grad(lambda a: actor_loss(a, state.critic, eps, single)[0])(state.actor)

            metrics["pg_variance"] = gradient_variance(jax.vmap(one_episode_grad)(on))
        (closs, cm), cgrads = jax.value_and_grad(critic_loss, has_aux=True)(
            state.critic, state, eps, off, on, key_c
        )
        updates, critic_opt = critic_tx.update(cgrads, state.critic_opt, state.critic)
        critic_params = optax.apply_updates(state.critic, updates)
        metrics.update(cm, critic_loss=closs)
        return state._replace(
            actor=actor, critic=critic_params, actor_opt=actor_opt, critic_opt=critic_opt
        ), metrics

    learn_trimmed = on_trimmed_episodes(learn, limit, config.trim_levels)

    def iteration(state: DOPState, key: Array, active: Array | bool = True) -> tuple:
        """Collect ``num_envs`` episodes into both buffers, then ``updates_per_iteration``
        updates (nothing where ``active`` is False)."""
        key_run, key_up = jax.random.split(key)
        eps = epsilon_at(config, state.env_steps)
        steps, filled = collect_episodes(
            env, act, (state.actor, eps), key_run, config.num_envs, actors.init_carry
        )
        episodes = episodes_from_steps(steps, filled)
        state = state._replace(
            off_buffer=buffer_add(state.off_buffer, episodes, active),
            on_buffer=buffer_add(state.on_buffer, episodes, active),
        )
        ready = (
            buffer_ready(state.off_buffer, config.off_batch)
            & buffer_ready(state.on_buffer, config.on_batch)
            & active
        )

        def learn(state: DOPState) -> tuple[DOPState, dict]:
            return jax.lax.scan(
                update, state, jax.random.split(key_up, config.updates_per_iteration)
            )

        _, shapes = jax.eval_shape(learn, state)
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
        state, metrics = jax.lax.cond(ready, learn, lambda s: (s, zeros), state)
        metrics = jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)
        it = state.iteration + active
        copy = active & (it % config.target_update_interval == 0)
        target = jax.tree.map(
            lambda new, old: jnp.where(copy, new, old), state.critic, state.target_critic
        )
        taken = jnp.sum(filled).astype(jnp.int32)
        state = state._replace(
            target_critic=target, iteration=it, env_steps=state.env_steps + active * taken
        )
        metrics.update(
            epsilon=eps,
            team_return=jnp.sum(steps.team_reward) / config.num_envs,
            episode_length=jnp.sum(filled) / config.num_envs,
        )
        return state, metrics

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


def local_q_table(learner_state: DOPState, env: Any, critic_hidden: tuple[int, ...]) -> tuple:
    """DOP's learned local critics at the env's initial state: (Q_i(s_0, .) [N, A], k [N],
    b) — Fig. 2 right-bottom for the (stateless) didactic game."""
    _, ts = env.reset(jax.random.key(0))
    critic = DecomposedCritic(env, critic_hidden)
    return critic(learner_state.critic, ts.global_state, ts.obs)


# --- deterministic DOP ----------------------------------------------------------------------


class DDOPParams(NamedTuple):
    actor: Any  # [N, ...]
    critic: CriticParams


class DDOPState(NamedTuple):
    params: DDOPParams
    target: DDOPParams
    actor_opt: Any
    critic_opt: Any
    buffer: ReplayBuffer
    runner: Runner
    updates: Array  # [] int32 critic updates so far


class Transition(NamedTuple):
    obs: Array
    state: Array
    actions: Array
    reward: Array
    next_obs: Array
    next_state: Array
    terminated: Array


def make_deterministic_dop(
    env: Any, gamma: float, config: DeterministicDOPConfig, name: str = "dop_deterministic"
) -> NeuralLearner:
    """Deterministic DOP (paper 002, §4.2, Algorithm 2) as a :class:`NeuralLearner`."""
    require_continuous(env, name, "dop")
    check_optimiser(config, name)
    require_positive(
        config, name, "rollout", "buffer_size", "batch_size", "policy_delay", "tau", "noise_std"
    )
    require_in_range(config, name, "tau", 0.0, 1.0)
    if config.warmup < 0:
        raise ConfigError(f"{name}: warmup must be >= 0, got {config.warmup}.")
    env = AutoReset(env)
    spec = env.spec
    n = spec.num_agents
    space = spec.action_space
    action_dim = int(space.shape[0])
    obs_size = math.prod(spec.obs_shape)
    state_size = math.prod(spec.state_shape)
    actor_net = MLP(config.actor_hidden, action_dim, final_scale=0.01)
    local_net = CriticMLP(tuple(config.critic_hidden), 1)
    mixer = Mixer(n)
    actor_tx = rmsprop(config.actor_lr, config)
    critic_tx = rmsprop(config.critic_lr, config)
    half_range = (space.high - space.low) / 2

    def mu(actor: Any, obs: Array) -> Array:
        return squash(apply_stacked(actor_net, actor, obs.reshape(n, -1)), space.low, space.high)

    def critic_fn(params: CriticParams, state: Array, obs: Array, actions: Array) -> tuple:
        """(Q_i(s, o_i, a_i) [N], k [N], b [])."""
        s = jnp.broadcast_to(state.reshape(-1), (n, state_size))
        x = jnp.concatenate([s, obs.reshape(n, -1), actions.reshape(n, -1)], axis=-1)
        q = apply_stacked(local_net, params.local, x)[..., 0]
        k, b = mixer.apply(params.mixer, state.reshape(-1))
        return q, k, b

    def qtot(params: CriticParams, state: Array, obs: Array, actions: Array) -> Array:
        q, k, b = critic_fn(params, state, obs, actions)
        return jnp.sum(k * q) + b  # eq. 5

    def act(params: DDOPParams, carry: Any, ts: TimeStep, key: Array) -> tuple:
        a = mu(params.actor, ts.obs)
        a = a + config.noise_std * half_range * jax.random.normal(key, a.shape)
        return jnp.clip(a, space.low, space.high), carry, ()

    def init(key: Array) -> DDOPState:
        key_a, key_l, key_m, key_env = jax.random.split(key, 4)
        actor = init_stacked(actor_net, key_a, n, jnp.zeros((obs_size,)))
        local = init_stacked(local_net, key_l, n, jnp.zeros((state_size + obs_size + action_dim,)))
        critic = CriticParams(local, mixer.init(key_m, jnp.zeros((state_size,))))
        params = DDOPParams(actor, critic)
        example = Transition(
            jnp.zeros((n, *spec.obs_shape)),
            jnp.zeros(spec.state_shape),
            jnp.zeros((n, action_dim)),
            jnp.zeros(()),
            jnp.zeros((n, *spec.obs_shape)),
            jnp.zeros(spec.state_shape),
            jnp.zeros(()),
        )
        return DDOPState(
            params,
            params,
            per_agent_init(actor_tx, actor),
            critic_tx.init(critic),
            buffer_init(example, config.buffer_size),
            runner_init(env, key_env, config.num_envs, lambda: ()),
            jnp.int32(0),
        )

    def critic_loss(critic: CriticParams, target: DDOPParams, b: Transition) -> Array:
        """Eq. 11 on a batch of transitions."""
        next_a = jax.vmap(lambda o: mu(target.actor, o))(b.next_obs)
        next_q = jax.vmap(lambda s, o, a: qtot(target.critic, s, o, a))(
            b.next_state, b.next_obs, next_a
        )
        y = jax.lax.stop_gradient(b.reward + gamma * (1.0 - b.terminated) * next_q)
        pred = jax.vmap(lambda s, o, a: qtot(critic, s, o, a))(b.state, b.obs, b.actions)
        return jnp.mean((y - pred) ** 2)

    def actor_loss(actor: Any, critic: CriticParams, b: Transition) -> Array:
        """-sum_i k_i(s) Q_i(s, o_i, mu_i(o_i)): its gradient is eq. 12."""
        a = jax.vmap(lambda o: mu(actor, o))(b.obs)
        q = jax.vmap(lambda s, o, aa: qtot(critic, s, o, aa))(b.state, b.obs, a)
        return -jnp.mean(q)

    def update(state: DDOPState, key: Array) -> tuple[DDOPState, dict]:
        batch = buffer_sample(state.buffer, key, config.batch_size)
        closs, cgrads = jax.value_and_grad(critic_loss)(state.params.critic, state.target, batch)
        upd, critic_opt = critic_tx.update(cgrads, state.critic_opt, state.params.critic)
        critic = optax.apply_updates(state.params.critic, upd)
        updates = state.updates + 1

        def delayed(args: tuple) -> tuple:
            actor, actor_opt, target = args
            aloss, agrads = jax.value_and_grad(actor_loss)(actor, critic, batch)
            actor, actor_opt = per_agent_update(actor_tx, agrads, actor_opt, actor)
            new = DDOPParams(actor, critic)
            target = jax.tree.map(lambda t, p: (1 - config.tau) * t + config.tau * p, target, new)
            return actor, actor_opt, target, aloss

        def skip(args: tuple) -> tuple:
            return (*args, jnp.zeros(()))

        actor, actor_opt, target, aloss = jax.lax.cond(
            updates % config.policy_delay == 0,
            delayed,
            skip,
            (state.params.actor, state.actor_opt, state.target),
        )
        new = state._replace(
            params=DDOPParams(actor, critic),
            target=target,
            actor_opt=actor_opt,
            critic_opt=critic_opt,
            updates=updates,
        )
        return new, {"critic_loss": closs, "actor_loss": aloss}

    def iteration(state: DDOPState, key: Array) -> tuple[DDOPState, dict]:
        key_run, key_up = jax.random.split(key)
        runner, steps = collect(env, act, state.params, state.runner, key_run, config.rollout)
        items = Transition(
            steps.obs,
            steps.global_state,
            steps.actions,
            steps.team_reward,
            steps.next_obs,
            steps.next_global_state,
            steps.terminated.astype(jnp.float32),
        )
        items = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), items)
        state = state._replace(buffer=buffer_add(state.buffer, items), runner=runner)

        def learn(state: DDOPState) -> tuple[DDOPState, dict]:
            return jax.lax.scan(
                update, state, jax.random.split(key_up, config.updates_per_iteration)
            )

        _, shapes = jax.eval_shape(learn, state)
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
        ready = buffer_ready(state.buffer, max(config.warmup, 1))
        state, metrics = jax.lax.cond(ready, learn, lambda s: (s, zeros), state)
        metrics = jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)
        metrics["team_reward"] = jnp.mean(steps.team_reward)
        return state, metrics

    return NeuralLearner(
        name=name,
        env=env,
        init=init,
        iteration=iteration,
        steps_per_iteration=config.num_envs * config.rollout,
        policy=feedforward_policy(lambda actor, ts, key: mu(actor, ts.obs)),
        policy_params=lambda state: state.params.actor,
    )


def algo_specs() -> dict[str, Any]:
    from netmarl.algos import AlgoSpec

    return {
        "dop": AlgoSpec(
            "dop",
            lambda env, gamma, cfg, net: make_dop(env, gamma, cfg),
            DOPConfig,
            "dop",
            False,
            "stochastic DOP: decomposed critic, tree backup + TD(lambda), recurrent actors "
            "(paper 002 §4.1, eq. 5-10)",
            centralized=True,
        ),
        "dop_deterministic": AlgoSpec(
            "dop_deterministic",
            lambda env, gamma, cfg, net: make_deterministic_dop(env, gamma, cfg),
            DeterministicDOPConfig,
            "dop",
            False,
            "deterministic DOP: decomposed critic, DDPG-style actors, delayed updates "
            "(paper 002 §4.2, eq. 11-12)",
            centralized=True,
        ),
    }
