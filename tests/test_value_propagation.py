"""Value Propagation: the local losses average to the centralized one, only V and rho travel
(policy parameters never reach another agent), updates are local, it learns, bad input."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from netmarl.algos.base import collect, runner_init, vmap_seeds
from netmarl.algos.value_propagation import (
    VPCentralConfig,
    VPConfig,
    VPParams,
    Window,
    build_value_propagation,
    make_value_propagation,
    make_vp_central,
    rollout_windows,
    window_target,
)
from netmarl.envs import AutoReset, evaluate_product_policy, make_env
from netmarl.errors import ConfigError, LocalityViolation
from netmarl.network import audit_locality, make_network, sensitivity_matrix

GAMMA = 0.9
SMALL = dict(value_hidden=(16,), dual_hidden=(16,), policy_hidden=(16,), batch_size=8)


@functools.cache
def small_mdp(num_agents: int = 3, episode_limit: int = 100):
    return make_env("zhang_mdp", num_agents=num_agents, num_states=5, episode_limit=episode_limit)


@functools.cache
def identity_setup():
    """Initial parameters on a complete graph of 3 and a real rollout [12, 2] of their
    policies (auto-reset with 4-step episodes, so some windows hold an episode end)."""
    env = small_mdp(episode_limit=4)
    network = make_network("complete", 3)
    config = VPConfig(buffer_size=8, learning_starts=0, **SMALL)
    learner, _ = build_value_propagation(env, GAMMA, config, network)
    wrapped = AutoReset(env)

    def act(p, carry, ts, key):
        return learner.policy.act(p, carry, ts, key)[0], carry, ()

    @jax.jit
    def rollout(key):
        params = learner.init(key).params
        runner = runner_init(wrapped, jax.random.key(5), 2, lambda: ())
        return params, collect(wrapped, act, params.policy, runner, jax.random.key(6), 12)[1]

    params, steps = rollout(jax.random.key(0))
    return env, network, params, steps


def test_window_target_is_the_multi_step_consistency():
    """(VP9) against a Python loop, with an episode end inside the window."""
    r = np.array([1.0, 2.0, 3.0])
    logp = np.array([-0.5, -1.0, -2.0])
    v_next = np.array([10.0, 20.0, 30.0])
    done = np.array([False, True, False])
    term = np.array([False, False, False])
    got = window_target(*map(jnp.asarray, (r, logp, v_next, done, term)), 0.9, 0.1)
    # the window stops at k = 1 (truncated: bootstrap from V(s_2) = v_next[1])
    want = (1 + 0.05) + 0.9 * (2 + 0.1) + 0.9**2 * 20.0
    np.testing.assert_allclose(got, want, rtol=1e-6)
    got = window_target(*map(jnp.asarray, (r, logp, v_next, done, done)), 0.9, 0.1)
    np.testing.assert_allclose(got, (1 + 0.05) + 0.9 * (2 + 0.1), rtol=1e-6)  # terminal


@pytest.mark.parametrize("multi_step", [1, 3])
def test_local_losses_average_to_the_centralized_loss(multi_step):
    """Complete graph, one round of Metropolis weights = exact consensus on V and rho; then
    (1/N) sum_i L_i (VP5) equals L (VP4) with the team reward and log pi = sum_i log pi_i."""
    env, network, raw, steps = identity_setup()
    config = VPConfig(multi_step=multi_step, buffer_size=8, learning_starts=0, **SMALL)
    _, parts = build_value_propagation(env, GAMMA, config, network)
    batch = rollout_windows(steps, multi_step)
    assert bool(jnp.any(batch.done)) and batch.done.shape[1] == multi_step
    np.testing.assert_allclose(batch.team_reward, batch.rewards.mean(-1), rtol=1e-6)
    ids = jnp.arange(3)

    @jax.jit
    def losses(raw: VPParams, batch: Window):
        (value, dual), _ = network.mix((raw.value, raw.dual))
        params = VPParams(value, dual, raw.policy)
        spread = jnp.max(jnp.stack([jnp.max(jnp.abs(x - x[0])) for x in jax.tree.leaves(value)]))
        local, _ = jax.vmap(parts.local_objective, (0, 0, None))(params, ids, batch)
        logp = jnp.sum(jax.vmap(parts.local_logp, (0, 0, None))(params.policy, ids, batch), 0)
        first = jax.tree.map(lambda x: x[0], params)
        central = parts.nets.central_objective(
            first.value, first.dual, logp, batch, GAMMA, config.entropy
        )
        unmixed, _ = jax.vmap(parts.local_objective, (0, 0, None))(raw, ids, batch)
        return spread, jnp.mean(local), central, jnp.mean(unmixed)

    spread, local, central, unmixed = losses(raw, batch)
    assert spread < 1e-6  # exact consensus
    np.testing.assert_allclose(local, central, rtol=1e-5, atol=1e-6)
    # ... and without consensus they differ (the identity is not a tautology)
    assert abs(float(unmixed) - float(central)) > 1e-3


def fake_windows(env, seed: int, lead: tuple[int, ...]) -> Window:
    """Random windows of one step with leading axes ``lead`` (any consistent values will do
    for a locality audit, which only asks which inputs an output depends on; NumPy draws
    them, so nothing is compiled)."""
    spec, rng = env.spec, np.random.default_rng(seed)
    n, a = spec.num_agents, spec.num_actions
    shape = (*lead, 1)
    normal = lambda *s: jnp.asarray(rng.normal(size=shape + s), jnp.float32)  # noqa: E731
    return Window(
        normal(n, *spec.obs_shape), normal(*spec.state_shape), jnp.ones(shape + (n, a), bool),
        jnp.asarray(rng.integers(0, a, shape + (n,)), jnp.int32), normal(n), jnp.zeros(shape),
        normal(*spec.state_shape), jnp.asarray(rng.random(shape) < 0.2),
        jnp.asarray(rng.random(shape) < 0.1),
    )  # fmt: skip


@pytest.fixture(scope="module")
def audit_setup():
    """One primal-dual step (one propagation round, a scan of dual steps) on a line of 4, as
    a function of every agent's V, rho, pi and reward column."""
    env = small_mdp(num_agents=4)
    network = make_network("line", 4, rounds=1)
    config = VPConfig(
        dual_steps=1, num_envs=1, rollout=1, buffer_size=8, learning_starts=0,
        value_hidden=(8,), dual_hidden=(8,), policy_hidden=(8,),
    )  # fmt: skip
    learner, parts = build_value_propagation(env, GAMMA, config, network)
    state = jax.jit(learner.init)(jax.random.key(0))
    batches = fake_windows(env, 1, (config.dual_steps + 1, 6))

    def step(inputs):
        params = VPParams(inputs["value"], inputs["dual"], inputs["policy"])
        b = batches._replace(rewards=jnp.moveaxis(inputs["rewards"], 0, -1))
        new, _, _ = parts.step(params, state.opt, b, jax.random.key(2))
        # agent j's new (V_j, rho_j, pi_j) as one vector: the audit then draws one random
        # cotangent, not one per leaf (each threefry draw costs ~1 s of XLA:CPU compile)
        return jax.vmap(lambda p: ravel_pytree(p)[0])(new)

    inputs = {
        "value": state.params.value,
        "dual": state.params.dual,
        "policy": state.params.policy,
        "rewards": jnp.moveaxis(batches.rewards, -1, 0),
    }
    return network, step, inputs


