"""Level-Based Foraging: parity with the reference ``lbforaging`` 2.0.0 and the spawn rules."""

from __future__ import annotations

import functools

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from netmarl.envs.lbf import LBFState, LevelBasedForaging, parse_task_id
from netmarl.errors import ConfigError

lbforaging = pytest.importorskip("lbforaging")
from lbforaging.foraging.environment import Action, ForagingEnv  # noqa: E402

PARITY_TASKS = [
    "Foraging-8x8-2p-2f-coop-v3",
    "Foraging-2s-8x8-2p-2f-v3",
    "Foraging-10x10-3p-3f-v3",
    "Foraging-2s-12x12-4p-3f-coop-v3",
]
STEPS_PER_TASK = 1000


@functools.cache
def jax_env(task: str, **kwargs):
    env = LevelBasedForaging.from_task_id(task, **kwargs)
    return env, jax.jit(env.step), jax.jit(env.observe)


def reference_env(env: LevelBasedForaging) -> ForagingEnv:
    """The reference env with ``env``'s options (checked against lbforaging's registry)."""
    kwargs = dict(
        players=env.num_players,
        min_player_level=1,
        max_player_level=2,
        field_size=(env.rows, env.cols),
        min_food_level=1,
        max_food_level=None,
        max_num_food=env.num_food,
        sight=env.sight,
        max_episode_steps=50,
        force_coop=env.force_coop,
        grid_observation=False,
        penalty=env.penalty,
    )
    registered = env.task_id.replace("-pen", "")
    if not env.grid_observation:
        assert gym.spec(registered).kwargs == {**kwargs, "penalty": 0.0}
    ref = ForagingEnv(**kwargs)
    if env.grid_observation:  # lbforaging 2.0.0 cannot build its grid observation space
        ref._grid_observation = True
        w = 2 * ref.sight + 1
        box = gym.spaces.Box(low=0.0, high=100.0, shape=(3, w, w), dtype=np.float32)
        ref.observation_space = gym.spaces.Tuple([box] * ref.n_agents)
    return ref


def state_from_reference(env: LevelBasedForaging, ref: ForagingEnv) -> LBFState:
    return env.make_state(
        positions=[p.position for p in ref.players],
        levels=[p.level for p in ref.players],
        field=ref.field.copy(),  # the reference mutates its field in place
        step=ref.current_step,
        food_spawned=ref._food_spawned,
    )


def state_to_reference(ref: ForagingEnv, state: LBFState) -> None:
    positions, levels = np.asarray(state.positions), np.asarray(state.levels)
    for p, pos, lvl in zip(ref.players, positions, levels, strict=True):
        p.setup((int(pos[0]), int(pos[1])), int(lvl), ref.field_size)
        p.reward = 0
    ref.field = np.asarray(state.field, np.int32).copy()
    ref._food_spawned = float(state.food_spawned)
    ref.current_step = int(state.step)
    ref._game_over = False
    ref._gen_valid_moves()


def reference_avail(ref: ForagingEnv) -> np.ndarray:
    return np.array([[Action(a) in ref._valid_actions[p] for a in range(6)] for p in ref.players])


def sample_actions(rng: np.random.Generator, avail: np.ndarray) -> list[int]:
    actions = []
    for row in avail:
        u = rng.random()
        if row[5] and u < 0.4:
            actions.append(5)
        elif u > 0.9:  # sometimes an arbitrary (possibly invalid) action
            actions.append(int(rng.integers(6)))
        else:
            actions.append(int(rng.choice(np.flatnonzero(row))))
    return actions


def assert_same_state(state: LBFState, ref: ForagingEnv) -> None:
    np.testing.assert_array_equal(np.asarray(state.positions), [p.position for p in ref.players])
    np.testing.assert_array_equal(np.asarray(state.field), ref.field)


