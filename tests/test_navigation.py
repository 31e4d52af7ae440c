"""Cooperative navigation: step-for-step parity with mpe2's simple_spread_v3, Li & Jia's reward."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from netmarl.envs import AutoReset, Box, Discrete
from netmarl.envs.navigation import (
    DOWN,
    LEFT,
    NOOP,
    RIGHT,
    UP,
    CooperativeNavigation,
    NavigationState,
    navigation_state,
)
from netmarl.errors import ConfigError

STEPS = 120


@pytest.fixture
def quiet_pettingzoo(monkeypatch):
    # mpe2's ClipOutOfBoundsWrapper logs a warning for every float64 action (not castable to
    # its float32 Box); silence it
    env_logger = pytest.importorskip("pettingzoo.utils.env_logger")
    monkeypatch.setattr(env_logger.EnvLogger, "_output", False)


def _reference(n: int, continuous: bool, local_ratio: float, seed: int):
    simple_spread_v3 = pytest.importorskip("mpe2.simple_spread_v3")
    ref = simple_spread_v3.parallel_env(
        N=n, max_cycles=STEPS, continuous_actions=continuous, local_ratio=local_ratio
    )
    obs, _ = ref.reset(seed=seed)
    world = ref.unwrapped.world
    # Pull the agents together (a legal state) so that contacts happen within the run.
    for agent in world.agents:
        agent.state.p_pos = agent.state.p_pos * 0.4
    obs = {a.name: ref.unwrapped.observe(a.name) for a in world.agents}
    return ref, world, obs


def _world_arrays(world) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pos = np.array([a.state.p_pos for a in world.agents])
    vel = np.array([a.state.p_vel for a in world.agents])
    landmarks = np.array([lm.state.p_pos for lm in world.landmarks])
    return pos, vel, landmarks


@pytest.mark.parametrize(
    ("n", "continuous", "local_ratio", "x64"),
    [
        (3, False, 0.5, True),
        (3, True, 0.25, True),
        (5, False, 0.8, True),
        (5, True, 0.5, True),
        (5, True, 0.5, False),  # float32 throughout, looser tolerance
    ],
)
def test_parity_with_mpe2(n, continuous, local_ratio, x64, quiet_pettingzoo):
    ref, world, obs = _reference(n, continuous, local_ratio, seed=10 + n)
    env = CooperativeNavigation(
        n, continuous=continuous, local_ratio=local_ratio, episode_limit=STEPS
    )
    names = [a.name for a in world.agents]
    rng = np.random.default_rng(n)
    # float64: the same arithmetic as mpe2 (rewards and observations are float32 on both sides);
    # float32: round-off grows through the stiff contact forces (100 N per unit of overlap)
    tol_state = 1e-9 if x64 else 2e-3
    tol = 1e-5 if x64 else 2e-3
    collisions = 0
    with jax.enable_x64(x64):
        pos, vel, landmarks = _world_arrays(world)
        state = navigation_state(pos, landmarks, vel)
        assert state.agent_pos.dtype == (jnp.float64 if x64 else jnp.float32)
        ts = env.initial_timestep(state)
        np.testing.assert_allclose(ts.obs, np.stack([obs[a] for a in names]), atol=tol)
        step = jax.jit(env.step)
        for t in range(STEPS):
            if continuous:
                actions = rng.uniform(-0.2, 1.2, (n, 5))
                # mpe2's ClipOutOfBoundsWrapper clips to [0, 1] (and logs a warning); ours
                # clips inside step: give mpe2 the clipped and ours the raw actions
                ref_actions = np.clip(actions, 0.0, 1.0)
            else:
                actions = ref_actions = rng.integers(0, 5, n)
            obs, rew, _, trunc, _ = ref.step({a: ref_actions[i] for i, a in enumerate(names)})
            state, ts = step(jax.random.PRNGKey(t), state, jnp.asarray(actions))
            pos, vel, _ = _world_arrays(world)
            np.testing.assert_allclose(state.agent_pos, pos, rtol=0, atol=tol_state)
            np.testing.assert_allclose(state.agent_vel, vel, rtol=0, atol=tol_state)
            np.testing.assert_allclose(ts.rewards, [rew[a] for a in names], rtol=0, atol=tol)
            np.testing.assert_allclose(ts.obs, np.stack([obs[a] for a in names]), atol=tol)
            assert bool(ts.done) == all(trunc.values()) == (t == STEPS - 1)
            assert not bool(ts.terminated)
            collisions += int(np.sum(env.collisions(state.agent_pos)))
    assert collisions > 0  # the contact forces and the collision penalty were exercised


def _hand_state() -> NavigationState:
    # agents 0 and 1 overlap (distance 0.2 < 0.3); agent 2 sits on its landmark
    return navigation_state(
        agent_pos=[[0.0, 0.0], [0.2, 0.0], [1.0, 1.0]],
        landmark_pos=[[0.3, 0.4], [0.2, -1.0], [1.0, 1.0]],
    )


def test_lijia_reward_by_hand():
    env = CooperativeNavigation(3, reward="lijia")
    state, ts = env.step(jax.random.PRNGKey(0), _hand_state(), jnp.array([NOOP, NOOP, UP]))
    # zero velocities: the positions do not move in this step
    np.testing.assert_allclose(state.agent_pos, _hand_state().agent_pos)
    # distances to own target 0.5, 1.0, 0; agents 0 and 1 collide once each
    np.testing.assert_allclose(ts.rewards, [-1.5, -2.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(ts.team_reward, -3.5 / 3, atol=1e-6)
    # contact: penetration ~ 0.1, force 100 * 0.1 = 10, dv = 10 * dt = 1 apart along x;
    # agent 2: UP gives force 5, dv = 0.5
    np.testing.assert_allclose(state.agent_vel, [[-1, 0], [1, 0], [0, 0.5]], atol=1e-4)


def test_mpe_reward_by_hand():
    env = CooperativeNavigation(3, reward="mpe", local_ratio=0.25)
    _, ts = env.step(jax.random.PRNGKey(0), _hand_state(), jnp.zeros(3, jnp.int32))
    # closest agent per landmark: agent 1 at sqrt(0.17), agent 1 at 1.0, agent 2 at 0
    shared = -(np.sqrt(0.17) + 1.0)
    expected = 0.75 * shared + 0.25 * np.array([-1.0, -1.0, 0.0])
    np.testing.assert_allclose(ts.rewards, expected, atol=1e-6)
    np.testing.assert_allclose(ts.team_reward, expected.mean(), atol=1e-6)


def test_discrete_and_continuous_action_forces():
    disc = CooperativeNavigation(5)
    u = disc.action_force(jnp.array([NOOP, LEFT, RIGHT, DOWN, UP]), jnp.float32)
    np.testing.assert_allclose(u, [[0, 0], [-5, 0], [5, 0], [0, -5], [0, 5]])
    cont = CooperativeNavigation(2, continuous=True)
    a = jnp.array([[1.0, 0.2, 0.7, 0.0, 0.4], [0.0, 2.0, -1.0, 0.5, 0.5]])
    np.testing.assert_allclose(cont.action_force(a, jnp.float32), [[2.5, 2.0], [-5.0, 0.0]])


@pytest.mark.parametrize(("continuous", "observation"), [(False, "local"), (True, "global")])
def test_spec_and_rollout(continuous, observation):
    n = 4
    env = CooperativeNavigation(
        n, continuous=continuous, observation=observation, reward="lijia", episode_limit=7
    )
    spec = env.spec
    assert spec.num_agents == n and spec.episode_limit == 7 and spec.state_shape == (6 * n,)
    assert spec.obs_shape == ((6 * n,) if observation == "local" else (7 * n,))
    if continuous:
        assert spec.action_space == Box(0.0, 1.0, (5,))
    else:
        assert spec.action_space == Discrete(5) and spec.num_actions == 5
    auto = AutoReset(env)
    batch = 3

    @jax.jit
    def rollout(key):
        def body(state, k):
            ka, ks = jax.random.split(k)
            if continuous:
                a = jax.random.uniform(ka, (batch, n, 5))
            else:
                a = jax.random.randint(ka, (batch, n), 0, 5)
            state, ts = jax.vmap(auto.step)(jax.random.split(ks, batch), state, a)
            return state, ts

        state, ts0 = jax.vmap(auto.reset)(jax.random.split(key, batch))
        _, traj = jax.lax.scan(body, state, jax.random.split(key, 15))
        return state, ts0, traj

    state0, ts0, traj = rollout(jax.random.PRNGKey(0))
    assert np.all(np.abs(np.asarray(state0.agent_pos)) <= 1.0)
    assert np.all(np.asarray(state0.agent_vel) == 0.0)
    assert ts0.obs.shape == (batch, n, *spec.obs_shape)
    assert ts0.global_state.shape == (batch, *spec.state_shape)
    assert ts0.avail_actions.shape == (batch, n, 1 if continuous else 5)
    assert bool(ts0.avail_actions.all())
    assert traj.rewards.shape == (15, batch, n) and traj.rewards.dtype == jnp.float32
    done = np.asarray(traj.done)
    assert np.array_equal(np.nonzero(done[:, 0])[0], [6, 13])  # truncated every 7 steps
    assert not np.asarray(traj.terminated).any()
    np.testing.assert_allclose(traj.team_reward, np.asarray(traj.rewards).mean(-1), atol=1e-6)
    if observation == "global":  # every agent sees the global state and its own index
        obs = np.asarray(traj.obs)
        np.testing.assert_array_equal(
            obs[..., : 6 * n], np.asarray(traj.global_state)[..., None, :].repeat(n, -2)
        )
        np.testing.assert_array_equal(
            obs[..., 6 * n :], np.broadcast_to(np.eye(n), obs[..., 6 * n :].shape)
        )


def test_local_observation_layout():
    env = CooperativeNavigation(3)
    state = _hand_state()._replace(agent_vel=jnp.array([[0.1, 0.2], [0.0, 0.0], [0.0, -0.3]]))
    obs = np.asarray(env.observations(state))
    assert obs.shape == (3, 18)
    np.testing.assert_allclose(obs[1, :4], [0.0, 0.0, 0.2, 0.0])  # own velocity, own position
    np.testing.assert_allclose(obs[1, 4:10], [0.1, 0.4, 0.0, -1.0, 0.8, 1.0], atol=1e-6)
    np.testing.assert_allclose(obs[1, 10:14], [-0.2, 0.0, 0.8, 1.0], atol=1e-6)  # agents 0, 2
    np.testing.assert_array_equal(obs[:, 14:], 0.0)  # silent communication channels


def test_single_agent():
    env = CooperativeNavigation(1)
    state, _ = env.reset(jax.random.PRNGKey(0))
    _, ts = env.step(jax.random.PRNGKey(1), state, jnp.array([RIGHT]))
    assert ts.obs.shape == (1, 6) and env.spec.obs_shape == (6,)
    d = np.linalg.norm(np.asarray(state.agent_pos + state.agent_vel * 0.1 - state.landmark_pos))
    np.testing.assert_allclose(ts.rewards, [-0.5 * d], atol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_agents=0),
        dict(reward="shared"),
        dict(local_ratio=1.5),
        dict(episode_limit=0),
        dict(observation="partial"),
        dict(continuous="yes"),
        dict(num_agents=2.5),
    ],
)
def test_bad_config(kwargs):
    with pytest.raises(ConfigError):
        CooperativeNavigation(**kwargs)


def test_registry():
    from netmarl.envs import make_env

    env = make_env("navigation", num_agents=5, continuous=True, reward="lijia")
    assert isinstance(env, CooperativeNavigation) and env.spec.action_space == Box(0.0, 1.0, (5,))
    assert make_env("simple_spread").spec.obs_shape == (18,)
    with pytest.raises(ConfigError):
        make_env("navigation", local_ratio=2.0)
    with pytest.raises(ConfigError):
        make_env("navigation", num_landmarks=3)
