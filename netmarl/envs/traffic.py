"""Traffic-light grid: intersections on a road grid are agents that choose a signal phase.

Value Propagation (paper 000) evaluates on a "traffic-light game" whose rules it does not
publish (``ALGORITHMS.md``: "Traffic-light game [seed 000, unspecified]"). The dynamics below
are therefore our own design; every detail that is not given by the issue ("intersections on a
grid are agents choosing a phase; cars arrive at random, queues move; local reward = minus own
queue; the road graph is the communication graph") is marked [choice].

Road network. ``rows x cols`` intersections, agent ``i = r * cols + c`` (row-major, the node
numbering of ``make_graph("grid", rows * cols, rows=rows)``). Two-way straight roads run along
every row and every column; neighbouring intersections are joined by one road segment in each
direction. :meth:`TrafficGrid.road_graph` returns this road adjacency as a
:class:`~netmarl.network.Graph`, to be used as the communication graph.

Lanes. Every intersection has 4 incoming lanes, each an integer queue in ``0..max_queue``,
named by where their cars come *from*:

* lane 0 ``N``: cars coming from the north, travelling south (downstream: row ``r + 1``);
* lane 1 ``S``: from the south, travelling north (downstream: row ``r - 1``);
* lane 2 ``E``: from the east, travelling west (downstream: column ``c - 1``);
* lane 3 ``W``: from the west, travelling east (downstream: column ``c + 1``).

[choice] Cars drive straight through (no turns): a car leaving lane ``d`` of intersection i
joins lane ``d`` of the next intersection in its direction, or leaves the network if i is on
that edge of the grid. So every lane has exactly one upstream lane or is a *boundary* lane
(lane N of row 0, S of the last row, E of the last column, W of column 0) fed from outside.

Actions. ``Discrete(2)``: the phase agent i asks for, 0 = north-south green (lanes N and S are
served), 1 = east-west green (lanes E and W). Every action is always available.

One step, for all intersections simultaneously:

1. Phase. ``switching_i = (a_i != phase_i)``; ``phase_i <- a_i``. [choice] A switch costs one
   step of yellow / all-red: with ``yellow=True`` (default) a switching intersection serves no
   lane in this step. ``since_switch_i`` is reset to 0 on a switch and incremented otherwise.
2. Departures. Lane ``(i, d)`` is green if it is served by the (new) phase and i is not
   switching. [choice] Service is deterministic: a green lane discharges
   ``dep = min(q, service_rate, room)`` cars, where ``room`` is the free space
   ``max_queue - q`` of its downstream lane at the start of the step (spill-back: cars do not
   enter a full lane), or unlimited for a lane whose cars leave the network. Red lanes
   discharge nothing.
3. Moves. The departing cars join their downstream lane (or exit). Because of the spill-back
   rule an interior lane can never exceed ``max_queue`` (``q - dep + inflow <= q + room``).
4. Arrivals. [choice] Each boundary lane receives one new car with probability
   ``arrival_rate`` (independent Bernoulli per lane and step); interior lanes get no outside
   arrivals. An arrival to a full lane (``max_queue`` after steps 2-3) is dropped and counted.

Cars are conserved exactly: ``total after = total before + arrivals - exits - dropped``
(:meth:`TrafficGrid.step_with_flows` reports the four per-lane flow arrays of a step).

Rewards, computed on the queues after the step: the local reward of intersection i is minus
its own queue, ``r_i = -reward_scale * sum_d q[i, d]`` (``reward_scale`` 1 by default, so the
reward is literally minus the number of waiting cars); ``team_reward`` = the mean of the ``r_i``.

Observation of agent i [choice: strictly local]: its 4 queues divided by ``max_queue``, a
one-hot of its current phase (2) and ``min(since_switch_i, 10) / 10``; 7 values.
Global state [choice]: all queues divided by ``max_queue`` (``4N``) then all phases one-hot
(``2N``), ``6N`` values.

Reset [choice]: phases uniform in {0, 1}, ``since_switch = 0``, each queue uniform in
``0..init_queue``. Episodes never terminate; they are truncated after ``episode_limit`` steps
(``terminated`` stays False).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from netmarl.envs.api import Discrete, EnvSpec, TimeStep, make_timestep
from netmarl.errors import ConfigError
from netmarl.network.graphs import Graph, make_graph

Array = jax.Array

NORTH, SOUTH, EAST, WEST = 0, 1, 2, 3  # incoming lanes, named by where their cars come from
NS_GREEN, EW_GREEN = 0, 1  # phases (= actions)
NUM_LANES = 4
SINCE_SWITCH_CAP = 10  # since_switch is observed as min(since, 10) / 10

# lane -> phase that serves it
_LANE_PHASE = np.array([NS_GREEN, NS_GREEN, EW_GREEN, EW_GREEN], np.int32)
# lane -> (d_row, d_col) of the downstream intersection
_LANE_MOVE = ((1, 0), (-1, 0), (0, -1), (0, 1))


class TrafficState(NamedTuple):
    queues: Array  # [N, 4] int32, cars waiting on each incoming lane
    phase: Array  # [N] int32, 0 = north-south green, 1 = east-west green
    since_switch: Array  # [N] int32, steps since the last phase switch
    t: Array  # [] int32


class TrafficFlows(NamedTuple):
    """Per-lane car counts of one step (all [N, 4] int32)."""

    departures: Array  # cars that left lane (i, d) (to the downstream lane or out)
    exits: Array  # of those, cars that left the network
    arrivals: Array  # new cars offered to boundary lane (i, d) from outside
    dropped: Array  # of those, cars rejected because the lane was full


def _positive_int(name: str, value: object, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


class TrafficGrid:
    """A ``rows x cols`` grid of traffic lights; agent i controls intersection i (row-major)."""

    def __init__(
        self,
        rows: int = 3,
        cols: int = 3,
        arrival_rate: float = 0.3,
        service_rate: int = 1,
        max_queue: int = 20,
        init_queue: int = 2,
        yellow: bool = True,
        reward_scale: float = 1.0,
        episode_limit: int = 100,
    ):
        self.rows = _positive_int("rows", rows)
        self.cols = _positive_int("cols", cols)
        n = self.rows * self.cols
        if n < 2:
            raise ConfigError(f"a traffic grid needs at least 2 intersections, got {rows}x{cols}")
        try:
            arrival_rate = float(arrival_rate)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"arrival_rate must be a number, got {arrival_rate!r}") from exc
        if not 0.0 <= arrival_rate <= 1.0:
            raise ConfigError(
                f"arrival_rate is a per-lane, per-step probability in [0, 1], got {arrival_rate}"
            )
        self.arrival_rate = arrival_rate
        self.service_rate = _positive_int("service_rate", service_rate)
        self.max_queue = _positive_int("max_queue", max_queue)
        self.init_queue = _positive_int("init_queue", init_queue, low=0)
        if self.init_queue > self.max_queue:
            raise ConfigError(
                f"init_queue ({self.init_queue}) cannot exceed max_queue ({self.max_queue})"
            )
        self.yellow = bool(yellow)
        self.reward_scale = float(reward_scale)
        self.episode_limit = _positive_int("episode_limit", episode_limit)
        self.num_agents = n
        self.num_actions = 2

        # Static routing tables (host numpy): downstream[i, d] / upstream[i, d] is the
        # intersection a car on lane d of i goes to / comes from, -1 = outside the network.
        downstream = np.full((n, NUM_LANES), -1, np.int32)
        upstream = np.full((n, NUM_LANES), -1, np.int32)
        for r in range(self.rows):
            for c in range(self.cols):
                for d, (dr, dc) in enumerate(_LANE_MOVE):
                    r2, c2 = r + dr, c + dc
                    if 0 <= r2 < self.rows and 0 <= c2 < self.cols:
                        downstream[r * self.cols + c, d] = r2 * self.cols + c2
                    r0, c0 = r - dr, c - dc
                    if 0 <= r0 < self.rows and 0 <= c0 < self.cols:
                        upstream[r * self.cols + c, d] = r0 * self.cols + c0
        self.downstream = downstream
        self.upstream = upstream
        self.boundary = upstream < 0  # [N, 4] lanes fed from outside

        self.spec = EnvSpec(
            name="traffic_grid",
            num_agents=n,
            obs_shape=(NUM_LANES + 2 + 1,),
            state_shape=(n * (NUM_LANES + 2),),
            action_space=Discrete(2),
            episode_limit=self.episode_limit,
        )

    def road_graph(self) -> Graph:
        """The road adjacency (grid lattice, row-major numbering): the communication graph."""
        return make_graph("grid", self.num_agents, rows=self.rows)

    def _timestep(self, state: TrafficState, rewards: Array) -> TimeStep:
        q = state.queues.astype(jnp.float32) / self.max_queue
        phase = jax.nn.one_hot(state.phase, 2, dtype=jnp.float32)
        since = jnp.minimum(state.since_switch, SINCE_SWITCH_CAP).astype(jnp.float32)
        since = since[:, None] / SINCE_SWITCH_CAP
        obs = jnp.concatenate([q, phase, since], axis=1)
        return make_timestep(
            obs=obs,
            global_state=jnp.concatenate([q.reshape(-1), phase.reshape(-1)]),
            rewards=rewards,
            team_reward=jnp.mean(rewards),
            terminated=jnp.asarray(False),
            episode_step=state.t,
            episode_limit=self.episode_limit,
            avail_actions=jnp.ones((self.num_agents, 2), bool),
        )

    def reset(self, key: Array) -> tuple[TrafficState, TimeStep]:
        kq, kp = jax.random.split(key)
        n = self.num_agents
        state = TrafficState(
            queues=jax.random.randint(kq, (n, NUM_LANES), 0, self.init_queue + 1, jnp.int32),
            phase=jax.random.randint(kp, (n,), 0, 2, jnp.int32),
            since_switch=jnp.zeros((n,), jnp.int32),
            t=jnp.zeros((), jnp.int32),
        )
        return state, self._timestep(state, jnp.zeros((n,), jnp.float32))

    def step_with_flows(
        self, key: Array, state: TrafficState, actions: Array
    ) -> tuple[TrafficState, TimeStep, TrafficFlows]:
        """:meth:`step`, also returning the per-lane car flows of this step."""
        n = self.num_agents
        actions = jnp.asarray(actions, jnp.int32).reshape(n)
        q = state.queues

        # 1. phase (a switch costs one all-red step when yellow=True)
        switching = actions != state.phase
        phase = actions
        since = jnp.where(switching, 0, state.since_switch + 1)
        green = jnp.asarray(_LANE_PHASE)[None, :] == phase[:, None]  # [N, 4]
        if self.yellow:
            green = green & ~switching[:, None]

        # 2. departures, limited by the downstream lane's free space (spill-back)
        down = jnp.asarray(self.downstream)
        lane = jnp.arange(NUM_LANES)[None, :]
        exits_lane = down < 0
        room = jnp.where(exits_lane, self.service_rate, self.max_queue - q[down, lane])
        dep = jnp.where(green, jnp.minimum(jnp.minimum(q, self.service_rate), room), 0)
        exits = jnp.where(exits_lane, dep, 0)

        # 3. moves: lane (j, d) receives the departures of lane (upstream[j, d], d)
        up = jnp.asarray(self.upstream)
        inflow = jnp.where(up >= 0, dep[up, lane], 0)
        q = q - dep + inflow

        # 4. Bernoulli arrivals on boundary lanes; arrivals to a full lane are dropped
        offered = jax.random.bernoulli(key, self.arrival_rate, (n, NUM_LANES))
        arrivals = (offered & jnp.asarray(self.boundary)).astype(jnp.int32)
        admitted = jnp.minimum(arrivals, self.max_queue - q)
        dropped = arrivals - admitted
        q = q + admitted

        new_state = TrafficState(queues=q, phase=phase, since_switch=since, t=state.t + 1)
        rewards = -self.reward_scale * q.sum(axis=1).astype(jnp.float32)
        flows = TrafficFlows(departures=dep, exits=exits, arrivals=arrivals, dropped=dropped)
        return new_state, self._timestep(new_state, rewards), flows

    def step(
        self, key: Array, state: TrafficState, actions: Array
    ) -> tuple[TrafficState, TimeStep]:
        new_state, ts, _ = self.step_with_flows(key, state, actions)
        return new_state, ts


def longest_queue_first(state: TrafficState) -> Array:
    """A fixed heuristic: each light serves the axis with more waiting cars (ties: keep).

    Uses only the intersection's own queues, so it is a decentralized policy. Returns [N] int32.
    """
    ns = state.queues[:, NORTH] + state.queues[:, SOUTH]
    ew = state.queues[:, EAST] + state.queues[:, WEST]
    keep = state.phase.astype(jnp.int32)
    return jnp.where(ns > ew, NS_GREEN, jnp.where(ew > ns, EW_GREEN, keep)).astype(jnp.int32)
