"""Environment API conformance and the rules of each environment."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from netmarl.envs import (
    ENVIRONMENTS,
    AutoReset,
    Discrete,
    HallwayState,
    RandomMDPState,
    TimeStep,
    evaluate_product_policy,
    joint_index,
    make_env,
)
from netmarl.errors import ConfigError

TINY = {
    "random_mdp": dict(num_agents=2, num_states=4, num_actions=2, episode_limit=5),
    "lijia_mdp": dict(num_agents=2, num_states=5, episode_limit=4),
    "zhang_mdp": dict(num_agents=3, num_states=4, episode_limit=6),
    "didactic": {},
    "hallway": dict(num_agents=2, lengths=(2, 3)),
    "navigation": dict(num_agents=3, episode_limit=5),
}


@functools.cache
def tiny_env(name: str):
    return make_env(name, **TINY[name])


def random_actions(key, env, batch=()):
    return jax.random.randint(
        key, (*batch, env.spec.num_agents), 0, env.spec.num_actions, dtype=jnp.int32
    )


def check_timestep(ts: TimeStep, env, batch: tuple[int, ...] = ()) -> None:
    spec = env.spec
    n = spec.num_agents
    assert ts.obs.shape == (*batch, n, *spec.obs_shape)
    assert ts.global_state.shape == (*batch, *spec.state_shape)
    assert ts.rewards.shape == (*batch, n) and ts.rewards.dtype == jnp.float32
    assert ts.team_reward.shape == batch and ts.team_reward.dtype == jnp.float32
    assert ts.done.shape == batch and ts.done.dtype == jnp.bool_
    assert ts.terminated.shape == batch and ts.terminated.dtype == jnp.bool_
    assert ts.avail_actions.shape == (*batch, n, spec.num_actions)
    assert ts.avail_actions.dtype == jnp.bool_
    assert ts.episode_step.shape == batch and ts.episode_step.dtype == jnp.int32


def test_registry_names():
    assert set(ENVIRONMENTS) >= {
        "random_mdp",
        "lijia_mdp",
        "zhang_mdp",
        "didactic",
        "hallway",
        "navigation",
        "simple_spread",
    }
    assert make_env("lijia_mdp", materialize=False).spec.num_agents == 4
    assert make_env("zhang_mdp").spec.num_agents == 10
    assert make_env("hallway").spec.episode_limit == 14


@pytest.mark.parametrize("name", sorted(TINY))
def test_api_conformance(name):
    env = tiny_env(name)
    assert isinstance(env.spec.action_space, Discrete)
    limit = env.spec.episode_limit
    keys = jax.random.split(jax.random.PRNGKey(0), 8)
    state, ts = jax.jit(jax.vmap(env.reset))(keys)
    check_timestep(ts, env, (8,))
    assert not bool(ts.done.any()) and int(ts.episode_step.max()) == 0
    acts = random_actions(jax.random.PRNGKey(1), env, (8,))
    state2, ts2 = jax.jit(jax.vmap(env.step))(keys, state, acts)
    check_timestep(ts2, env, (8,))
    assert np.all(np.asarray(ts2.episode_step) == 1)

    # AutoReset inside a lax.scan: episodes restart, the limit is respected.
    auto = AutoReset(env)

    @jax.jit
    def rollout(key):
        def body(carry, k):
            st = carry
            ka, ks = jax.random.split(k)
            a = random_actions(ka, env, (8,))
            st, ts_out, ts_fin = jax.vmap(auto.step_with_final)(jax.random.split(ks, 8), st, a)
            return st, (ts_out.done, ts_out.episode_step, ts_fin.episode_step)

        st, _ = jax.vmap(auto.reset)(jax.random.split(key, 8))
        _, out = jax.lax.scan(body, st, jax.random.split(key, 2 * limit + 2))
        return out

    done, step_out, step_fin = (np.asarray(x) for x in rollout(jax.random.PRNGKey(2)))
    assert done.any()
    assert step_fin.max() <= limit
    assert np.all(step_out[done] == 0)  # the fresh episode starts at step 0
    assert np.all(step_out[~done] == step_fin[~done])
    # an episode that reaches the limit is done exactly then
    assert np.all(done[step_fin == limit])


def test_unknown_name_and_bad_kwargs():
    with pytest.raises(ConfigError, match="Did you mean 'hallway'"):
        make_env("halway")
    with pytest.raises(ConfigError, match="no option 'num_agent'.*'num_agents'"):
        make_env("lijia_mdp", num_agent=3)
    with pytest.raises(ConfigError, match="num_agents"):
        make_env("zhang_mdp", num_agents=0)
    with pytest.raises(ConfigError, match="num_states"):
        make_env("random_mdp", num_states=0)
    with pytest.raises(ConfigError, match="reward type"):
        make_env("random_mdp", reward="shared_uniform")
    with pytest.raises(ConfigError, match="lengths"):
        make_env("hallway", num_agents=3, lengths=(4, 4))
    with pytest.raises(ConfigError, match="int32"):
        make_env("random_mdp", num_agents=40, num_actions=2)
    with pytest.raises(ConfigError, match="optimal_actions"):
        make_env("didactic", optimal_actions=(1, 2))


# ------------------------------------------------------------------ random networked MDP


def all_rows(env):
    s = jnp.arange(env.num_states)
    j = jnp.arange(env.num_joint)
    grid = jax.vmap(jax.vmap(lambda a, b: (env.transition_probs(a, b), env.expected_rewards(a, b)),
                             (None, 0)), (0, None))  # fmt: skip
    return jax.jit(grid)(s, j)


def trajectory(env, acts, steps=10):
    @jax.jit
    def run(key):
        st, _ = env.reset(key)

        def body(st, k):
            st, ts = env.step(k, st, acts)
            return st, (st.s, ts.team_reward)

        return jax.lax.scan(body, st, jax.random.split(key, steps))[1]

    return run(jax.random.PRNGKey(1))


def test_materialized_equals_procedural():
    kw = dict(num_agents=2, num_states=5, num_actions=3, mdp_seed=3)
    for ctor in ("lijia_mdp", "zhang_mdp"):
        dense = make_env(ctor, materialize=True, **kw)
        proc = make_env(ctor, materialize=False, **kw)
        assert dense.dense_tables() is not None and proc.dense_tables() is None
        p_d, r_d = all_rows(dense)
        p_p, r_p = all_rows(proc)
        np.testing.assert_allclose(p_d, p_p, rtol=1e-6, atol=0)
        np.testing.assert_allclose(r_d, r_p, rtol=1e-6, atol=0)
        np.testing.assert_allclose(p_d.sum(-1), 1.0, atol=1e-5)
        assert float(p_d.min()) >= 0.0
        # same keys -> same trajectory
        traj = [trajectory(env, jnp.array([2, 1])) for env in (dense, proc)]
        for a, b in zip(*traj, strict=True):
            np.testing.assert_array_equal(a, b)
    # another seed gives another MDP
    other = make_env("lijia_mdp", materialize=True, **{**kw, "mdp_seed": 4})
    assert not np.allclose(all_rows(other)[0], p_d)


def test_auto_materialize_threshold():
    assert make_env("lijia_mdp", num_agents=5).materialized  # 100 * 243 * 100 floats
    assert make_env("zhang_mdp", num_agents=10).materialized
    assert not make_env("zhang_mdp", num_agents=16).materialized


def test_empirical_transitions_match():
    env = make_env("random_mdp", num_agents=2, num_states=6, num_actions=2, mdp_seed=1)
    s0, acts = 2, jnp.array([1, 0])
    n = 20000
    state = RandomMDPState(s=jnp.full((n,), s0, jnp.int32), t=jnp.zeros((n,), jnp.int32))
    keys = jax.random.split(jax.random.PRNGKey(5), n)
    st, _ = jax.jit(jax.vmap(env.step, (0, 0, None)))(keys, state, acts)
    freq = np.bincount(np.asarray(st.s), minlength=6) / n
    p = np.asarray(env.transition_probs(jnp.int32(s0), joint_index(acts, 2)))
    se = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(freq - p) <= 5 * se + 1e-3), (freq, p)
    chi2 = np.sum((freq - p) ** 2 / p) * n
    assert chi2 < 25.7  # 99.99% quantile of chi^2 with 5 degrees of freedom is ~25.7


def test_lijia_rewards_shared():
    env = tiny_env("lijia_mdp")
    assert env.spec.obs_shape == (5,) and env.spec.num_actions == 3
    st, ts = env.reset(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(ts.obs, jnp.broadcast_to(ts.global_state, (2, 5)))
    assert float(ts.global_state[int(st.s)]) == 1.0
    for k in jax.random.split(jax.random.PRNGKey(1), 5):
        st, ts = env.step(k, st, jnp.array([0, 2]))
        assert np.all(np.asarray(ts.rewards) == float(ts.team_reward))
        assert not bool(ts.terminated)
    r = env.expected_rewards(jnp.int32(1), jnp.int32(4))
    assert np.all(np.asarray(r) == float(r[0]))


def test_zhang_rewards_local_with_noise():
    env = make_env("zhang_mdp", num_agents=3, num_states=4, materialize=True)
    _, r = env.dense_tables()
    assert float(r.min()) >= 0.0 and float(r.max()) <= 4.0
    assert not np.allclose(r[..., 0], r[..., 1])  # local, not shared
    state = RandomMDPState(s=jnp.full((500,), 1, jnp.int32), t=jnp.zeros((500,), jnp.int32))
    keys = jax.random.split(jax.random.PRNGKey(0), 500)
    acts = jnp.array([1, 0, 1])
    _, ts = jax.jit(jax.vmap(env.step, (0, 0, None)))(keys, state, acts)
    expected = np.asarray(env.expected_rewards(jnp.int32(1), joint_index(acts, 2)))
    dev = np.asarray(ts.rewards) - expected
    assert np.all(np.abs(dev) <= 0.5 + 1e-6) and dev.std() > 0.2  # fresh U[-0.5, 0.5] noise
    np.testing.assert_allclose(ts.team_reward, np.asarray(ts.rewards).mean(-1), rtol=1e-6)


def test_zhang_20_agents_not_materialized():
    env = make_env("zhang_mdp", num_agents=20)
    assert not env.materialized and env.dense_tables() is None
    big = 2**20 * env.num_states
    for value in vars(env).values():
        if hasattr(value, "size") and hasattr(value, "shape"):
            assert value.size < big
    st, ts = jax.jit(env.reset)(jax.random.PRNGKey(0))
    st, ts = jax.jit(env.step)(jax.random.PRNGKey(1), st, jnp.ones(20, jnp.int32))
    assert ts.rewards.shape == (20,) and int(st.t) == 1
    assert float(ts.rewards.min()) >= -0.5 and float(ts.rewards.max()) <= 4.5


# ------------------------------------------------------------------ didactic game


def test_didactic_payoff():
    env = tiny_env("didactic")
    assert env.spec.num_agents == 3 and env.spec.num_actions == 14
    cases = {(1, 5, 9): 10.0, (9, 5, 1): -10.0, (0, 0, 0): -10.0, (1, 5, 8): -10.0}
    for acts, want in cases.items():
        st, ts = env.reset(jax.random.PRNGKey(0))
        st, ts = env.step(jax.random.PRNGKey(1), st, jnp.array(acts))
        assert float(ts.team_reward) == want
        np.testing.assert_array_equal(ts.rewards, [want] * 3)
        assert bool(ts.terminated) and bool(ts.done)
    # exact values: deterministic optimum and the uniform policy
    opt = jax.nn.one_hot(jnp.array([1, 5, 9]), 14)[:, None, :].repeat(2, axis=1)
    assert float(evaluate_product_policy(env, opt, 0.99).ret) == pytest.approx(10.0)
    uni = jnp.full((3, 2, 14), 1 / 14)
    p = 1 / 14**3
    want = 10 * p - 10 * (1 - p)
    for method in ("dense", "chunked"):
        got = evaluate_product_policy(env, uni, 0.5, method=method, chunk_size=14)
        assert float(got.ret) == pytest.approx(want, abs=1e-4)


# ------------------------------------------------------------------ hallway


@functools.cache
def hallway_step():
    env = make_env("hallway")
    return env, jax.jit(env.step)


def run_hallway(start, plan):
    env, step = hallway_step()
    st = HallwayState(pos=jnp.array(start, jnp.int32), t=jnp.int32(0))
    out = []
    for acts in plan:
        st, ts = step(jax.random.PRNGKey(0), st, jnp.array(acts))
        out.append(ts)
        if bool(ts.done):
            break
    return out


def test_hallway_rules():
    env, _ = hallway_step()
    assert env.spec.obs_shape == (5,) and env.spec.state_shape == (10,)
    # reset: positions in 1..4, obs one-hot of own position only
    st, ts = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 200))
    assert int(st.pos.min()) == 1 and int(st.pos.max()) == 4
    np.testing.assert_array_equal(np.argmax(ts.obs, -1), st.pos)
    np.testing.assert_array_equal(ts.global_state.reshape(200, 2, 5), ts.obs)
    # both walk to the goal together: +10
    ts = run_hallway([3, 3], [[1, 1]] * 5)
    assert len(ts) == 3 and float(ts[-1].team_reward) == 10.0 and bool(ts[-1].terminated)
    assert [float(t.team_reward) for t in ts[:-1]] == [0.0, 0.0]
    # the closer agent waits, then both arrive together: +10
    ts = run_hallway([1, 3], [[0, 1], [0, 1], [1, 1]])
    assert float(ts[-1].team_reward) == 10.0 and bool(ts[-1].terminated)
    # early arrival: episode ends with 0
    ts = run_hallway([1, 3], [[1, 1]] * 5)
    assert len(ts) == 1 and float(ts[0].team_reward) == 0.0 and bool(ts[0].terminated)
    # right is clipped at the corridor end; horizon max(m, n) + 10 truncates
    ts = run_hallway([4, 4], [[2, 0]] * 20)
    assert len(ts) == 14 and bool(ts[-1].done) and not bool(ts[-1].terminated)
    assert int(jnp.argmax(ts[-1].obs[0])) == 4
