"""Exact tabular policy evaluation against independent computations."""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from netmarl.envs import (
    evaluate_joint_policy,
    evaluate_product_policy,
    joint_actions,
    joint_index,
    make_env,
    product_to_joint,
)
from netmarl.errors import ConfigError

N, S, A = 2, 4, 2
GAMMA = 0.9


@functools.cache
def tiny(reward: str = "zhang", materialize: bool = True):
    name = "zhang_mdp" if reward == "zhang" else "lijia_mdp"
    return make_env(
        name,
        num_agents=N,
        num_states=S,
        num_actions=A,
        mdp_seed=7,
        episode_limit=1000,
        materialize=materialize,
    )


def random_local_probs(seed: int, n: int = N, s: int = S, a: int = A) -> jax.Array:
    return jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(seed), (n, s, a)), axis=-1)


def test_joint_index_roundtrip():
    assert int(joint_index(jnp.array([1, 0, 2]), 3)) == 1 * 9 + 0 * 3 + 2
    idx = jnp.arange(27)
    acts = joint_actions(idx, 3, 3)
    assert acts.shape == (27, 3) and acts.dtype == jnp.int32
    np.testing.assert_array_equal(joint_index(acts, 3), idx)
    np.testing.assert_array_equal(acts[5], [0, 1, 2])


def numpy_values(env, local_probs, gamma):
    """Independent float64 computation: loops over states and per-agent actions."""
    lp = np.asarray(local_probs, np.float64)
    rows = jax.jit(
        jax.vmap(
            jax.vmap(
                lambda s, j: (env.transition_probs(s, j), env.expected_rewards(s, j)), (None, 0)
            ),
            (0, None),
        )  # fmt: skip
    )
    p_all, r_all = (np.asarray(x, np.float64) for x in rows(jnp.arange(S), jnp.arange(A**N)))
    p_pi = np.zeros((S, S))
    r_pi = np.zeros((S, N))
    for s in range(S):
        for acts in itertools.product(range(A), repeat=N):
            j = sum(a * A ** (N - 1 - i) for i, a in enumerate(acts))
            w = np.prod([lp[i, s, a] for i, a in enumerate(acts)])
            p_pi[s] += w * p_all[s, j]
            r_pi[s] += w * r_all[s, j]
    local = np.linalg.solve(np.eye(S) - gamma * p_pi, r_pi).T  # [N, S]
    # cross-check with value iteration
    v = np.zeros((S, N))
    for _ in range(400):
        v = r_pi + gamma * p_pi @ v
    np.testing.assert_allclose(v.T, local, rtol=1e-8, atol=1e-8)
    return local


@pytest.mark.parametrize("reward", ["zhang", "lijia"])
def test_against_numpy(reward):
    env = tiny(reward)
    lp = random_local_probs(0)
    got = jax.jit(lambda p: evaluate_product_policy(env, p, GAMMA))(lp)
    local = numpy_values(env, lp, GAMMA)
    team = local.mean(0) if reward == "zhang" else local[0]
    np.testing.assert_allclose(got.local_values, local, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got.values, team, rtol=1e-4, atol=1e-4)
    assert float(got.ret) == pytest.approx(team.mean(), rel=1e-4)


def test_against_monte_carlo():
    env = tiny("zhang")
    lp = random_local_probs(1)
    exact = evaluate_product_policy(env, lp, GAMMA)
    m, horizon = 4000, 120  # GAMMA^120 ~ 3e-6: negligible truncation bias

    @jax.jit
    def discounted_returns(key):
        def one(k):
            k0, k1 = jax.random.split(k)
            st, _ = env.reset(k0)

            def body(carry, kk):
                st, disc, ret_team, ret_local = carry
                ka, ks = jax.random.split(kk)
                logits = jnp.log(lp[jnp.arange(N), st.s])  # [N, A]
                acts = jax.random.categorical(ka, logits).astype(jnp.int32)
                st, ts = env.step(ks, st, acts)
                return (
                    st,
                    disc * GAMMA,
                    ret_team + disc * ts.team_reward,
                    ret_local + disc * ts.rewards,
                ), None

            init = (st, jnp.float32(1.0), jnp.float32(0.0), jnp.zeros(N))
            (_, _, rt, rl), _ = jax.lax.scan(body, init, jax.random.split(k1, horizon))
            return rt, rl

        return jax.vmap(one)(jax.random.split(key, m))

    rt, rl = (np.asarray(x) for x in discounted_returns(jax.random.PRNGKey(3)))
    se = rt.std() / np.sqrt(m)
    assert abs(rt.mean() - float(exact.ret)) < 3 * se, (rt.mean(), float(exact.ret), se)
    init = np.asarray(env.initial_distribution())
    for i in range(N):
        se_i = rl[:, i].std() / np.sqrt(m)
        want = float(init @ np.asarray(exact.local_values[i]))
        assert abs(rl[:, i].mean() - want) < 3.5 * se_i