def test_value_propagation_step_is_local(audit_setup):
    """One primal-dual step (one propagation round) reaches exactly the graph neighbours.
    (The second audit compiles the same program: a persistent-cache hit.)"""
    network, step, inputs = audit_setup
    sensitivity = audit_locality(step, inputs, network, rounds=1)
    assert sensitivity[0, 1] > 0 and sensitivity[3, 2] > 0  # V and rho of the neighbour arrive
    with pytest.raises(LocalityViolation):
        audit_locality(step, inputs, network, rounds=0)


def test_policy_parameters_never_reach_another_agent(audit_setup):
    """d (agent j's new V, rho, pi) / d (agent i's policy parameters) = 0 for i != j, while
    every agent's own policy does move its own update."""
    network, step, inputs = audit_setup
    fixed = {k: v for k, v in inputs.items() if k != "policy"}
    s = sensitivity_matrix(lambda p: step({**fixed, "policy": p}), inputs["policy"])
    assert np.all(np.diag(s) > 0)
    assert np.all(s[~np.eye(4, dtype=bool)] == 0.0), s


def uniform_return(env) -> float:
    probs = jnp.full((env.num_agents, env.num_states, env.num_actions), 0.5)
    return float(evaluate_product_policy(env, probs, 0.995).ret) * 0.005 * 100


LEARN = dict(
    learning_starts=200, updates=2, lr=1e-3, policy_lr=3e-3, dual_lr=3e-3, batch_size=32,
    buffer_size=10_000, value_hidden=(32,), dual_hidden=(32,), policy_hidden=(16,),
)  # fmt: skip


@pytest.mark.parametrize(
    "make",
    [
        lambda env: make_value_propagation(env, GAMMA, VPConfig(**LEARN), make_network("ring", 3)),
        lambda env: make_vp_central(env, GAMMA, VPCentralConfig(**LEARN)),
    ],
    ids=["value_propagation", "vp_central"],
)
def test_learns_a_random_networked_mdp(make):
    """After 12k steps the greedy 100-step team return (mean of 3 seeds) is far above the
    uniform policy's (about 185). Compiling dominates the test's time, not training."""
    env = small_mdp()
    learner = make(env)
    trainer = learner.trainer(12_000, 8)
    state = jax.jit(jax.vmap(trainer.init))(jax.random.split(jax.random.key(0), 3))
    _, metrics = jax.jit(vmap_seeds(trainer.chunk))(state)
    last = np.asarray(metrics["return"])
    assert last.mean() > uniform_return(env) + 30.0, last


def test_bad_input_is_refused_before_compiling():
    nav = make_env("navigation", num_agents=3, continuous=True)
    with pytest.raises(ConfigError, match="discrete actions"):
        make_value_propagation(nav, GAMMA, VPConfig(), make_network("ring", 3))
    with pytest.raises(ConfigError, match="discrete actions"):
        make_vp_central(nav, GAMMA, VPCentralConfig())
    env = small_mdp()
    with pytest.raises(ConfigError, match="graph has 5 agents"):
        make_value_propagation(env, GAMMA, VPConfig(), make_network("ring", 5))
    for field in ("lr", "dual_lr", "policy_lr"):
        with pytest.raises(ConfigError, match=f"{field} must be > 0"):
            make_value_propagation(env, GAMMA, VPConfig(**{field: -1.0}), make_network("ring", 3))
    with pytest.raises(ConfigError, match="rollout >= multi_step"):
        make_value_propagation(env, GAMMA, VPConfig(multi_step=9), make_network("ring", 3))
    with pytest.raises(ConfigError, match="policy: factored"):
        make_vp_central(small_mdp(num_agents=13), GAMMA, VPCentralConfig())


def test_registry_labels():
    from netmarl.algos import get_algo

    vp = get_algo("value_propagation")
    assert vp.networked and not vp.centralized
    assert get_algo("vp_central").centralized
