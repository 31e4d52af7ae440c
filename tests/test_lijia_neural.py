"""Li & Jia Algorithm 2: consensus-estimated importance weights, privacy, locality, learning."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from netmarl.algos.base import collect, vmap_seeds
from netmarl.algos.lijia_neural import (
    Algorithm2,
    LiJiaNeuralConfig,
    log_weights,
    make_lijia_ac_neural,
    squashed_gaussian_log_prob,
)
from netmarl.buffers import buffer_add
from netmarl.envs import make_env
from netmarl.errors import ConfigError, LocalityViolation
from netmarl.nets import LOG_STD_MAX, LOG_STD_MIN, squashed_gaussian_sample
from netmarl.network import audit_locality, make_network, sensitivity_matrix

GAMMA = 0.95
TINY = LiJiaNeuralConfig(
    num_envs=2, rollout=4, updates=2, batch_size=8, buffer_size=16, warmup=1, hidden=(8,)
)


@functools.cache
def nav(num_agents: int):
    return make_env(
        "navigation", num_agents=num_agents, continuous=True, reward="lijia", observation="global"
    )


def filled(alg: Algorithm2, key: jax.Array):
    """A state whose buffers hold experiences of the initial policies, and new actors that
    differ from the behaviour ones (so every beta^i_e is non-zero)."""

    @jax.jit  # one compile instead of op-by-op dispatch
    def fill(key: jax.Array):
        state = alg.init(key)
        runner, steps = collect(alg.env, alg.act, state.agents.actor, state.runner, key, 8)
        buffers = jax.vmap(buffer_add)(state.buffers, alg.experiences(steps))
        flat, unravel = ravel_pytree(state.agents.actor)
        actors = unravel(flat + 0.05 * jax.random.normal(jax.random.fold_in(key, 1), flat.shape))
        return state._replace(buffers=buffers, runner=runner), actors

    return fill(key)


def exact_log_weights(alg: Algorithm2, actors, buffers) -> np.ndarray:
    """c^i_e = sum_j beta^j_e - beta^i_e (eq. 40), every agent's log-ratio computed directly."""
    d = buffers.data
    beta = jax.vmap(lambda a, o, r, lp: alg.log_prob(a, o, r) - lp)(
        actors, d.obs, d.raw, d.log_prob
    )
    beta = np.asarray(beta)[:, : int(buffers.size[0])]
    return beta.sum(0, keepdims=True) - beta


def per_agent_vector(tree):
    """Each agent's slice of a pytree with a leading agent axis as one flat vector [N, P]: the
    locality audit then draws one random cotangent, not one per leaf (each threefry draw
    costs about a second of XLA:CPU compile)."""
    return jax.vmap(lambda t: ravel_pytree(t)[0])(tree)


def test_log_prob_matches_the_reparameterised_sampler():
    """The density re-evaluated for beta (eq. 44) is the one the sampler reports (eq. 59)."""
    key = jax.random.key(0)
    mean = jax.random.normal(key, (6, 5))
    log_std = jax.random.normal(jax.random.fold_in(key, 1), (6, 5)) - 1.0
    a, logp = squashed_gaussian_sample(key, mean, log_std, 0.0, 1.0)
    std = jnp.exp(jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX))
    raw = mean + std * jax.random.normal(key, mean.shape)  # the sampler's own noise
    np.testing.assert_allclose(squashed_gaussian_log_prob(mean, log_std, raw, 0.0, 1.0), logp,
                               rtol=1e-5, atol=1e-5)  # fmt: skip
    np.testing.assert_allclose(0.5 * (jnp.tanh(raw) + 1), a, atol=1e-6)


@pytest.mark.parametrize(
    "graph, rounds", [("complete", 1), ("ring", 60)], ids=["complete-1", "ring-60"]
)
def test_consensus_log_weights_equal_the_exact_log_sum(graph, rounds):
    """With exact consensus (complete graph: Metropolis weights are 1/N; or many rounds) the
    estimate N x^i_e - beta^i_e equals sum_j beta^j_e - beta^i_e after ONE consensus step."""
    n = 4
    alg = Algorithm2(nav(n), GAMMA, TINY, make_network(graph, num_agents=n, rounds=rounds))
    state, actors = filled(alg, jax.random.key(2))
    buffers, stats = alg.consensus_step(actors, state.buffers, None)
    size = int(buffers.size[0])
    estimate = np.asarray(log_weights(buffers.data.x, buffers.data.beta, n))[:, :size]
    exact = exact_log_weights(alg, actors, state.buffers)
    assert np.abs(exact).max() > 0.1  # the policies really moved
    np.testing.assert_allclose(estimate, exact, rtol=1e-4, atol=1e-4)


def test_few_rounds_track_the_log_sum_and_keep_it_exactly():
    """Ring of 6, one round per step: the sum over agents of x equals that of beta exactly at
    every step (doubly stochastic W), and with the policies fixed the estimate converges to
    the exact c (Lemma 2) — close after a handful of consensus steps."""
    n = 6
    alg = Algorithm2(nav(n), GAMMA, TINY, make_network("ring", num_agents=n, rounds=1))
    state, actors = filled(alg, jax.random.key(3))
    exact = exact_log_weights(alg, actors, state.buffers)
    buffers, size, errors = state.buffers, int(state.buffers.size[0]), []
    step = jax.jit(lambda b: alg.consensus_step(actors, b, None)[0])
    for _ in range(25):
        buffers = step(buffers)
        d = buffers.data
        np.testing.assert_allclose(d.x.sum(0), d.beta.sum(0), rtol=1e-5, atol=1e-5)  # invariant
        est = np.asarray(log_weights(d.x, d.beta, n))[:, :size]
        errors.append(np.abs(est - exact).max())
    assert errors[0] > 0.05 * np.abs(exact).max()  # one round is not exact on a ring ...
    assert errors[-1] < 1e-3 * max(errors[0], 1.0)  # ... but converges geometrically


