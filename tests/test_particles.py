"""Aggregation and Mill (DOP §5.3): navigation physics, the paper's rewards and limits."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from netmarl.envs import AutoReset, make_env
from netmarl.envs.navigation import CooperativeNavigation, NavigationState
from netmarl.envs.particles import Aggregation, Mill
from netmarl.errors import ConfigError


@pytest.mark.parametrize("continuous", [True, False])
def test_specs_and_shapes(continuous):
    agg = make_env("aggregation", continuous=continuous)
    mill = make_env("mill", continuous=continuous)
    assert (agg.spec.num_agents, agg.spec.episode_limit) == (5, 25)
    assert (mill.spec.num_agents, mill.spec.episode_limit) == (10, 10)
    assert agg.spec.discrete != continuous and mill.spec.discrete != continuous
    for env in (agg, mill):
        state, ts = env.reset(jax.random.key(0))
        n = env.spec.num_agents
        assert ts.obs.shape == (n, *env.spec.obs_shape)
        assert ts.global_state.shape == env.spec.state_shape
        space = env.spec.action_space
        a = jnp.zeros((n, *space.shape), jnp.float32) if continuous else jnp.zeros((n,), jnp.int32)
        _, ts = jax.jit(env.step)(jax.random.key(1), state, a)
        assert ts.rewards.shape == (n,) and ts.team_reward.shape == ()
        assert np.all(np.asarray(ts.rewards) == float(ts.team_reward))  # shared reward


def test_aggregation_moves_exactly_like_navigation():
    """The physics is navigation's: same positions and actions give the same trajectory."""
    key = jax.random.key(3)
    agg = Aggregation(num_agents=5, continuous=True)
    nav = CooperativeNavigation(num_agents=5, continuous=True)
    state, _ = agg.reset(key)
    nav_state = NavigationState(state.agent_pos, state.agent_vel, jnp.zeros((5, 2)), jnp.int32(0))
    agg_step, nav_step = jax.jit(agg.step), jax.jit(nav.step)  # one compile, not one per op
    for t in range(10):
        a = jax.random.uniform(jax.random.fold_in(key, t), (5, 5))
        state, _ = agg_step(key, state, a)
        nav_state, _ = nav_step(key, nav_state, a)
        np.testing.assert_array_equal(state.agent_pos, nav_state.agent_pos)
        np.testing.assert_array_equal(state.agent_vel, nav_state.agent_vel)


def _agg_state(agent_pos, landmark=(0.0, 0.0), t=0):
    pos = jnp.asarray(agent_pos, jnp.float32)
    landmark_pos = jnp.asarray([landmark], jnp.float32)
    return NavigationState(pos, jnp.zeros_like(pos), landmark_pos, jnp.int32(t))


def test_aggregation_rewards():
    env = Aggregation(num_agents=5, continuous=True, success_radius=0.4)
    step = jax.jit(env.step)
    still = jnp.zeros((5, 5))
    ring = 0.3 * np.stack([np.cos(np.arange(5) * 1.2566), np.sin(np.arange(5) * 1.2566)], 1)
    # all five within 0.4 of the landmark: +10 and the episode ends
    _, ts = step(None, _agg_state(ring), still)
    assert float(ts.team_reward) == 10.0 and bool(ts.terminated) and bool(ts.done)
    # one agent away: nothing, the episode goes on
    far = ring.copy()
    far[4] = [0.9, 0.9]
    _, ts = step(None, _agg_state(far), still)
    assert float(ts.team_reward) == 0.0 and not bool(ts.done)
    # ... until the 25th step: -10, a terminal payoff
    _, ts = step(None, _agg_state(far, t=24), still)
    assert float(ts.team_reward) == -10.0 and bool(ts.terminated)


def test_aggregation_reset_distribution():
    env = Aggregation()
    states, ts = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.key(0), 2000))
    pos = np.asarray(states.agent_pos)
    lm = np.asarray(states.landmark_pos)
    assert lm.shape == (2000, 1, 2)
    for x in (pos, lm):
        assert x.min() >= -1.0 and x.max() <= 1.0
        assert abs(x.mean()) < 0.05 and abs(x.var() - 1 / 3) < 0.02  # uniform on [-1, 1]
    assert np.all(np.asarray(states.agent_vel) == 0)
    # the time feature starts at 1 (all steps left)
    assert np.all(np.asarray(ts.obs)[..., -1] == 1.0)


