"""Hallway: agents in separate corridors must reach the goal simultaneously.

DOP (paper 002), Appendix F, Fig. 7(a): "two agents randomly start at states a1 to am and b1 to
bn, respectively. Agents can observe their position and choose to move left, move right, or
keep still at each timestep. Agents win and are rewarded 10 if they arrive at state g
simultaneously. Otherwise, if any agent arrives at g earlier than the other, the team gets no
reward, and the next episode begins. The horizon is set to max(m,n) + 10". The paper's
experiment uses m = n = 4. The rules follow the reference code of NDQ ("join1", the
environment DOP cites for communication):

* agent i lives on positions ``0..L_i``; 0 is the goal g (left of a1), its start position is
  uniform on ``1..L_i``;
* actions: 0 = stay, 1 = left (towards g, position - 1), 2 = right (position + 1, clipped at
  ``L_i``);
* if every agent is at g after a step: reward ``reward_win`` (10) and the episode terminates;
  if some but not all are: reward 0 and the episode terminates ("early arrival");
* horizon ``max(L) + 10`` steps.

Generalised to N agents with corridor lengths ``lengths`` (an int for all, or one per agent).

[choice] Observation: agent i sees only its own position, one-hot over ``max(L) + 1`` cells
(NDQ passes the raw integer position; the paper only says "observe their position").
``global_state`` is the concatenation of all agents' one-hot positions, ``[N * (max(L) + 1)]``.
[choice] Reaching the horizon is a truncation (``terminated = False``): NDQ flags it as a
terminal, but the observation does not contain the time. [choice] Every agent's local reward
equals the team reward.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from netmarl.envs.api import Discrete, EnvSpec, TimeStep, make_timestep
from netmarl.errors import ConfigError

Array = jax.Array

STAY, LEFT, RIGHT = 0, 1, 2


class HallwayState(NamedTuple):
    pos: Array  # [N] int32, 0 = goal
    t: Array  # [] int32


class Hallway:
    """N agents, each in its own corridor; +10 only if all reach the goal at the same step."""

    def __init__(
        self,
        num_agents: int = 2,
        lengths: int | Sequence[int] = 4,
        reward_win: float = 10.0,
        episode_limit: int | None = None,
    ):
        if isinstance(num_agents, bool) or not isinstance(num_agents, int) or num_agents < 1:
            raise ConfigError(f"num_agents must be an integer >= 1, got {num_agents!r}")
        if isinstance(lengths, int) and not isinstance(lengths, bool):
            lengths = (lengths,) * num_agents
        try:
            lengths = tuple(int(x) for x in lengths)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"lengths must be an int or a sequence of ints, got {lengths!r}"
            ) from exc
        if len(lengths) != num_agents or min(lengths) < 1:
            raise ConfigError(
                f"lengths must give {num_agents} corridor lengths >= 1, got {lengths}"
            )
        if episode_limit is None:
            episode_limit = max(lengths) + 10
        if isinstance(episode_limit, bool) or not isinstance(episode_limit, int):
            raise ConfigError(f"episode_limit must be an integer >= 1, got {episode_limit!r}")
        if episode_limit < 1:
            raise ConfigError(f"episode_limit must be an integer >= 1, got {episode_limit!r}")
        self.num_agents = num_agents
        self.num_actions = 3
        self.lengths = lengths
        self.num_cells = max(lengths) + 1
        self.reward_win = float(reward_win)
        self.episode_limit = episode_limit
        self.spec = EnvSpec(
            name="hallway",
            num_agents=num_agents,
            obs_shape=(self.num_cells,),
            state_shape=(num_agents * self.num_cells,),
            action_space=Discrete(3),
            episode_limit=episode_limit,
        )

    def _timestep(self, state: HallwayState, reward: Array, terminated: Array) -> TimeStep:
        obs = jax.nn.one_hot(state.pos, self.num_cells, dtype=jnp.float32)  # [N, cells]
        return make_timestep(
            obs=obs,
            global_state=obs.reshape(-1),
            rewards=jnp.full((self.num_agents,), reward, jnp.float32),
            team_reward=reward,
            terminated=terminated,
            episode_step=state.t,
            episode_limit=self.episode_limit,
            avail_actions=jnp.ones((self.num_agents, 3), bool),
        )

    def reset(self, key: Array) -> tuple[HallwayState, TimeStep]:
        high = jnp.asarray(self.lengths, jnp.int32) + 1
        pos = jax.random.randint(key, (self.num_agents,), 1, high, dtype=jnp.int32)
        state = HallwayState(pos=pos, t=jnp.zeros((), jnp.int32))
        return state, self._timestep(state, jnp.zeros((), jnp.float32), jnp.asarray(False))

    def step(
        self, key: Array, state: HallwayState, actions: Array
    ) -> tuple[HallwayState, TimeStep]:
        del key
        actions = jnp.asarray(actions, jnp.int32)
        move = jnp.where(actions == LEFT, -1, jnp.where(actions == RIGHT, 1, 0))
        pos = jnp.clip(state.pos + move, 0, jnp.asarray(self.lengths, jnp.int32))
        at_goal = pos == 0
        win = jnp.all(at_goal)
        reward = jnp.where(win, self.reward_win, 0.0).astype(jnp.float32)
        new_state = HallwayState(pos=pos, t=state.t + 1)
        return new_state, self._timestep(new_state, reward, jnp.any(at_goal))