def run_parity(task: str, steps: int, seed: int) -> dict[str, int]:
    env, step, observe = jax_env(task)
    ref = reference_env(env)
    rng = np.random.default_rng(seed)
    key = jax.random.key(seed)
    obs, _ = ref.reset(seed=seed)
    total = episodes = rewarded = 0
    while total < steps:
        state = state_from_reference(env, ref)
        ts = observe(state)
        np.testing.assert_array_equal(np.asarray(ts.obs), np.stack(obs))
        episodes += 1
        done = False
        while not done:
            avail = reference_avail(ref)
            np.testing.assert_array_equal(np.asarray(ts.avail_actions), avail)
            actions = sample_actions(rng, avail)
            before = (
                f"positions {[p.position for p in ref.players]} levels "
                f"{[p.level for p in ref.players]} foods {np.argwhere(ref.field).tolist()} "
                f"{ref.field[ref.field > 0].tolist()} spawned {ref._food_spawned}"
            )
            obs, rewards, done, _, _ = ref.step(actions)
            key, sub = jax.random.split(key)
            state, ts = step(sub, state, jnp.asarray(actions, jnp.int32))
            total += 1
            where = f"{task} episode {episodes} step {ref.current_step} actions {actions} {before}"
            assert_same_state(state, ref)
            np.testing.assert_array_equal(np.asarray(ts.obs), np.stack(obs), err_msg=where)
            np.testing.assert_allclose(np.asarray(ts.rewards), rewards, atol=1e-6, err_msg=where)
            assert float(ts.team_reward) == pytest.approx(sum(rewards), abs=1e-6)
            assert bool(ts.done) == bool(done), where
            rewarded += int(np.any(np.asarray(rewards) != 0))
        obs, _ = ref.reset()
    return {"steps": total, "episodes": episodes, "rewarded": rewarded}


@pytest.mark.parametrize("task", PARITY_TASKS)
def test_parity_with_lbforaging(task):
    stats = run_parity(task, STEPS_PER_TASK, seed=sum(map(ord, task)))
    assert stats["steps"] >= STEPS_PER_TASK and stats["episodes"] >= 10
    assert stats["rewarded"] > 0  # loading happened


def test_grid_observation_parity():
    stats = run_parity("Foraging-grid-3s-8x8-3p-2f-v3", 300, seed=7)
    assert stats["steps"] >= 300


def test_penalty_parity():
    stats = run_parity("Foraging-8x8-3p-2f-coop-pen-v3", 300, seed=3)
    assert stats["steps"] >= 300


def test_collision_chain_matches_reference():
    """A moves onto B whose own move collided with C: both envs end with A and B stacked."""
    task = "Foraging-8x8-3p-1f-v3"
    env, step, _ = jax_env(task)
    field = np.zeros((8, 8), np.int32)
    field[6, 6] = 3
    state = env.make_state([[2, 2], [3, 2], [3, 4]], [1, 2, 1], field)
    ref = reference_env(env)
    state_to_reference(ref, state)
    actions = [2, 4, 3]  # A south onto B's cell, B east to (3,3), C west to (3,3)
    ref.step(actions)
    state, _ = step(jax.random.key(0), state, jnp.asarray(actions))
    assert_same_state(state, ref)
    assert state.positions.tolist() == [[3, 2], [3, 2], [3, 4]]


def test_loading_rewards_match_reference():
    """Two players load one level-3 food together; a third loads alone and fails."""
    task = "Foraging-8x8-3p-2f-pen-v3"
    env, step, _ = jax_env(task)
    field = np.zeros((8, 8), np.int32)
    field[2, 2] = 3
    field[5, 5] = 3
    state = env.make_state([[1, 2], [2, 3], [5, 4]], [1, 2, 2], field)
    ref = reference_env(env)
    state_to_reference(ref, state)
    _, rewards, _, _, _ = ref.step([5, 5, 5])
    state, ts = step(jax.random.key(0), state, jnp.asarray([5, 5, 5]))
    np.testing.assert_allclose(ts.rewards, rewards, atol=1e-6)
    np.testing.assert_allclose(ts.rewards, [1 * 3 / (3 * 6), 2 * 3 / (3 * 6), -0.1], atol=1e-6)
    assert_same_state(state, ref)


