"""Li & Jia Algorithm 2: decentralized off-policy actor-critic with consensus-estimated
importance weights (paper 003, §IV, eq. 39-62), for continuous actions.

Setting (§II, Definition 1): every agent sees the state and the shared reward r_t, keeps its
policy pi^i private and talks only to its graph neighbours. Agent i owns

* a squashed-Gaussian actor (eq. 59) ``a^i = f_theta(xi, s) = squash(mu^i(s) + sigma^i(s) xi)``,
  ``xi ~ N(0, I)`` (squash = tanh rescaled onto the action Box),
* a critic Q^i(s, a^i; phi^i) on the state and its OWN action, with a target copy phi_hat^i,
* a replay buffer D^i of its experiences e_t = (s_t, a^i_t, r_t, s_{t+1}), each stored with
  the behaviour log-density log pi_hat^i(a^i_t | s_t) and two scalars beta^i_e, x^i_e.

All agents store the step t in the same slot of their buffers, so slot k of D^i and of D^j is
the same experience e_t: that is what lets them run consensus on per-experience scalars.

Importance weights (§IV-A). Q^i must evaluate the CURRENT joint policy, but D^i holds actions
a^{-i} of old policies; eq. (51)-(55) reweigh e_t by pi^{-i}_theta(a^{-i}|s) / pi^{-i}_hat(a^{-i}|s)
= exp(c^i_e), whose log (eq. 40) is c^i_e = sum_j beta^j_e - beta^i_e with the local log-ratios
(eq. 39/44) beta^i_e = log pi^i_theta(a^i_t|s_t) - log pi^i_hat(a^i_t|s_t). No agent may evaluate
another's policy, so the sum is estimated by consensus (Lemma 2, eq. 42-43): every agent keeps
x^i_e, corrects it by its own change of beta (eq. 45) ``x += beta_new - beta_old`` and mixes it
with its neighbours (eq. 46) ``x^i <- sum_j W_ij x^j`` (``network.mix``, K rounds). W is doubly
stochastic, so sum_i x^i_e = sum_i beta^i_e holds exactly at every step (x starts at 0 with
beta = 0 when e_t is stored, eq. Algorithm 2), and once the betas settle every x^i_e converges
to their mean: ``c^i_e ~ N x^i_e - beta^i_e`` (N, the number of agents, is known to all). What
crosses an edge is one float per stored experience; never a policy parameter.

Policy evaluation (eq. 48-56): one gradient step per update on

    L^i(phi) = 1/|B| sum_{e in B^i} exp(c^i_e) (Q^i(s_t, a^i_t; phi) - q^i_t)^2 / 2,
    q^i_t = r_t + gamma (1 - terminal) Q^i(s_{t+1}, a~^i; phi_hat), a~^i ~ pi^i_theta(s_{t+1}) (56)

Policy improvement (eq. 57-62): one gradient step per update on the reparameterised objective
J^i(theta) = 1/|B| sum_e Q^i(s_t, f_theta(xi, s_t); phi) (eq. 60/62). Targets: phi_hat <-
(1 - eps) phi_hat + eps phi (``tau`` = eps).

Schedule. The paper's loop (Algorithm 2) per env step: act, store, sample B^i, critic step,
actor step, consensus step, target step. Here an iteration collects ``num_envs x rollout`` env
steps, then runs ``updates`` x (critic step, actor step, target step) and one consensus step
of ``network.rounds`` rounds over the whole buffer. ``num_envs = rollout = updates = 1`` is the
paper's schedule exactly; the defaults batch it for speed [choice].

[choice] marks, all configurable: ``state`` = the agent's observation (use navigation's
``observation="global"`` for the paper's fully observed state); the log-weights are clipped
to ``[-max_log_weight, max_log_weight]`` before exponentiation (unclipped exp(c) is unbounded
and one stale experience can swamp a batch) and, with ``normalize_weights``, divided by their
batch mean (self-normalised importance sampling: old data then lowers its share of the batch
without shrinking the step size); an entropy bonus ``entropy_coef`` (SAC-style,
soft target in (56) and bonus in (58); 0 = the paper's objectives exactly: without it the
learned sigma^i collapses within a few thousand updates, exploration stops and the importance
weights of older experiences vanish); per-agent Adam with per-agent
gradient clipping; learning starts after ``warmup`` stored experiences; the reward is the
shared team reward (paper: "shared by all of the agents"; ``reward="local"`` uses r^i).
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
    require_continuous,
    require_in_range,
    require_positive,
    runner_init,
)
from netmarl.buffers import ReplayBuffer, buffer_add, buffer_init, buffer_ready, buffer_sample
from netmarl.envs.api import AutoReset, TimeStep
from netmarl.errors import ConfigError
from netmarl.nets import (
    LOG_STD_MAX,
    LOG_STD_MIN,
    MLP,
    gaussian_log_prob,
    init_stacked,
    squash,
    squashed_gaussian_sample,
)
from netmarl.network import MixStats, Network

Array = jax.Array


@dataclass(frozen=True)
class LiJiaNeuralConfig:
    num_envs: int = 4
    rollout: int = 25  # env steps per env per iteration
    updates: int = 50  # (critic, actor, target) steps per iteration
    batch_size: int = 128  # |B^i|
    buffer_size: int = 20_000  # M, per agent
    warmup: int = 1_000  # experiences stored before the first update
    hidden: tuple[int, ...] = (64, 64)
    critic_lr: float = 1e-3  # alpha
    actor_lr: float = 1e-3  # beta (the step size; not the log-ratio)
    tau: float = 0.01  # epsilon, target step size
    max_log_weight: float = 2.0  # |c^i_e| clip [choice]
    importance_weights: bool = True  # False: exp(c) = 1 (ablation: plain off-policy replay)
    normalize_weights: bool = True  # [choice] self-normalised: exp(c) / batch mean of exp(c)
    entropy_coef: float = 0.05  # [choice] SAC-style bonus; 0 = eq. (56)/(58) exactly
    init_log_std: float = -0.5  # bias of the log-std head at init
    max_grad_norm: float = 10.0  # per agent
    reward: Literal["team", "local"] = "team"


class Experience(NamedTuple):
    """One item of D^i (agent i's own view of e_t)."""

    obs: Array  # s_t as agent i sees it
    action: Array  # a^i_t (in the Box)
    raw: Array  # u = mu + sigma xi before the squash (to re-evaluate log pi^i(a^i_t | s_t))
    log_prob: Array  # [] log pi_hat^i(a^i_t | s_t), the behaviour density
    reward: Array  # [] r_t
    next_obs: Array
    terminal: Array  # [] float: 1 if s_{t+1} is terminal (no bootstrap)
    beta: Array  # [] beta^i_e (eq. 44); 0 when stored
    x: Array  # [] x^i_e, the consensus estimate of mean_j beta^j_e (eq. 45-46); 0 when stored


class AgentState(NamedTuple):
    """Agent i's private learning state (leaves get a leading agent axis in the learner)."""

    actor: Any  # theta^i
    critic: Any  # phi^i
    target_critic: Any  # phi_hat^i
    actor_opt: Any
    critic_opt: Any


class LiJiaNeuralState(NamedTuple):
    agents: AgentState  # [N, ...]
    buffers: ReplayBuffer  # [N, M, ...]
    runner: Runner
    comm: MixStats  # what consensus has sent so far


def squashed_gaussian_log_prob(
    mean: Array, log_std: Array, raw: Array, low: float, high: float
) -> Array:
    """log pi(a | s) of a = squash(raw) (the density :func:`squashed_gaussian_sample` reports):
    the Gaussian log-density of ``raw`` minus log|da/du|."""
    log_std = jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)
    log_det = jnp.log((high - low) / 2) + 2 * (jnp.log(2.0) - raw - jax.nn.softplus(-2 * raw))
    return gaussian_log_prob(mean, log_std, raw) - jnp.sum(log_det, axis=-1)


