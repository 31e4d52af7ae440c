"""Level-Based Foraging (LBF) in pure JAX, rule-for-rule identical to ``lbforaging`` 2.0.0.

The DVDN paper (paper 001) evaluates on "three level-based foraging tasks, where homogeneous
agents must coordinate to collect fruits in a sparse reward environment"; the tasks are those
of the ``lbforaging`` package (Papoudakis et al., EPyMARL), whose ``ForagingEnv`` this module
re-implements. Task ids follow ``lbforaging/__init__.py``::

    Foraging[-grid][-{sight}s]-{size}x{size}-{players}p-{foods}f[-coop][-ind][-pen]-v3

(``-2s`` = sight 2, default sight = the grid size, i.e. full observation; ``-coop`` =
``force_coop``; ``-ind`` = every food has level 1; ``-pen`` = penalty 0.1; ``-grid`` = the
grid observation). Episodes last at most 50 steps.

Rules (``lbforaging/foraging/environment.py``):

* **Reset.** Players are placed one after the other, each uniformly on a cell that holds no
  player yet (any cell, borders included); levels are uniform in ``[min_player_level,
  max_player_level]`` (per-player bounds are permuted first). Then foods are placed one after
  the other, uniformly on an *interior* cell (rows/cols ``1..size-2``) that holds no player and
  has no food within Chebyshev distance 1 nor at distance exactly 2 in a straight line
  (``(r±2, c)``, ``(r, c±2)``); a food that finds no such cell is not placed. Food levels are
  uniform in ``[min_food_level, max_food_level]`` where ``max_food_level=None`` means the sum of
  the (up to) three lowest player levels; with ``force_coop`` every food gets exactly its max
  level. ``food_spawned`` = the sum of the spawned food levels.
* **Actions** 0 NONE, 1 NORTH (row - 1), 2 SOUTH, 3 WEST (col - 1), 4 EAST, 5 LOAD. A move is
  valid if it stays on the grid and the target holds no food (players do not block validity);
  LOAD is valid next to (4-neighbourhood) a food. An invalid action is replaced by NONE.
* **Movement.** Every player has a target cell (its own cell for NONE/LOAD); a player moves iff
  no other player has the same target. So two players moving into one cell both stay, a player
  moving into the cell of a staying player stays, swaps succeed, and (as in the reference) a
  player may end on the cell of a player whose own move failed.
* **Loading** (after movement). A loading player picks its adjacent food, checking north
  (only if ``row > 1``), south, west (only if ``col > 1``), east, in that order (the reference's
  bounds). All loading players 4-adjacent to that food load together: if the sum of their
  levels is >= the food level, the food is removed and each gets ``level * food_level /
  (sum_of_levels * food_spawned)`` (so one episode's rewards sum to at most 1 over all
  players; without ``normalize_reward`` the numerator only); otherwise each gets
  ``-penalty``. (Foods are never adjacent, so no player is next to two foods and the order
  in which the reference pops loading players from a set does not matter.)
* **End.** The episode terminates when no food is left; it is truncated after
  ``episode_limit`` (50) steps (the reference flags both as ``done``).
* **Observation** of player p with sight s (vector form): for each food slot ``(row, col,
  level)`` of the foods inside the window rows ``[r-s, r+s]`` x cols ``[c-s, c+s]`` (clipped
  to the grid), row-major, then for each player slot ``(row, col, level)`` for the players
  seen, self first then the others in index order; unused slots are ``(-1, -1, 0)``.
  Coordinates are relative to the window's clipped top-left corner ``(max(r-s, 0),
  max(c-s, 0))``, and (a quirk of the reference kept here) a player is seen iff its relative
  coordinates lie in ``[0, 2s]``, so near the top/left border players up to ``2s`` cells
  below/right are visible. With ``observe_agent_levels=False`` player slots are ``(row,
  col)``. The grid form (``grid_observation=True``) is ``[3, 2s+1, 2s+1]`` centred on the
  player: agent levels, food levels, and accessibility (0 off-grid or on a player/food).

[choice] ``rewards`` are the reference's per-player rewards; ``team_reward`` is their sum.
[choice] ``global_state`` is the fully observed vector: the foods of the whole grid (row-major,
``(row, col, level)`` with ``(-1, -1, 0)`` fill) then every player's ``(row, col, level)`` in
index order, ``[3 * (num_food + num_players)]``.
[choice] Reset randomness is rejection-free JAX (uniform choice among the admissible cells), so
it has the reference's distribution but not its numpy random stream; the reference's rare
1000-attempt give-up and its check against players' stale positions of the previous episode
are not reproduced. :meth:`LevelBasedForaging.make_state` builds a state from explicit arrays
(e.g. copied from a reference env).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from netmarl.envs.api import Discrete, EnvSpec, TimeStep, make_timestep
from netmarl.errors import ConfigError

Array = jax.Array

NONE, NORTH, SOUTH, WEST, EAST, LOAD = range(6)
NUM_ACTIONS = 6
_DELTAS = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1], [0, 0]], np.int32)

TASK_PATTERN = re.compile(
    r"^Foraging(?P<grid>-grid)?(?:-(?P<sight>\d+)s)?-(?P<rows>\d+)x(?P<cols>\d+)"
    r"-(?P<players>\d+)p-(?P<foods>\d+)f(?P<coop>-coop)?(?P<ind>-ind)?(?P<pen>-pen)?-v3$"
)
TASK_FORMAT = "Foraging[-grid][-{sight}s]-{size}x{size}-{players}p-{foods}f[-coop][-ind][-pen]-v3"


class LBFState(NamedTuple):
    positions: Array  # [N, 2] int32 (row, col)
    levels: Array  # [N] int32
    field: Array  # [rows, cols] int32 food level per cell (0 = no food)
    food_spawned: Array  # [] float32, sum of the food levels spawned at reset
    step: Array  # [] int32


def parse_task_id(task: str) -> dict[str, Any]:
    """The constructor options of an lbforaging task id; ConfigError if it does not parse."""
    m = TASK_PATTERN.match(task) if isinstance(task, str) else None
    if m is None:
        raise ConfigError(
            f"cannot parse LBF task id {task!r}; expected {TASK_FORMAT}, e.g. "
            "'Foraging-8x8-2p-2f-coop-v3' or 'Foraging-2s-8x8-2p-2f-v3'"
        )
    rows, cols = int(m["rows"]), int(m["cols"])
    opts: dict[str, Any] = {
        "grid_size": rows if rows == cols else (rows, cols),
        "num_players": int(m["players"]),
        "num_food": int(m["foods"]),
        "sight": int(m["sight"]) if m["sight"] else max(rows, cols),
        "force_coop": m["coop"] is not None,
        "grid_observation": m["grid"] is not None,
        "penalty": 0.1 if m["pen"] else 0.0,
    }
    if m["ind"]:
        opts["max_food_level"] = 1
    return opts


def _int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _levels(name: str, value: Any, n: int) -> np.ndarray:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = [value] * n
    try:
        arr = np.asarray([int(v) for v in value], np.int32)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be an int or {n} ints, got {value!r}") from exc
    if arr.shape != (n,) or (arr < 1).any():
        raise ConfigError(f"{name} must be an int >= 1 or {n} ints >= 1, got {value!r}")
    return arr


class LevelBasedForaging:
    """Level-Based Foraging (lbforaging 2.0.0 rules); see the module docstring."""

    def __init__(
        self,
        task: str | None = None,
        grid_size: int | Sequence[int] | None = None,
        num_players: int | None = None,
        num_food: int | None = None,
        sight: int | None = None,
        force_coop: bool | None = None,
        min_player_level: int | Sequence[int] = 1,
        max_player_level: int | Sequence[int] = 2,
        min_food_level: int | Sequence[int] = 1,
        max_food_level: int | Sequence[int] | None = None,
        episode_limit: int = 50,
        penalty: float | None = None,
        normalize_reward: bool = True,
        grid_observation: bool | None = None,
        observe_agent_levels: bool = True,
    ):
        given = {
            "grid_size": grid_size,
            "num_players": num_players,
            "num_food": num_food,
            "sight": sight,
            "force_coop": force_coop,
            "penalty": penalty,
            "grid_observation": grid_observation,
        }
        if task is not None:
            clash = [k for k, v in given.items() if v is not None]
            if clash:
                raise ConfigError(
                    f"give either task={task!r} or {', '.join(clash)}, not both "
                    "(the task id sets them)"
                )
            opts = parse_task_id(task)
            if "max_food_level" in opts:
                if max_food_level is not None:
                    raise ConfigError("task '-ind' sets max_food_level=1; do not give it too")
                max_food_level = opts.pop("max_food_level")
            given = opts
        grid_size = 8 if given["grid_size"] is None else given["grid_size"]
        if isinstance(grid_size, (int, np.integer)) and not isinstance(grid_size, bool):
            grid_size = (grid_size, grid_size)
        if not isinstance(grid_size, Sequence) or len(grid_size) != 2:
            raise ConfigError(f"grid_size must be an int or (rows, cols), got {grid_size!r}")
        self.rows = _int("grid_size", grid_size[0], 3)
        self.cols = _int("grid_size", grid_size[1], 3)
        n = _int("num_players", 2 if given["num_players"] is None else given["num_players"], 1)
        if n > self.rows * self.cols:
            raise ConfigError(f"num_players={n} does not fit on a {self.rows}x{self.cols} grid")
        self.num_players = n
        self.num_food = _int("num_food", 2 if given["num_food"] is None else given["num_food"], 1)
        sight = max(self.rows, self.cols) if given["sight"] is None else given["sight"]
        self.sight = _int("sight", sight, 1)
        self.force_coop = bool(given["force_coop"])
        self.penalty = float(given["penalty"] or 0.0)
        self.grid_observation = bool(given["grid_observation"])
        self.normalize_reward = bool(normalize_reward)
        self.observe_agent_levels = bool(observe_agent_levels)
        self.episode_limit = _int("episode_limit", episode_limit, 1)
        self.min_player_level = _levels("min_player_level", min_player_level, n)
        self.max_player_level = _levels("max_player_level", max_player_level, n)
        if (self.min_player_level > self.max_player_level).any():
            raise ConfigError("min_player_level must be <= max_player_level for every player")
        self.min_food_level = _levels("min_food_level", min_food_level, self.num_food)
        self.max_food_level = (
            None
            if max_food_level is None
            else _levels("max_food_level", max_food_level, self.num_food)
        )
        if self.max_food_level is not None and (self.min_food_level > self.max_food_level).any():
            raise ConfigError("min_food_level must be <= max_food_level for every food")

        self.task_id = (
            f"Foraging{'-grid' if self.grid_observation else ''}"
            f"{'' if self.sight >= max(self.rows, self.cols) else f'-{self.sight}s'}"
            f"-{self.rows}x{self.cols}-{n}p-{self.num_food}f{'-coop' if self.force_coop else ''}"
            f"{'-pen' if self.penalty else ''}-v3"
        )
        self.player_slot = 3 if self.observe_agent_levels else 2
        if self.grid_observation:
            w = 2 * self.sight + 1
            obs_shape: tuple[int, ...] = (3, w, w)
        else:
            obs_shape = (3 * self.num_food + self.player_slot * n,)
        self.spec = EnvSpec(
            name=self.task_id,
            num_agents=n,
            obs_shape=obs_shape,
            state_shape=(3 * (self.num_food + n),),
            action_space=Discrete(NUM_ACTIONS),
            episode_limit=self.episode_limit,
        )
        # observer p lists itself first, then the others in index order
        self._order = np.array([[p] + [a for a in range(n) if a != p] for p in range(n)], np.int32)

    @classmethod
    def from_task_id(cls, task: str, **kwargs: Any) -> LevelBasedForaging:
        """The environment of an lbforaging task id, e.g. ``"Foraging-8x8-2p-2f-coop-v3"``."""
        return cls(task=task, **kwargs)

    # ------------------------------------------------------------------ state

    def make_state(
        self,
        positions: Any,
        levels: Any,
        field: Any,
        step: int | Array = 0,
        food_spawned: float | Array | None = None,
    ) -> LBFState:
        """A state from explicit arrays; ``food_spawned`` defaults to ``field.sum()``.

        The arrays are copied (``jnp.asarray`` may alias a numpy buffer that its owner, e.g. a
        reference env, later mutates in place).
        """
        field = jnp.array(field, jnp.int32)
        if field.shape != (self.rows, self.cols):
            raise ConfigError(f"field must have shape {(self.rows, self.cols)}, got {field.shape}")
        positions = jnp.array(positions, jnp.int32).reshape(self.num_players, 2)
        if food_spawned is None:
            food_spawned = field.sum()
        return LBFState(
            positions=positions,
            levels=jnp.array(levels, jnp.int32).reshape(self.num_players),
            field=field,
            food_spawned=jnp.array(food_spawned, jnp.float32),
            step=jnp.asarray(step, jnp.int32),
        )

    def reset(self, key: Array) -> tuple[LBFState, TimeStep]:
        rows, cols, n, nf = self.rows, self.cols, self.num_players, self.num_food
        k_pperm, k_pos, k_lvl, k_fperm, k_food, k_flvl = jax.random.split(key, 6)
        perm = jax.random.permutation(k_pperm, n)
        lo = jnp.asarray(self.min_player_level)[perm]
        hi = jnp.asarray(self.max_player_level)[perm]
        levels = jax.random.randint(k_lvl, (n,), lo, hi + 1, dtype=jnp.int32)

        occupied = jnp.zeros(rows * cols, bool)
        cells = []
        for i in range(n):
            logits = jnp.where(occupied, -jnp.inf, 0.0)
            cell = jax.random.categorical(jax.random.fold_in(k_pos, i), logits)
            occupied = occupied.at[cell].set(True)
            cells.append(cell)
        cells_arr = jnp.stack(cells)
        positions = jnp.stack([cells_arr // cols, cells_arr % cols], axis=1).astype(jnp.int32)

        if self.max_food_level is None:
            top3 = jnp.sort(levels)[:3].sum()
            fmax = jnp.full((nf,), top3, jnp.int32)
        else:
            fmax = jnp.asarray(self.max_food_level)
        fmin = fmax if self.force_coop else jnp.asarray(self.min_food_level)
        fperm = jax.random.permutation(k_fperm, nf)
        fmin, fmax = fmin[fperm], fmax[fperm]
        flevels = jax.random.randint(k_flvl, (nf,), fmin, fmax + 1, dtype=jnp.int32)

        r = jnp.arange(rows)[:, None]
        c = jnp.arange(cols)[None, :]
        interior = (r >= 1) & (r <= rows - 2) & (c >= 1) & (c <= cols - 2)
        free = interior & ~occupied.reshape(rows, cols)
        offsets = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)]
        offsets += [(-2, 0), (2, 0), (0, -2), (0, 2)]
        field = jnp.zeros((rows, cols), jnp.int32)
        for k in range(nf):
            food = jnp.pad(field > 0, 2)
            blocked = jnp.zeros((rows, cols), bool)
            for dr, dc in offsets:
                blocked = blocked | food[2 + dr : 2 + dr + rows, 2 + dc : 2 + dc + cols]
            ok = (free & ~blocked).reshape(-1)
            logits = jnp.where(ok, 0.0, -jnp.inf)
            cell = jax.random.categorical(jax.random.fold_in(k_food, k), logits)
            placed = ok.any()
            flat = field.reshape(-1)
            flat = flat.at[cell].set(jnp.where(placed, flevels[k], flat[cell]))
            field = flat.reshape(rows, cols)

        state = self.make_state(positions, levels, field)
        return state, self.observe(state)

    # ------------------------------------------------------------------ rules

    def avail_actions(self, state: LBFState) -> Array:
        """[N, 6] bool: the reference's valid actions (``_is_valid_action``)."""
        f = state.field
        rmax, cmax = self.rows - 1, self.cols - 1
        r, c = state.positions[:, 0], state.positions[:, 1]
        up, down = jnp.maximum(r - 1, 0), jnp.minimum(r + 1, rmax)
        left, right = jnp.maximum(c - 1, 0), jnp.minimum(c + 1, cmax)
        north = (r > 0) & (f[up, c] == 0)
        south = (r < rmax) & (f[down, c] == 0)
        west = (c > 0) & (f[r, left] == 0)
        east = (c < cmax) & (f[r, right] == 0)
        load = (f[up, c] + f[down, c] + f[r, left] + f[r, right]) > 0
        return jnp.stack([jnp.ones_like(north), north, south, west, east, load], axis=1)

    def step(self, key: Array, state: LBFState, actions: Array) -> tuple[LBFState, TimeStep]:
        del key
        n, rows, cols = self.num_players, self.rows, self.cols
        actions = jnp.asarray(actions, jnp.int32).reshape(n)
        avail = self.avail_actions(state)
        in_range = (actions >= 0) & (actions < NUM_ACTIONS)
        safe = jnp.clip(actions, 0, NUM_ACTIONS - 1)
        valid = in_range & avail[jnp.arange(n), safe]
        act = jnp.where(valid, safe, NONE)

        # movement: a player moves iff no other player has the same target cell
        target = state.positions + jnp.asarray(_DELTAS)[act]
        same = jnp.all(target[:, None, :] == target[None, :, :], axis=-1)
        pos = jnp.where((same.sum(1) == 1)[:, None], target, state.positions)

        # loading
        f = state.field
        r, c = pos[:, 0], pos[:, 1]
        up, down = jnp.maximum(r - 1, 0), jnp.minimum(r + 1, rows - 1)
        left, right = jnp.maximum(c - 1, 0), jnp.minimum(c + 1, cols - 1)
        north = (r > 1) & (f[up, c] > 0)
        south = (r < rows - 1) & (f[down, c] > 0)
        west = (c > 1) & (f[r, left] > 0)
        east = (c < cols - 1) & (f[r, right] > 0)
        fr = jnp.where(north, up, jnp.where(south, down, r))
        fc = jnp.where(north | south, c, jnp.where(west, left, jnp.where(east, right, c)))
        loading = (act == LOAD) & (north | south | west | east)
        food = f[fr, fc]
        # group of player i: loading players 4-adjacent to i's food
        dist = jnp.abs(pos[None, :, 0] - fr[:, None]) + jnp.abs(pos[None, :, 1] - fc[:, None])
        group = (dist == 1) & loading[None, :]
        group_level = (group * state.levels[None, :]).sum(1)
        success = loading & (group_level >= food)
        lvl = state.levels.astype(jnp.float32)
        gain = lvl * food.astype(jnp.float32)
        if self.normalize_reward:
            denom = group_level.astype(jnp.float32) * state.food_spawned
            gain = gain / jnp.where(success, denom, 1.0)
        rewards = jnp.where(success, gain, jnp.where(loading, -self.penalty, 0.0))
        rewards = rewards.astype(jnp.float32)
        gr = jnp.arange(rows)[None, :, None]
        gc = jnp.arange(cols)[None, None, :]
        removed = success[:, None, None] & (gr == fr[:, None, None]) & (gc == fc[:, None, None])
        field = jnp.where(removed.any(0), 0, f)

        new_state = state._replace(positions=pos, field=field, step=state.step + 1)
        return new_state, self.observe(new_state, rewards)

    # ------------------------------------------------------------------ observations

    def _food_list(self, visible: Array, field: Array, top: Array, left: Array) -> Array:
        """[num_food, 3]: the visible foods, row-major, relative to (top, left); -1 fill."""
        flat_vis = (visible & (field > 0)).reshape(-1)
        rank = jnp.cumsum(flat_vis) - 1
        cell_r = jnp.arange(self.rows * self.cols) // self.cols
        cell_c = jnp.arange(self.rows * self.cols) % self.cols
        hit = flat_vis[None, :] & (rank[None, :] == jnp.arange(self.num_food)[:, None])
        present = hit.any(1)
        idx = jnp.argmax(hit, axis=1)
        vals = jnp.stack([cell_r[idx] - top, cell_c[idx] - left, field.reshape(-1)[idx]], axis=1)
        fill = jnp.asarray([-1, -1, 0], jnp.int32)
        return jnp.where(present[:, None], vals, fill[None, :])

    def _vector_obs(self, state: LBFState, p: Array) -> Array:
        s = self.sight
        pr, pc = state.positions[p, 0], state.positions[p, 1]
        top, left = jnp.maximum(pr - s, 0), jnp.maximum(pc - s, 0)
        r = jnp.arange(self.rows)[:, None]
        c = jnp.arange(self.cols)[None, :]
        window = (jnp.abs(r - pr) <= s) & (jnp.abs(c - pc) <= s)
        foods = self._food_list(window, state.field, top, left)

        order = jnp.asarray(self._order)[p]
        rel = state.positions[order] - jnp.stack([top, left])[None, :]
        seen = jnp.all((rel >= 0) & (rel <= 2 * s), axis=1)
        rank = jnp.cumsum(seen) - 1
        hit = seen[None, :] & (rank[None, :] == jnp.arange(self.num_players)[:, None])
        present = hit.any(1)
        idx = jnp.argmax(hit, axis=1)
        if self.observe_agent_levels:
            vals = jnp.concatenate([rel[idx], state.levels[order][idx][:, None]], axis=1)
            fill = jnp.asarray([-1, -1, 0], jnp.int32)
        else:
            vals = rel[idx]
            fill = jnp.asarray([-1, -1], jnp.int32)
        players = jnp.where(present[:, None], vals, fill[None, :])
        return jnp.concatenate([foods.reshape(-1), players.reshape(-1)]).astype(jnp.float32)

    def _grid_obs(self, state: LBFState) -> Array:
        s, rows, cols = self.sight, self.rows, self.cols
        shape = (rows + 2 * s, cols + 2 * s)
        agents = jnp.zeros(shape, jnp.float32)
        access = jnp.zeros(shape, jnp.float32).at[s : s + rows, s : s + cols].set(1.0)
        for i in range(self.num_players):  # in index order: the last player on a cell wins
            pr, pc = state.positions[i, 0] + s, state.positions[i, 1] + s
            value = state.levels[i].astype(jnp.float32) if self.observe_agent_levels else 1.0
            agents = agents.at[pr, pc].set(value)
            access = access.at[pr, pc].set(0.0)
        foods = jnp.zeros(shape, jnp.float32).at[s : s + rows, s : s + cols].set(state.field)
        access = jnp.where(foods > 0, 0.0, access)
        layers = jnp.stack([agents, foods, access])
        w = 2 * s + 1

        def window(pos: Array) -> Array:
            return jax.lax.dynamic_slice(layers, (0, pos[0], pos[1]), (3, w, w))

        return jax.vmap(window)(state.positions)

    def global_state(self, state: LBFState) -> Array:
        everything = jnp.ones((self.rows, self.cols), bool)
        zero = jnp.zeros((), jnp.int32)
        foods = self._food_list(everything, state.field, zero, zero)
        players = jnp.concatenate([state.positions, state.levels[:, None]], axis=1)
        return jnp.concatenate([foods.reshape(-1), players.reshape(-1)]).astype(jnp.float32)

    def observe(self, state: LBFState, rewards: Array | None = None) -> TimeStep:
        """The TimeStep of ``state`` (zero rewards unless given)."""
        if rewards is None:
            rewards = jnp.zeros((self.num_players,), jnp.float32)
        if self.grid_observation:
            obs = self._grid_obs(state)
        else:
            obs = jax.vmap(lambda p: self._vector_obs(state, p))(jnp.arange(self.num_players))
        return make_timestep(
            obs=obs,
            global_state=self.global_state(state),
            rewards=rewards,
            team_reward=rewards.sum(),
            terminated=state.field.sum() == 0,
            episode_step=state.step,
            episode_limit=self.episode_limit,
            avail_actions=self.avail_actions(state),
        )
