"""Traffic-light grid: API conformance, car conservation, service, control matters, road graph."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from netmarl.envs import AutoReset, make_env
from netmarl.envs.traffic import (
    EAST,
    EW_GREEN,
    NORTH,
    NS_GREEN,
    SOUTH,
    WEST,
    TrafficGrid,
    TrafficState,
    longest_queue_first,
)
from netmarl.errors import ConfigError
from netmarl.network.graphs import make_graph


def _state(env: TrafficGrid, queues: np.ndarray, phase: np.ndarray) -> TrafficState:
    n = env.num_agents
    return TrafficState(
        queues=jnp.asarray(queues, jnp.int32),
        phase=jnp.asarray(phase, jnp.int32),
        since_switch=jnp.zeros((n,), jnp.int32),
        t=jnp.zeros((), jnp.int32),
    )


def test_api_shapes_registry_and_episode_limit() -> None:
    env = make_env("traffic_grid", rows=2, cols=3, episode_limit=5)
    assert isinstance(env, TrafficGrid)
    n = 6
    spec = env.spec
    assert spec.num_agents == n and spec.num_actions == 2 and spec.episode_limit == 5
    state, ts = env.reset(jax.random.PRNGKey(0))
    assert ts.obs.shape == (n, *spec.obs_shape) == (n, 7)
    assert ts.global_state.shape == spec.state_shape == (6 * n,)
    assert ts.rewards.shape == (n,) and ts.avail_actions.shape == (n, 2)
    assert bool(ts.avail_actions.all()) and not bool(ts.done)
    step = jax.jit(env.step)
    for k in range(5):
        state, ts = step(jax.random.PRNGKey(k + 1), state, jnp.zeros(n, jnp.int32))
        assert bool(ts.done) == (k == 4)
        assert not bool(ts.terminated)
        assert ts.rewards.dtype == jnp.float32
        np.testing.assert_allclose(ts.rewards, -state.queues.sum(1))
        np.testing.assert_allclose(ts.team_reward, ts.rewards.mean(), rtol=1e-6)
        assert bool((ts.obs >= 0).all() & (ts.obs <= 1).all())
    with pytest.raises(ConfigError):
        make_env("traffic_grid", arrival_rate=1.5)
    with pytest.raises(ConfigError):
        make_env("traffic_grid", rows=1, cols=1)
    with pytest.raises(ConfigError):
        make_env("traffic_grid", max_queue=2, init_queue=3)


def test_jit_vmap_autoreset_over_8_envs() -> None:
    env = AutoReset(TrafficGrid(episode_limit=3))
    n, b = env.spec.num_agents, 8
    keys = jax.random.split(jax.random.PRNGKey(1), b)
    state, ts = jax.vmap(env.reset)(keys)
    assert ts.obs.shape == (b, n, 7)
    step = jax.jit(jax.vmap(env.step))
    dones = []
    for k in range(7):
        acts = jax.random.randint(jax.random.PRNGKey(100 + k), (b, n), 0, 2)
        state, ts = step(jax.random.split(jax.random.PRNGKey(k), b), state, acts)
        dones.append(bool(ts.done.all()))
        assert ts.rewards.shape == (b, n)
    assert dones == [False, False, True, False, False, True, False]
    assert int(state.t.max()) == 1  # restarted after step 6


def test_cars_are_conserved_exactly() -> None:
    env = TrafficGrid(rows=3, cols=4, arrival_rate=0.7, max_queue=3, init_queue=3)
    step = jax.jit(env.step_with_flows)
    state, _ = env.reset(jax.random.PRNGKey(2))
    saw_drop = saw_exit = False
    for k in range(60):
        acts = jax.random.randint(jax.random.PRNGKey(1000 + k), (env.num_agents,), 0, 2)
        new_state, _, fl = step(jax.random.PRNGKey(k), state, acts)
        before, after = int(state.queues.sum()), int(new_state.queues.sum())
        arr, ex, drop = int(fl.arrivals.sum()), int(fl.exits.sum()), int(fl.dropped.sum())
        assert after == before + arr - ex - drop
        assert new_state.queues.dtype == jnp.int32
        assert int(new_state.queues.min()) >= 0 and int(new_state.queues.max()) <= 3
        assert not bool((fl.arrivals > 0)[~env.boundary].any())  # outside cars: boundary only
        saw_drop |= drop > 0
        saw_exit |= ex > 0
        state = new_state
    assert saw_drop and saw_exit


def test_green_serves_at_service_rate_red_does_not() -> None:
    env = TrafficGrid(rows=1, cols=2, arrival_rate=0.0, service_rate=2, max_queue=20)
    q = np.zeros((2, 4), np.int32)
    q[0] = [5, 5, 5, 5]  # intersection 0 (west); its W lane feeds intersection 1's W lane
    state = _state(env, q, [NS_GREEN, NS_GREEN])
    state, _, fl = env.step_with_flows(jax.random.PRNGKey(0), state, jnp.array([NS_GREEN, 0]))
    np.testing.assert_array_equal(fl.departures[0], [2, 2, 0, 0])
    np.testing.assert_array_equal(state.queues[0], [3, 3, 5, 5])  # N/S served, E/W red
    for _ in range(2):  # keep NS green: queues drain at 2 per step down to 0 (5 -> 3 -> 1 -> 0)
        state, _ = env.step(jax.random.PRNGKey(0), state, jnp.array([NS_GREEN, NS_GREEN]))
    np.testing.assert_array_equal(state.queues[0], [0, 0, 5, 5])
    # switching to EW: one all-red (yellow) step with no service, then 2 cars per step
    state, _, fl = env.step_with_flows(jax.random.PRNGKey(0), state, jnp.array([EW_GREEN, 0]))
    assert int(fl.departures.sum()) == 0 and int(state.since_switch[0]) == 0
    state, _, fl = env.step_with_flows(jax.random.PRNGKey(0), state, jnp.array([EW_GREEN, 0]))
    np.testing.assert_array_equal(state.queues[0], [0, 0, 3, 3])
    # E lane of the west-most intersection exits; W lane moves on to intersection 1's W lane
    assert int(fl.exits[0, EAST]) == 2 and int(fl.exits[0, WEST]) == 0
    assert int(state.queues[1, WEST]) == 2


def test_spill_back_blocks_a_full_downstream_lane() -> None:
    env = TrafficGrid(rows=1, cols=2, arrival_rate=0.0, service_rate=3, max_queue=4)
    q = np.zeros((2, 4), np.int32)
    q[0, WEST], q[1, WEST] = 4, 3  # downstream lane has room for one car
    state = _state(env, q, [EW_GREEN, NS_GREEN])  # intersection 1 keeps its W lane red
    state, _ = env.step(jax.random.PRNGKey(0), state, jnp.array([EW_GREEN, NS_GREEN]))
    assert int(state.queues[0, WEST]) == 3 and int(state.queues[1, WEST]) == 4


def test_control_matters_longest_queue_first_beats_never_switching() -> None:
    env = TrafficGrid()

    def episode_return(policy, key):
        k0, k1 = jax.random.split(key)
        state, _ = env.reset(k0)

        def body(s, k):
            s, ts = env.step(k, s, policy(s))
            return s, ts.team_reward

        _, r = jax.lax.scan(body, state, jax.random.split(k1, env.episode_limit))
        return r.sum()

    keys = jax.random.split(jax.random.PRNGKey(3), 64)
    lqf = jax.jit(jax.vmap(lambda k: episode_return(longest_queue_first, k)))(keys)
    never = jax.jit(jax.vmap(lambda k: episode_return(lambda s: s.phase, k)))(keys)
    # LQF roughly -650, never-switch roughly -1860 per episode (team reward = mean queue)
    assert float(lqf.mean()) > 0.6 * float(never.mean())
    assert float(lqf.mean()) - float(never.mean()) > 10 * float(lqf.std()) / 8


def test_road_graph_is_grid_and_cars_move_only_along_edges() -> None:
    env = TrafficGrid(rows=3, cols=4, arrival_rate=0.0, max_queue=50)
    graph = env.road_graph()
    assert graph == make_graph("grid", 12, rows=3)
    # row-major numbering: i = r * cols + c; neighbours differ by one row or one column
    for i, j in graph.edges:
        (ri, ci), (rj, cj) = divmod(i, 4), divmod(j, 4)
        assert abs(ri - rj) + abs(ci - cj) == 1
    # routing tables only ever point to road neighbours (or -1 = outside)
    for table in (env.downstream, env.upstream):
        for i in range(12):
            for j in table[i]:
                assert j == -1 or graph.adjacency[i, j]
    # dynamically: put cars at one intersection only, step, cars appear only at neighbours
    for i in range(12):
        for phase in (NS_GREEN, EW_GREEN):
            q = np.zeros((12, 4), np.int32)
            q[i] = 5
            state = _state(env, q, np.full(12, phase))
            new, _, fl = env.step_with_flows(jax.random.PRNGKey(0), state, jnp.full(12, phase))
            moved = np.asarray(new.queues).sum(1)
            moved[i] -= int(new.queues[i].sum())
            for j in np.nonzero(moved)[0]:
                assert graph.adjacency[i, j], (i, j)
            assert int(moved.sum()) + int(fl.exits.sum()) == 2  # two green lanes, 1 car each
    # direction sanity: the N lane (southbound) of (0, 1) feeds (1, 1)
    assert env.downstream[1, NORTH] == 5 and env.downstream[5, SOUTH] == 1
    assert env.downstream[0, WEST] == 1 and env.downstream[0, EAST] == -1
