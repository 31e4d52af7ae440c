"""Tabular learners: they learn, their updates are the paper's equations, and they stay local."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from netmarl.algos.lijia_tabular import (
    ACTables,
    LiJiaACConfig,
    actor_step,
    critic_step,
    make_central_ac,
    make_lijia_ac,
)
from netmarl.algos.tabular_base import Transition, make_trainer
from netmarl.algos.tabular_q import QLearningConfig, make_iql, make_joint_q
from netmarl.envs import joint_actions, make_env
from netmarl.envs.planning import optimal_return
from netmarl.errors import ConfigError, LocalityViolation
from netmarl.network import audit_locality, make_network

GAMMA = 0.9
CONSTANT_AC = LiJiaACConfig(critic_lr=0.1, critic_lr_power=0.0, actor_lr=0.1, actor_lr_power=0.0)


@functools.cache
def tiny_mdp(num_agents: int = 3, reward: str = "shared_normal"):
    return make_env(
        "random_mdp", num_agents=num_agents, num_states=8, num_actions=2, reward=reward, mdp_seed=3
    )


def run(learner, env, steps: int, chunks: int, seeds: int = 4):
    """Train ``seeds`` seeds; returns exact returns [seeds, chunks + 1] (first = initial)."""
    init_fn, chunk_fn = make_trainer(env, learner, steps // chunks, GAMMA)
    state = jax.vmap(init_fn)(jax.random.split(jax.random.key(0), seeds))
    first = jax.vmap(lambda p: learner.evaluate(p, GAMMA).ret)(state.params)
    chunk = jax.jit(jax.vmap(chunk_fn))
    curve = [np.asarray(first)]
    for _ in range(chunks):
        state, metrics = chunk(state)
        curve.append(np.asarray(metrics["return"]))
    return np.stack(curve, axis=1), state


def uniform_return(env) -> float:
    from netmarl.envs import evaluate_product_policy

    probs = jnp.full((env.num_agents, env.num_states, env.num_actions), 1.0 / env.num_actions)
    return float(evaluate_product_policy(env, probs, GAMMA).ret)


@pytest.mark.parametrize(
    "make",
    [
        lambda env: make_lijia_ac(env, GAMMA, CONSTANT_AC),
        lambda env: make_central_ac(env, GAMMA, CONSTANT_AC),
        lambda env: make_joint_q(env, GAMMA, QLearningConfig(lr=0.1, lr_power=0.0)),
        lambda env: make_iql(env, GAMMA, QLearningConfig(lr=0.1, lr_power=0.0)),
    ],
    ids=["lijia_ac", "central_ac", "joint_q", "tabular_iql"],
)
def test_learners_close_most_of_the_gap_to_optimal(make):
    """Every learner, from a fixed seed, ends well above the uniform policy on a tiny MDP."""
    env = tiny_mdp()
    curve, _ = run(make(env), env, steps=30_000, chunks=3)
    low, high = uniform_return(env), optimal_return(env, GAMMA)
    share = (curve[:, -1].mean() - low) / (high - low)
    assert share > 0.6, f"closed only {share:.0%} of the uniform-to-optimal gap"
    assert curve[:, -1].mean() > curve[:, 0].mean() + 0.3 * (high - low)


def test_actor_step_is_the_gradient_of_expected_q():
    """Eq. (33) adds beta * grad_zeta E_{a~pi} Q(s, a) (eq. 35-38), checked with autodiff."""
    key = jax.random.key(1)
    zeta = jax.random.normal(key, (5, 4))
    q = jax.random.normal(jax.random.fold_in(key, 1), (5, 4))
    s = jnp.int32(2)
    cfg = LiJiaACConfig(actor_lr=0.01, actor_lr_power=0.0, zeta_min=-100.0, zeta_max=100.0)
    new_zeta, visits = actor_step(zeta, q, jnp.zeros(5, jnp.int32), s, cfg)
    grad = jax.grad(lambda z: jax.nn.softmax(z[s]) @ q[s])(zeta)
    np.testing.assert_allclose(new_zeta, zeta + 0.01 * grad, rtol=1e-6, atol=1e-7)
    assert int(visits[s]) == 1 and int(visits.sum()) == 1


def test_actor_step_clips_to_thresholds():
    """Eq. (34): preferences stay in [T_m, T_M] so every action keeps positive probability."""
    zeta = jnp.array([[1.9, -1.9]])
    q = jnp.array([[100.0, -100.0]])
    cfg = LiJiaACConfig(actor_lr=1.0, actor_lr_power=0.0, zeta_min=-2.0, zeta_max=2.0)
    new_zeta, _ = actor_step(zeta, q, jnp.zeros(1, jnp.int32), jnp.int32(0), cfg)
    np.testing.assert_allclose(new_zeta, [[2.0, -2.0]])


def exact_local_q(env, local_probs: np.ndarray, agent: int) -> np.ndarray:
    """Q^i_pi(s, a^i) of Li & Jia eq. (2)/(5), by brute force over joint actions (numpy)."""
    from netmarl.envs import evaluate_product_policy

    n, num_s, num_a = env.num_agents, env.num_states, env.num_actions
    p, r = (np.asarray(t) for t in env.dense_tables())
    r_team = r[..., 0]
    v = np.asarray(evaluate_product_policy(env, jnp.asarray(local_probs), GAMMA).values)
    q_joint = r_team + GAMMA * p @ v  # [S, J]
    acts = np.asarray(joint_actions(jnp.arange(num_a**n), n, num_a))  # [J, N]
    q_local = np.zeros((num_s, num_a))
    for s in range(num_s):
        others = np.prod(
            [local_probs[j, s, acts[:, j]] for j in range(n) if j != agent], axis=0
        )  # pi^{-i}(a^{-i} | s)
        for a in range(num_a):
            mask = acts[:, agent] == a
            q_local[s, a] = np.sum(others[mask] * q_joint[s, mask])
    return q_local


def test_critic_converges_to_local_q_of_a_fixed_policy():
    """Theorem 1: with the policy frozen, eq. (7) drives Q^i to Q^i_pi (eq. 5)."""
    env = tiny_mdp()
    zeta = jax.random.normal(jax.random.key(7), (env.num_agents, env.num_states, env.num_actions))
    cfg = LiJiaACConfig(critic_lr=1.0, critic_lr_power=0.75)
    shape = zeta.shape

    def step(carry, key):
        q, visits, s = carry
        k_act, k_env, k_next = jax.random.split(key, 3)
        a = jax.random.categorical(k_act, zeta[:, s]).astype(jnp.int32)
        state, ts = env.step(k_env, env.reset(k_env)[0]._replace(s=s), a)
        a_next = jax.random.categorical(k_next, zeta[:, state.s]).astype(jnp.int32)
        q, visits, _ = jax.vmap(critic_step, (0, 0, None, 0, None, None, 0, None, None, None))(
            q, visits, s, a, ts.team_reward, state.s, a_next, False, GAMMA, cfg
        )
        return (q, visits, state.s), None

    init = (jnp.zeros(shape), jnp.zeros(shape, jnp.int32), jnp.int32(0))
    (q, _, _), _ = jax.jit(lambda k: jax.lax.scan(step, init, jax.random.split(k, 300_000)))(
        jax.random.key(0)
    )
    probs = np.asarray(jax.nn.softmax(zeta, axis=-1))
    for agent in range(env.num_agents):
        expected = exact_local_q(env, probs, agent)
        np.testing.assert_allclose(np.asarray(q[agent]), expected, atol=0.15)


def consensus_update(network, cfg=None):
    env = tiny_mdp(num_agents=5, reward="local_uniform")
    cfg = cfg or LiJiaACConfig(reward_signal="consensus")
    learner = make_lijia_ac(env, GAMMA, cfg, network)
    tables = learner.init(jax.random.key(0))
    tables = tables._replace(q=jax.random.normal(jax.random.key(1), tables.q.shape))

    def update(inputs):
        tr = Transition(
            s=jnp.int32(1),
            actions=jnp.array([0, 1, 0, 1, 1], jnp.int32),
            rewards=inputs["rewards"],
            team_reward=jnp.float32(1.5),  # observed from the env, not an agent's data
            s_next=jnp.int32(2),
            terminated=jnp.bool_(False),
        )
        new = learner.update(
            ACTables(inputs["q"], inputs["zeta"], *tables[2:]), tr, jax.random.key(3)
        )[0]
        return {"q": new.q, "zeta": new.zeta}

    inputs = {"q": tables.q, "zeta": tables.zeta + 0.1, "rewards": jnp.arange(5.0)}
    return update, inputs


@pytest.mark.parametrize("rounds", [1, 2])
def test_algorithm1_with_reward_consensus_is_local(rounds):
    """After K rounds agent i's new tables depend only on agents within K hops (line graph)."""
    network = make_network("line", num_agents=5, rounds=rounds)
    update, inputs = consensus_update(network)
    sensitivity = audit_locality(update, inputs, network, rounds)
    assert sensitivity[0, rounds] > 0  # the K-hop neighbour's reward really arrives
    with pytest.raises(LocalityViolation, match="hops"):
        audit_locality(update, inputs, network, rounds - 1)