def _adam(lr: float, max_grad_norm: float) -> optax.GradientTransformation:
    """Adam after clipping the (one agent's) gradient. ``eps_root`` keeps sqrt(v) differentiable
    at v = 0, so the locality audit's derivatives through an update stay finite."""
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(lr, eps_root=1e-16))


def log_weights(x: Array, beta: Array, num_agents: int) -> Array:
    """Eq. (40) with Lemma 2: c^i_e = sum_j beta^j_e - beta^i_e ~ N x^i_e - beta^i_e."""
    return num_agents * x - beta


def track(
    x: Array, beta_new: Array, beta_old: Array, network: Network, key: Array | None
) -> tuple[Array, MixStats]:
    """The consensus step on per-experience scalars, all agents at once ([N, M] arrays):
    eq. (45) x^i += beta^i_new - beta^i_old (local), then eq. (46) x <- W x (``network.mix``)."""
    return network.mix(x + (beta_new - beta_old), key)


class Algorithm2:
    """Li & Jia Algorithm 2 for ``env`` on ``network``; :meth:`learner` is the NeuralLearner.

    The per-agent pieces (:meth:`agent_update`, written for ONE agent and vmapped) and the
    only communication (:meth:`consensus_step`) are public so tests can audit them.
    """

    name = "lijia_ac_neural"

    def __init__(self, env: Any, gamma: float, config: LiJiaNeuralConfig, network: Network):
        name = self.name
        require_continuous(env, name, "maddpg (Gumbel-softmax) or independent_ac")
        require_positive(
            config, name, "num_envs", "rollout", "updates", "batch_size", "buffer_size",
            "critic_lr", "actor_lr", "max_log_weight", "max_grad_norm",
        )  # fmt: skip
        require_in_range(config, name, "tau", 0.0, 1.0)
        if config.warmup < 0 or config.entropy_coef < 0:
            raise ConfigError(f"{name}: warmup and entropy_coef must be >= 0.")
        if config.batch_size > config.buffer_size:
            raise ConfigError(
                f"{name}: batch_size ({config.batch_size}) exceeds buffer_size "
                f"({config.buffer_size}); lower batch_size or raise buffer_size."
            )
        if network.num_agents != env.spec.num_agents:
            raise ConfigError(
                f"{name}: the graph has {network.num_agents} agents but the env has "
                f"{env.spec.num_agents}: give a graph with one node per agent."
            )
        self.env = AutoReset(env)
        self.gamma = gamma
        self.config = config
        self.network = network
        spec = env.spec
        self.num_agents = spec.num_agents
        self.obs_size = int(jnp.prod(jnp.array(spec.obs_shape)))
        self.action_dim = int(jnp.prod(jnp.array(spec.action_space.shape)))
        self.low, self.high = float(spec.action_space.low), float(spec.action_space.high)
        self.actor_net = MLP(config.hidden, 2 * self.action_dim, final_scale=0.01)
        self.critic_net = MLP(config.hidden, 1, final_scale=1.0)
        self.actor_tx = _adam(config.actor_lr, config.max_grad_norm)
        self.critic_tx = _adam(config.critic_lr, config.max_grad_norm)

    # --- networks (one agent) -----------------------------------------------------------------

    def mean_log_std(self, actor: Any, obs: Array) -> tuple[Array, Array]:
        out = self.actor_net.apply(actor, obs.reshape(*obs.shape[: obs.ndim - 1], -1))
        mean, log_std = jnp.split(out, 2, axis=-1)
        return mean, log_std + self.config.init_log_std

    def q(self, critic: Any, obs: Array, action: Array) -> Array:
        return self.critic_net.apply(critic, jnp.concatenate([obs, action], axis=-1))[..., 0]

    def log_prob(self, actor: Any, obs: Array, raw: Array) -> Array:
        """log pi^i_theta(squash(raw) | obs) under the actor ``actor``."""
        mean, log_std = self.mean_log_std(actor, obs)
        return squashed_gaussian_log_prob(mean, log_std, raw, self.low, self.high)

    def sample(self, actor: Any, obs: Array, key: Array) -> tuple[Array, Array]:
        """Eq. (59), reparameterised: (a~ = f_theta(xi, s), log pi(a~ | s))."""
        mean, log_std = self.mean_log_std(actor, obs)
        return squashed_gaussian_sample(key, mean, log_std, self.low, self.high)

    # --- acting -------------------------------------------------------------------------------

    def act(self, actors: Any, carry: Any, ts: TimeStep, key: Array) -> tuple[Array, Any, Any]:
        """Every agent samples from its own policy on its own observation (one environment)."""

        def one(actor: Any, obs: Array, key: Array) -> tuple[Array, Array, Array]:
            mean, log_std = self.mean_log_std(actor, obs.reshape(-1))
            log_std = jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)
            raw = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
            logp = squashed_gaussian_log_prob(mean, log_std, raw, self.low, self.high)
            return squash(raw, self.low, self.high), raw, logp

        keys = jax.random.split(key, self.num_agents)
        actions, raw, logp = jax.vmap(one)(actors, ts.obs, keys)
        return actions, carry, (raw, logp)

    def greedy(self, actors: Any, ts: TimeStep, key: Array) -> Array:
        del key
        mean, _ = jax.vmap(lambda a, o: self.mean_log_std(a, o.reshape(-1)))(actors, ts.obs)
        return squash(mean, self.low, self.high)

    # --- per-agent update (eq. 55-56, 60-62, targets), written for ONE agent ----------------

    def critic_loss(
        self, critic: Any, agent: AgentState, batch: Experience, key: Array
    ) -> tuple[Array, dict[str, Array]]:
        cfg = self.config
        next_action, next_logp = self.sample(agent.actor, batch.next_obs, key)  # a~^i, eq. (56)
        next_q = self.q(agent.target_critic, batch.next_obs, next_action)
        next_q = next_q - cfg.entropy_coef * next_logp
        target = batch.reward + self.gamma * (1.0 - batch.terminal) * next_q
        target = jax.lax.stop_gradient(target)
        c = log_weights(batch.x, batch.beta, self.num_agents)  # eq. (40)
        c = jnp.clip(c, -cfg.max_log_weight, cfg.max_log_weight)
        raw_weight = jnp.exp(c) if cfg.importance_weights else jnp.ones_like(c)
        weight = raw_weight / jnp.mean(raw_weight) if cfg.normalize_weights else raw_weight
        td = self.q(critic, batch.obs, batch.action) - target
        loss = 0.5 * jnp.mean(weight * td**2)  # eq. (55): its gradient is (55)
        return loss, {"critic_loss": loss, "importance_weight": jnp.mean(raw_weight)}

    def actor_loss(
        self, actor: Any, critic: Any, batch: Experience, key: Array
    ) -> tuple[Array, dict[str, Array]]:
        action, logp = self.sample(actor, batch.obs, key)  # a~^i = f_theta(xi, s), eq. (59)
        objective = jnp.mean(self.q(critic, batch.obs, action))  # eq. (60), gradient (62)
        entropy = -jnp.mean(logp)
        loss = -(objective + self.config.entropy_coef * entropy)
        return loss, {"actor_objective": objective, "entropy": entropy}

    def agent_update(
        self, agent: AgentState, buffer: ReplayBuffer, key: Array
    ) -> tuple[AgentState, dict[str, Array]]:
        """One (critic, actor, target) step of agent i from its own buffer D^i; no messages."""
        cfg = self.config
        k_batch, k_critic, k_actor = jax.random.split(key, 3)
        batch = buffer_sample(buffer, k_batch, cfg.batch_size)  # B^i from D^i
        # policy evaluation: one step of gradient descent on eq. (55)-(56)
        grads, metrics = jax.grad(self.critic_loss, has_aux=True)(
            agent.critic, agent, batch, k_critic
        )
        updates, critic_opt = self.critic_tx.update(grads, agent.critic_opt, agent.critic)
        critic = optax.apply_updates(agent.critic, updates)
        # policy improvement: one step of gradient ascent on eq. (62) with the new critic
        grads, actor_metrics = jax.grad(self.actor_loss, has_aux=True)(
            agent.actor, critic, batch, k_actor
        )
        updates, actor_opt = self.actor_tx.update(grads, agent.actor_opt, agent.actor)
        actor = optax.apply_updates(agent.actor, updates)
        target = optax.incremental_update(critic, agent.target_critic, cfg.tau)
        new = AgentState(actor, critic, target, actor_opt, critic_opt)
        ready = buffer_ready(buffer, max(cfg.warmup, 1))
        new = jax.tree.map(lambda n, o: jnp.where(ready, n, o), new, agent)
        return new, {**metrics, **actor_metrics}

    # --- the consensus step (eq. 44-46): the ONLY communication ------------------------------

    def consensus_step(
        self, actors: Any, buffers: ReplayBuffer, key: Array | None
    ) -> tuple[ReplayBuffer, MixStats]:
        """Every agent re-evaluates beta^i_e for all e in D^i with its current policy (eq. 44),
        corrects x^i_e (eq. 45) and mixes x with its neighbours (eq. 46)."""
        data = buffers.data

        def local_beta(actor: Any, d: Experience, size: Array) -> Array:
            beta = self.log_prob(actor, d.obs, d.raw) - d.log_prob  # eq. (44)
            stored = jnp.arange(d.beta.shape[0]) < size
            return jnp.where(stored, beta, 0.0)  # empty slots stay at 0

        beta = jax.vmap(local_beta)(actors, data, buffers.size)  # [N, M]
        x, stats = track(data.x, beta, data.beta, self.network, key)
        return buffers._replace(data=data._replace(beta=beta, x=x)), stats

    def update(
        self, agents: AgentState, buffers: ReplayBuffer, key: Array
    ) -> tuple[AgentState, ReplayBuffer, MixStats, dict[str, Array]]:
        """``updates`` local steps of every agent, then one consensus step."""
        k_local, k_mix = jax.random.split(key)

        def body(agents: AgentState, k: Array) -> tuple[AgentState, dict[str, Array]]:
            keys = jax.random.split(k, self.num_agents)
            return jax.vmap(self.agent_update)(agents, buffers, keys)

        agents, metrics = jax.lax.scan(body, agents, jax.random.split(k_local, self.config.updates))
        buffers, stats = self.consensus_step(agents.actor, buffers, k_mix)
        return agents, buffers, stats, jax.tree.map(jnp.mean, metrics)

    # --- the learner ----------------------------------------------------------------------

    def experiences(self, steps: Step) -> Experience:
        """Steps [T, E, ...] -> every agent's experiences [N, T*E, ...] (beta = x = 0)."""
        flat = jax.tree.map(lambda v: v.reshape(-1, *v.shape[2:]), steps)
        raw, logp = flat.extras
        n = self.num_agents
        per_agent = lambda v: jnp.swapaxes(v, 0, 1)  # noqa: E731 [B, N, ...] -> [N, B, ...]
        if self.config.reward == "team":
            reward = jnp.broadcast_to(flat.team_reward[None, :], (n, flat.team_reward.shape[0]))
        else:
            reward = per_agent(flat.rewards)
        zeros = jnp.zeros_like(reward)
        terminal = jnp.broadcast_to(flat.terminated[None, :], reward.shape).astype(jnp.float32)
        return Experience(
            per_agent(flat.obs.reshape(*flat.obs.shape[:2], -1)),
            per_agent(flat.actions.reshape(*flat.actions.shape[:2], -1)),
            per_agent(raw),
            per_agent(logp),
            reward,
            per_agent(flat.next_obs.reshape(*flat.next_obs.shape[:2], -1)),
            terminal,
            zeros,
            zeros,
        )

    def init(self, key: Array) -> LiJiaNeuralState:
        k_actor, k_critic, k_env = jax.random.split(key, 3)
        n, obs = self.num_agents, jnp.zeros((self.obs_size,))
        actor = init_stacked(self.actor_net, k_actor, n, obs)
        critic = init_stacked(
            self.critic_net, k_critic, n, jnp.zeros(self.obs_size + self.action_dim)
        )
        agents = AgentState(
            actor, critic, critic, jax.vmap(self.actor_tx.init)(actor),
            jax.vmap(self.critic_tx.init)(critic),
        )  # fmt: skip
        zero = jnp.zeros(())
        example = Experience(
            obs, jnp.zeros(self.action_dim), jnp.zeros(self.action_dim), zero, zero, obs,
            zero, zero, zero,
        )  # fmt: skip
        one = buffer_init(example, self.config.buffer_size)
        buffers = jax.tree.map(lambda v: jnp.broadcast_to(v, (n, *v.shape)), one)
        runner = runner_init(self.env, k_env, self.config.num_envs, lambda: ())
        return LiJiaNeuralState(agents, buffers, runner, MixStats.zero())

    def iteration(self, state: LiJiaNeuralState, key: Array) -> tuple[LiJiaNeuralState, dict]:
        k_collect, k_update = jax.random.split(key)
        runner, steps = collect(
            self.env, self.act, state.agents.actor, state.runner, k_collect, self.config.rollout
        )
        buffers = jax.vmap(buffer_add)(state.buffers, self.experiences(steps))
        agents, buffers, stats, metrics = self.update(state.agents, buffers, k_update)
        metrics["team_reward"] = jnp.mean(steps.team_reward)
        metrics["log_weight_error"] = self.log_weight_error(buffers)
        metrics["floats_sent"] = stats.floats_sent
        return LiJiaNeuralState(agents, buffers, runner, state.comm + stats), metrics

    def log_weight_error(self, buffers: ReplayBuffer) -> Array:
        """Diagnostic only (read by the simulator, never by an agent): mean over stored
        experiences and agents of |c^i_e (consensus) - (sum_j beta^j_e - beta^i_e) (exact)|."""
        d = buffers.data
        exact = jnp.sum(d.beta, axis=0, keepdims=True) - d.beta
        err = jnp.abs(log_weights(d.x, d.beta, self.num_agents) - exact)
        stored = jnp.arange(d.x.shape[1])[None, :] < buffers.size[:, None]
        return jnp.sum(jnp.where(stored, err, 0.0)) / jnp.maximum(jnp.sum(stored), 1)

    def learner(self) -> NeuralLearner:
        cfg = self.config
        return NeuralLearner(
            name=self.name,
            env=self.env,
            init=self.init,
            iteration=self.iteration,
            steps_per_iteration=cfg.num_envs * cfg.rollout,
            policy=feedforward_policy(self.greedy),
            policy_params=lambda state: state.agents.actor,
        )


def make_lijia_ac_neural(
    env: Any, gamma: float, config: LiJiaNeuralConfig, network: Network
) -> NeuralLearner:
    """Li & Jia Algorithm 2 as a :class:`~netmarl.algos.base.NeuralLearner`."""
    return Algorithm2(env, gamma, config, network).learner()


def algo_specs() -> dict[str, Any]:
    from netmarl.algos import AlgoSpec

    return {
        "lijia_ac_neural": AlgoSpec(
            "lijia_ac_neural", make_lijia_ac_neural, LiJiaNeuralConfig, "actor_critic", True,
            "Li & Jia Algorithm 2: decentralized off-policy actor-critic, squashed-Gaussian "
            "actors, importance weights by consensus (paper 003, eq. 39-62)",
        ),
    }  # fmt: skip