@pytest.mark.parametrize(
    "task", ["Foraging-8x8-2p-2f-coop-v3", "Foraging-10x10-3p-3f-v3", "Foraging-5x5-4p-4f-v3"]
)
def test_spawn_rules(task):
    env = LevelBasedForaging.from_task_id(task)
    states, ts = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.key(1), 256))
    pos = np.asarray(states.positions)
    levels = np.asarray(states.levels)
    field = np.asarray(states.field)
    rows, cols = field.shape[1:]
    assert ((levels >= 1) & (levels <= 2)).all()
    assert ((pos >= 0) & (pos < [rows, cols])).all()
    cells = pos[..., 0] * cols + pos[..., 1]
    n = env.num_players
    for b in range(len(levels)):
        assert len(set(cells[b].tolist())) == n  # no two players on one cell
        assert (field[b][pos[b, :, 0], pos[b, :, 1]] == 0).all()  # no food under a player
        foods = np.argwhere(field[b] > 0)
        top3 = np.sort(levels[b])[:3].sum()
        flv = field[b][field[b] > 0]
        if env.force_coop:
            assert (flv == top3).all()
        else:
            assert ((flv >= 1) & (flv <= top3)).all()
        assert ((foods >= 1) & (foods <= [rows - 2, cols - 2])).all()  # interior
        for i in range(len(foods)):
            for j in range(i):
                d = np.abs(foods[i] - foods[j])
                assert d.max() >= 2 and not (d.min() == 0 and d.max() == 2)
        assert float(states.food_spawned[b]) == field[b].sum()
        if rows >= 8:
            assert len(foods) == env.num_food
    assert not np.asarray(ts.done).any()
    assert (np.asarray(ts.episode_step) == 0).all()
    # the spawn distribution covers every interior cell for foods and every cell for players
    assert (field > 0).any(0)[1:-1, 1:-1].all() or rows < 8
    assert len(np.unique(cells)) == rows * cols


def test_task_ids_and_errors():
    assert parse_task_id("Foraging-2s-8x8-2p-2f-v3")["sight"] == 2
    env = LevelBasedForaging.from_task_id("Foraging-8x8-2p-2f-coop-v3")
    assert env.force_coop and env.sight == 8 and env.spec.obs_shape == (12,)
    assert env.spec.name == "Foraging-8x8-2p-2f-coop-v3" and env.spec.episode_limit == 50
    grid = LevelBasedForaging.from_task_id("Foraging-grid-3s-8x8-2p-2f-v3")
    assert grid.spec.obs_shape == (3, 7, 7)
    with pytest.raises(ConfigError, match="expected Foraging"):
        LevelBasedForaging.from_task_id("Foraging-8x8-2p-v3")
    with pytest.raises(ConfigError, match="not both"):
        LevelBasedForaging(task="Foraging-8x8-2p-2f-v3", num_players=3)
    with pytest.raises(ConfigError):
        LevelBasedForaging(grid_size=2)


def test_episode_limit_and_autoreset_scan():
    from netmarl.envs.api import AutoReset

    env = AutoReset(LevelBasedForaging.from_task_id("Foraging-5x5-2p-1f-v3"))

    def body(carry, key):
        state = carry
        k1, k2 = jax.random.split(key)
        actions = jax.random.randint(k1, (2,), 0, 5)
        state, ts = env.step(k2, state, actions)
        return state, ts.done

    @jax.jit
    def episode_ends(key):
        state, _ = env.reset(key)
        return jax.lax.scan(body, state, jax.random.split(jax.random.key(1), 120))[1]

    dones = episode_ends(jax.random.key(0))
    assert dones.sum() >= 2  # no LOAD: episodes end only at the 50-step limit
    assert np.flatnonzero(np.asarray(dones))[:2].tolist() == [49, 99]


def test_make_env_with_task():
    from netmarl import envs

    env = envs.make_env("lbf", task="Foraging-2s-8x8-2p-2f-v3")
    assert env.sight == 2 and env.spec.num_agents == 2
    env = envs.make_env("lbf", grid_size=6, num_players=3, num_food=1, force_coop=True)
    assert env.spec.name == "Foraging-6x6-3p-1f-coop-v3"
    with pytest.raises(ConfigError, match="expected Foraging"):
        envs.make_env("lbf", task="Foraging-8x8-2p-2f")


def test_vmapped_step():
    env = LevelBasedForaging.from_task_id("Foraging-8x8-3p-2f-v3")
    keys = jax.random.split(jax.random.key(2), 16)
    states, ts = jax.jit(jax.vmap(env.reset))(keys)  # jitted: eager dispatch compiles per op
    actions = jax.random.randint(jax.random.key(3), (16, 3), 0, 6)
    states, ts = jax.jit(jax.vmap(env.step))(keys, states, actions)
    assert ts.obs.shape == (16, 3, 15) and ts.global_state.shape == (16, 15)
    assert ts.avail_actions.shape == (16, 3, 6) and ts.rewards.dtype == jnp.float32
    assert (np.asarray(ts.episode_step) == 1).all()