def _mill_run(env, pushes, steps):
    state, _ = env.reset(jax.random.key(0))
    step = jax.jit(lambda state: env.step(None, state, pushes))
    out = []
    for _ in range(steps):
        state, ts = step(state)
        out.append((float(state.omega), float(ts.team_reward), bool(ts.terminated)))
        if ts.done:
            break
    return out


def test_mill_dynamics_and_rewards():
    env = Mill(num_agents=10, continuous=True)
    # everyone pushes clockwise with full force: omega_t = 120 (1 - 0.75^t), a win at step 7
    trace = _mill_run(env, jnp.ones((10, 1)), 10)
    omegas = [o for o, _, _ in trace]
    np.testing.assert_allclose(omegas, 120 * (1 - 0.75 ** np.arange(1, 8)), rtol=1e-5)
    assert [r for _, r, _ in trace] == [0.0, 3, 3, 3, 3, 3, 13.0]
    assert [d for _, _, d in trace] == [False] * 6 + [True]
    # nine push, one pushes back: omega stays below 100, -10 (plus 3) at the deadline
    pushes = jnp.ones((10, 1)).at[0].set(-1.0)
    trace = _mill_run(env, pushes, 10)
    assert len(trace) == 10 and trace[-1][2] and max(o for o, _, _ in trace) < 100
    assert trace[-1][1] == 3.0 - 10.0
    # discrete: 2 = clockwise, the same physics
    disc = _mill_run(Mill(continuous=False), jnp.full((10,), 2, jnp.int32), 10)
    np.testing.assert_allclose([o for o, _, _ in disc], omegas, rtol=1e-6)


def test_mill_reset_and_rim():
    env = Mill()
    states, ts = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.key(1), 500))
    phi = np.asarray(states.phi)
    assert phi.min() >= 0 and phi.max() < 2 * np.pi and phi.std() > 1.5
    assert np.all(np.asarray(states.omega) == 0)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(states.agent_pos), axis=-1), 1.0, 1e-5)
    # agent i sits at phi + 2 pi i / N and observes its place on the rim
    obs = np.asarray(ts.obs[0])
    np.testing.assert_allclose(obs[:, 1:3], np.asarray(states.agent_pos[0]), atol=1e-6)


def test_auto_reset_and_rendering():
    from netmarl.render import frame

    for name in ("aggregation", "mill"):
        env = AutoReset(make_env(name))
        state, _ = env.reset(jax.random.key(0))
        img = frame(env, state)
        assert img.ndim == 3 and img.shape[-1] == 3 and img.std() > 0


@pytest.mark.parametrize(
    "name, kwargs, match",
    [
        ("aggregation", {"success_radius": 0.0}, "success_radius"),
        ("aggregation", {"num_agents": 1}, "num_agents"),
        ("mill", {"episode_limit": 0}, "episode_limit"),
        ("mill", {"radius": 2}, "no option"),
    ],
)
def test_bad_env_options(name, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        make_env(name, **kwargs)


def test_aggregation_is_solvable_by_a_simple_controller():
    """The success radius leaves room for all five colliding discs: every agent pushing
    towards the landmark (a damped proportional controller) wins most episodes, in about half
    the time limit."""
    env = Aggregation()

    def controller(state):
        d = state.landmark_pos[0] - state.agent_pos
        u = jnp.clip(2.0 * d - 0.6 * state.agent_vel, -1.0, 1.0)
        zero = jnp.zeros(u.shape[0])
        return jnp.stack(
            [zero, jnp.maximum(-u[:, 0], 0), jnp.maximum(u[:, 0], 0),
             jnp.maximum(-u[:, 1], 0), jnp.maximum(u[:, 1], 0)], axis=1,
        )  # fmt: skip

    def episode(key):
        state, _ = env.reset(key)

        def body(carry, _):
            state, ret, done = carry
            new, ts = env.step(key, state, controller(state))
            ret = ret + jnp.where(done, 0.0, ts.team_reward)
            state = jax.tree.map(lambda a, b: jnp.where(done, a, b), state, new)
            return (state, ret, done | ts.done), None

        (state, ret, _), _ = jax.lax.scan(body, (state, 0.0, False), None, env.episode_limit)
        return ret, state.t

    ret, steps = jax.jit(jax.vmap(episode))(jax.random.split(jax.random.key(0), 300))
    ret, steps = np.asarray(ret), np.asarray(steps)
    assert set(np.unique(ret)) <= {10.0, -10.0}
    assert (ret > 0).mean() > 0.5
    assert steps[ret > 0].mean() < 20