def _update_fn(alg: Algorithm2, state):
    key = jax.random.key(9)

    def update(inputs):
        agents, buffers = inputs
        agents, buffers, _, _ = alg.update(agents, buffers, key)
        return per_agent_vector((agents, buffers.data))

    return update, (state.agents, state.buffers)


@pytest.mark.parametrize("rounds", [1, 2])
def test_locality_audit(rounds):
    """Agent i's update after K rounds depends only on agents within K hops (line graph)."""
    n = 5
    network = make_network("line", num_agents=n, rounds=rounds)
    alg = Algorithm2(nav(n), GAMMA, TINY, network)
    state, actors = filled(alg, jax.random.key(4))
    state = state._replace(agents=state.agents._replace(actor=actors))
    update, inputs = _update_fn(alg, state)
    s = audit_locality(update, inputs, network, rounds)
    assert s[0, rounds] > 0  # the K-hop neighbour's log-ratios really arrive
    with pytest.raises(LocalityViolation, match="hops"):
        audit_locality(update, inputs, network, rounds - 1)


def test_no_policy_parameters_reach_another_agent():
    """Privacy (paper 003, §II): in a whole update, agent i's new actor and critic have
    exactly zero sensitivity to every other agent's parameters and data — even to its
    neighbours'; the only thing that crosses an edge is x, one float per stored experience."""
    n = 4
    network = make_network("complete", num_agents=n, rounds=1)
    alg = Algorithm2(nav(n), GAMMA, TINY, network)
    state, actors = filled(alg, jax.random.key(5))
    state = state._replace(agents=state.agents._replace(actor=actors))
    key = jax.random.key(9)

    def params_only(inputs):
        agents, _, _, _ = alg.update(inputs[0], inputs[1], key)
        return per_agent_vector((agents.actor, agents.critic, agents.target_critic))

    def messages(actor):
        _, buffers, _, _ = alg.update(state.agents._replace(actor=actor), state.buffers, key)
        return buffers.data.x

    s = sensitivity_matrix(params_only, (state.agents, state.buffers))
    assert np.all(np.diag(s) > 0)
    np.testing.assert_array_equal(s[~np.eye(n, dtype=bool)], 0.0)
    # x does carry (a function of) the neighbours' policies: that is the consensus
    s_x = sensitivity_matrix(messages, state.agents.actor)
    assert np.all(s_x[~np.eye(n, dtype=bool)] > 0)
    _, _, stats, _ = jax.jit(alg.update)(state.agents, state.buffers, key)
    floats_per_message = float(stats.floats_sent) / float(stats.messages)
    assert floats_per_message == TINY.buffer_size  # one scalar per experience slot
    num_params = sum(p.size for p in jax.tree.leaves(state.agents.actor)) // n
    assert floats_per_message < num_params


def test_algorithm2_learns_continuous_navigation():
    """Two agents, Li & Jia's local reward averaged into the team reward: after 10k steps the
    greedy return is far above the initial (near-random) policies' (about -26)."""
    env = nav(2)
    cfg = LiJiaNeuralConfig(
        num_envs=4, rollout=25, updates=50, batch_size=128, buffer_size=10_000, warmup=500
    )
    learner = make_lijia_ac_neural(env, GAMMA, cfg, make_network("ring", num_agents=2))
    trainer = learner.trainer(10_000, 32)
    state = jax.jit(jax.vmap(trainer.init))(jax.random.split(jax.random.key(0), 2))
    before = np.asarray(jax.jit(jax.vmap(trainer.evaluate))(state))
    state, metrics = jax.jit(vmap_seeds(trainer.chunk))(state)
    after = np.asarray(metrics["return"])
    assert before.mean() < -22
    assert after.mean() > -17.5, f"returns {before} -> {after}"
    assert np.all(np.asarray(metrics["floats_sent"]) > 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"critic_lr": 0.0}, "critic_lr must be > 0"),
        ({"actor_lr": -1e-3}, "actor_lr must be > 0"),
        ({"tau": 1.5}, "tau must be in"),
        ({"batch_size": 64, "buffer_size": 32}, "exceeds buffer_size"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Algorithm2(nav(2), GAMMA, LiJiaNeuralConfig(**kwargs), make_network("ring", num_agents=2))


def test_bad_env_and_graph():
    from netmarl.run.config import RunConfig
    from netmarl.run.driver import build

    with pytest.raises(ConfigError, match="continuous actions"):
        build(RunConfig(algo="lijia_ac_neural", env="navigation", env_kwargs={"num_agents": 3}))
    with pytest.raises(ConfigError, match="graph has 4 agents"):
        Algorithm2(nav(3), GAMMA, TINY, make_network("ring", num_agents=4))