def test_product_equals_joint_and_vmap():
    env = tiny("zhang")
    lps = jax.vmap(random_local_probs)(jnp.arange(10))  # 10 seeds of policies
    prod = jax.jit(jax.vmap(lambda p: evaluate_product_policy(env, p, GAMMA)))(lps)
    joint = jax.jit(jax.vmap(lambda p: evaluate_joint_policy(env, product_to_joint(p), GAMMA)))(lps)
    assert prod.values.shape == (10, S) and prod.ret.shape == (10,)
    assert prod.local_values.shape == (10, N, S)
    np.testing.assert_allclose(prod.values, joint.values, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(prod.local_values, joint.local_values, rtol=1e-5, atol=1e-5)
    one = evaluate_product_policy(env, lps[3], GAMMA)
    np.testing.assert_allclose(prod.ret[3], one.ret, rtol=1e-5)
    # gamma can be traced too
    by_gamma = jax.jit(jax.vmap(lambda g: evaluate_product_policy(env, lps[0], g).ret))(
        jnp.array([0.0, GAMMA])
    )
    np.testing.assert_allclose(by_gamma[1], prod.ret[0], rtol=1e-5)
    r0 = np.asarray(env.initial_distribution()) @ np.asarray(
        jax.vmap(lambda s: product_to_joint(lps[0])[s] @ env.dense_tables()[1][s].mean(-1))(
            jnp.arange(S)
        )
    )
    assert float(by_gamma[0]) == pytest.approx(float(r0), rel=1e-5)


def test_chunked_equals_dense():
    env = make_env("zhang_mdp", num_agents=3, num_states=5, num_actions=3, materialize=True)
    proc = make_env("zhang_mdp", num_agents=3, num_states=5, num_actions=3, materialize=False)
    lp = random_local_probs(2, 3, 5, 3)
    jp = product_to_joint(lp)
    dense = jax.jit(lambda p: evaluate_product_policy(env, p, GAMMA, method="dense"))(lp)
    cases = [  # (mdp, evaluator, chunk_size): k = 0..3 trailing agents per chunk
        (env, "product", 4),
        (proc, "product", 1),
        (proc, "product", 27),
        (proc, "joint", 4),
    ]
    for mdp, kind, chunk in cases:
        if kind == "product":
            fn = functools.partial(evaluate_product_policy, mdp, method="chunked")
            got = jax.jit(lambda p, fn=fn, c=chunk: fn(p, GAMMA, chunk_size=c))(lp)
        else:
            fn = functools.partial(evaluate_joint_policy, mdp, method="chunked")
            got = jax.jit(lambda p, fn=fn, c=chunk: fn(p, GAMMA, chunk_size=c))(jp)
        np.testing.assert_allclose(got.values, dense.values, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got.local_values, dense.local_values, rtol=1e-5, atol=1e-5)
    auto = jax.jit(lambda p: evaluate_product_policy(proc, p, GAMMA))(
        lp
    )  # procedural but small -> dense by vmap
    np.testing.assert_allclose(auto.values, dense.values, rtol=1e-5, atol=1e-5)


def test_bad_shapes():
    env = tiny("zhang")
    with pytest.raises(ConfigError, match="local_probs"):
        evaluate_product_policy(env, jnp.ones((N, S, A + 1)), GAMMA)
    with pytest.raises(ConfigError, match="joint_probs"):
        evaluate_joint_policy(env, jnp.ones((S, A)), GAMMA)
    with pytest.raises(ConfigError, match="method"):
        evaluate_product_policy(env, random_local_probs(0), GAMMA, method="sparse")