def test_algorithm1_with_shared_reward_needs_no_messages():
    """Li & Jia's setting: no agent's update reads another agent's tables (privacy, §II)."""
    network = make_network("line", num_agents=5, rounds=1)
    update, inputs = consensus_update(network, LiJiaACConfig(reward_signal="team"))
    sensitivity = audit_locality(update, inputs, network, rounds=0)
    assert np.all(np.diag(sensitivity) > 0)


def test_centralized_learners_refuse_huge_joint_tables():
    from netmarl.run.config import RunConfig
    from netmarl.run.driver import build

    with pytest.raises(ConfigError, match="joint action"):
        build(RunConfig(algo="central_ac", env="zhang_mdp", env_kwargs={"num_agents": 20}))


def test_tabular_algo_rejects_non_tabular_env():
    from netmarl.run.config import RunConfig
    from netmarl.run.driver import build

    with pytest.raises(ConfigError, match="finite MDP"):
        build(RunConfig(algo="lijia_ac", env="hallway"))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"critic_lr": -1.0}, "critic_lr must be positive"),
        ({"zeta_min": 3.0, "zeta_max": 1.0}, "T_m < T_M"),
        ({"reward_signal": "gossip"}, "reward_signal"),
    ],
)
def test_bad_algorithm_config(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        make_lijia_ac(tiny_mdp(), GAMMA, LiJiaACConfig(**kwargs))


@pytest.mark.parametrize("num_entries", [3, 243])  # one level, and two levels (> SAMPLE_BLOCK)
def test_inverse_cdf_sampler_has_the_right_distribution(num_entries):
    """sample_categorical draws k with probability weights_k / sum(weights) (chi-square)."""
    from scipy import stats

    from netmarl.algos.tabular_base import sample_categorical

    weights = jax.random.uniform(jax.random.key(5), (num_entries,)) ** 3  # uneven, some tiny
    draws = 200_000
    u = jax.random.uniform(jax.random.key(6), (draws,))
    ks = jax.jit(jax.vmap(lambda x: sample_categorical(weights, x)))(u)
    counts = np.bincount(np.asarray(ks), minlength=num_entries)
    assert counts.shape == (num_entries,)  # never an index out of range
    expected = np.asarray(weights / weights.sum(), np.float64) * draws
    keep = expected >= 5  # chi-square needs enough expected counts per cell
    chi2 = ((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum()
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-3
