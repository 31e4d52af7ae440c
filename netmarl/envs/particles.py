"""Aggregation and Mill: the two multi-agent particle tasks of DOP §5.3 (paper 002).

Both run on the MPE physics of :mod:`netmarl.envs.navigation` (imported, not copied: the
classes below subclass :class:`~netmarl.envs.navigation.CooperativeNavigation`, reuse its
action-to-force map, soft contact forces and the integrator constants ``DT`` = 0.1 and
``DAMPING`` = 0.25, and are drawn by its renderer). The paper gives the rewards and limits
quoted below; everything it leaves open is marked [choice] and is a constructor argument.

Aggregation (DOP §5.3: "5 agents navigate to one landmark. Only when all agents reach the
landmark will they get a team reward of 10 and successfully end the episode; otherwise, an
episode ends after 25 timesteps and agents get a reward of -10"):

* World: N = 5 agents (discs of radius 0.15, colliding, exactly as in navigation) and one
  landmark; ``reset`` draws agents and landmark uniformly from ``[-1, 1]^2``, velocities zero
  (the navigation reset distribution).
* Actions: navigation's, continuous ``Box(0, 1, (5,))`` (``u = (a2 - a1, a4 - a3)``, force 5u)
  or discrete ``Discrete(5)``; the step is navigation's (semi-explicit Euler, contact forces).
* "Reached" [choice]: agent i is on the landmark when ``|p_i - l| < success_radius`` (0.4 by
  default: five colliding discs of radius 0.15 cannot all have their centres closer than about
  0.26 to one point, so the radius must leave room for all of them).
* Reward (team, and every agent's local reward is the same team reward): +10 on the step where
  all agents are on the landmark, which ends the episode (``terminated``); -10 on step
  ``episode_limit`` (25) if that never happened, also a terminal payoff (``terminated`` = True,
  [choice]: the -10 is part of the task, not a truncation to bootstrap through); 0 otherwise.
* Observation of agent i: ``[v_i, p_i, l - p_i, (p_j - p_i) for the other agents j in index
  order, steps left / episode_limit]`` (4 + 2 + 2(N - 1) + 1 values; the time feature
  [choice] makes the -10 at the deadline predictable). Global state: ``[agent positions (2N),
  agent velocities (2N), landmark (2), steps left / episode_limit]``.

Mill (DOP §5.3: "10 agents need to rotate a millstone clockwise. They can push the millstone
clockwise or counterclockwise with force between 0 and 1. If the millstone's angular velocity,
omega, gets greater than 30, agents are rewarded 3 per step. If omega exceeds 100 in 10 steps,
the agents win the episode and get a reward of 10; otherwise, they lose and get a punishment of
-10"). The paper does not give the millstone's dynamics; ours [choice]:

* The millstone is a wheel of radius 1 centred at the origin; agent i stands on its rim at angle
  ``phi + 2 pi i / N`` and turns with it (``phi`` is the wheel's angle, clockwise = decreasing).
* Actions: agent i pushes with ``f_i`` in ``[-1, 1]`` tangentially (``f_i > 0`` clockwise,
  ``|f_i|`` the force): ``Box(-1, 1, (1,))``; discrete variant ``Discrete(3)`` = push
  counterclockwise, rest, push clockwise (``f_i`` = -1, 0, +1).
* Rotation, the navigation integrator applied to the angle (same ``DT`` and ``DAMPING``)::

      phi   <- phi - omega * DT
      omega <- omega * (1 - DAMPING) + TORQUE_GAIN * sum_i f_i * DT      (TORQUE_GAIN = 30)

  so all ten pushing clockwise with full force approach omega = 120 (omega = 30, 52.5, ...,
  104 after 7 steps: a win); nine pushing and one resting still win on step 10 (101.9); nine
  pushing and one pushing back never get past 96. Every agent matters: that is the credit
  assignment problem the paper uses Mill for.
* Reward (team = every agent's local reward): +3 on each step that ends with omega > 30; +10
  more and the end of the episode (``terminated``) on the step omega first exceeds 100; -10
  more on step ``episode_limit`` = 10 if it never did (``terminated``, as in Aggregation).
  ``reset``: omega = 0, phi uniform in ``[0, 2 pi)``.
* Observation of agent i: ``[omega / 100, cos(angle_i), sin(angle_i), steps left /
  episode_limit]``; global state ``[omega / 100, cos(phi), sin(phi), steps left /
  episode_limit]``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from netmarl.envs.api import Box, Discrete, EnvSpec, TimeStep, make_timestep
from netmarl.envs.navigation import (
    AGENT_MASS,
    DAMPING,
    DT,
    CooperativeNavigation,
    NavigationState,
)
from netmarl.errors import ConfigError

Array = jax.Array

SUCCESS_REWARD = 10.0
FAILURE_REWARD = -10.0


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")


# --- Aggregation ------------------------------------------------------------------------------


class Aggregation(CooperativeNavigation):
    """DOP §5.3 Aggregation: all agents must gather on one landmark within the time limit."""

    def __init__(
        self,
        num_agents: int = 5,
        continuous: bool = True,
        episode_limit: int = 25,
        success_radius: float = 0.4,
    ):
        _check_int("num_agents", num_agents, 2)
        _check_int("episode_limit", episode_limit, 1)
        if not isinstance(success_radius, int | float) or not success_radius > 0:
            raise ConfigError(f"success_radius must be a number > 0, got {success_radius!r}")
        super().__init__(num_agents=num_agents, continuous=continuous, episode_limit=episode_limit)
        self.success_radius = float(success_radius)
        n = num_agents
        self.spec = EnvSpec(
            name="aggregation",
            num_agents=n,
            obs_shape=(4 + 2 + 2 * (n - 1) + 1,),
            state_shape=(4 * n + 2 + 1,),
            action_space=self.spec.action_space,
            episode_limit=episode_limit,
        )

    def _time_left(self, state: NavigationState, dtype: jnp.dtype) -> Array:
        return jnp.asarray(1.0 - state.t / self.episode_limit, dtype)

    def global_state(self, state: NavigationState) -> Array:
        return jnp.concatenate(
            [
                state.agent_pos.reshape(-1),
                state.agent_vel.reshape(-1),
                state.landmark_pos.reshape(-1),
                self._time_left(state, state.agent_pos.dtype)[None],
            ]
        )

    def observations(self, state: NavigationState) -> Array:
        n = self.num_agents
        pos, vel = state.agent_pos, state.agent_vel
        rel_lm = state.landmark_pos[0][None, :] - pos
        rel = pos[None, :, :] - pos[:, None, :]  # [i, j] = p_j - p_i
        others = jnp.array([[j for j in range(n) if j != i] for i in range(n)], jnp.int32)
        rel_others = rel[jnp.arange(n)[:, None], others].reshape(n, 2 * (n - 1))
        time_left = jnp.broadcast_to(self._time_left(state, pos.dtype), (n, 1))
        return jnp.concatenate([vel, pos, rel_lm, rel_others, time_left], axis=1)

    def on_landmark(self, state: NavigationState) -> Array:
        """[N] bool: agent i's centre is within ``success_radius`` of the landmark."""
        d = jnp.sqrt(jnp.sum(jnp.square(state.agent_pos - state.landmark_pos[0]), axis=-1))
        return d < self.success_radius

    def _outcome(self, state: NavigationState) -> tuple[Array, Array]:
        """(team reward, terminated) after a step that led to ``state``."""
        success = jnp.all(self.on_landmark(state))
        deadline = state.t >= self.episode_limit
        reward = jnp.where(success, SUCCESS_REWARD, jnp.where(deadline, FAILURE_REWARD, 0.0))
        return reward, success | deadline

    def _make_ts(self, state: NavigationState, team: Array, terminated: Array) -> TimeStep:
        n = self.num_agents
        return make_timestep(
            obs=self.observations(state),
            global_state=self.global_state(state),
            rewards=jnp.full((n,), team, jnp.float32),
            team_reward=team,
            terminated=terminated,
            episode_step=state.t,
            episode_limit=self.episode_limit,
            avail_actions=jnp.ones((n, 1 if self.continuous else 5), bool),
        )

    def initial_timestep(self, state: NavigationState) -> TimeStep:
        return self._make_ts(state, jnp.float32(0.0), jnp.bool_(False))

    def reset(self, key: Array) -> tuple[NavigationState, TimeStep]:
        k_agents, k_landmark = jax.random.split(key)
        agent_pos = jax.random.uniform(k_agents, (self.num_agents, 2), minval=-1.0, maxval=1.0)
        landmark_pos = jax.random.uniform(k_landmark, (1, 2), minval=-1.0, maxval=1.0)
        state = NavigationState(
            agent_pos, jnp.zeros_like(agent_pos), landmark_pos, jnp.zeros((), jnp.int32)
        )
        return state, self.initial_timestep(state)

    def step(
        self, key: Array, state: NavigationState, actions: Array
    ) -> tuple[NavigationState, TimeStep]:
        del key  # deterministic dynamics
        pos, vel = state.agent_pos, state.agent_vel
        # navigation's physics: control + contact forces, semi-explicit Euler
        force = self.action_force(actions, pos.dtype) + self.contact_force(pos)
        new_state = NavigationState(
            pos + vel * DT,
            vel * (1.0 - DAMPING) + (force / AGENT_MASS) * DT,
            state.landmark_pos,
            state.t + 1,
        )
        team, terminated = self._outcome(new_state)
        return new_state, self._make_ts(new_state, team.astype(jnp.float32), terminated)


# --- Mill -------------------------------------------------------------------------------------

TORQUE_GAIN = 30.0  # [choice] angular acceleration per unit of summed push (see docstring)
MILL_RADIUS = 1.0
REWARD_OMEGA, WIN_OMEGA = 30.0, 100.0  # DOP §5.3
STEP_REWARD = 3.0
MILL_PUSH = (-1.0, 0.0, 1.0)  # discrete actions: counterclockwise, rest, clockwise


class MillState(NamedTuple):
    """The wheel (``phi``, ``omega``) plus the fields the navigation renderer draws."""

    agent_pos: Array  # [N, 2] the agents' places on the rim
    agent_vel: Array  # [N, 2] their velocities (turning with the wheel)
    landmark_pos: Array  # [1, 2] the wheel's centre (drawn as a cross)
    t: Array  # [] int32
    phi: Array  # [] the wheel's angle (radians, counterclockwise positive)
    omega: Array  # [] angular velocity, clockwise positive


class Mill(CooperativeNavigation):
    """DOP §5.3 Mill: N agents on a millstone's rim push it to spin clockwise fast enough."""

    def __init__(self, num_agents: int = 10, continuous: bool = True, episode_limit: int = 10):
        _check_int("num_agents", num_agents, 1)
        _check_int("episode_limit", episode_limit, 1)
        super().__init__(num_agents=num_agents, continuous=continuous, episode_limit=episode_limit)
        self.spec = EnvSpec(
            name="mill",
            num_agents=num_agents,
            obs_shape=(4,),
            state_shape=(4,),
            action_space=Box(-1.0, 1.0, (1,)) if continuous else Discrete(3),
            episode_limit=episode_limit,
        )

    def push(self, actions: Array) -> Array:
        """[N] tangential push of every agent, clockwise positive, in [-1, 1]."""
        if self.continuous:
            return jnp.clip(jnp.asarray(actions, jnp.float32).reshape(self.num_agents), -1.0, 1.0)
        return jnp.asarray(MILL_PUSH, jnp.float32)[jnp.asarray(actions, jnp.int32)]

    def _state(self, phi: Array, omega: Array, t: Array) -> MillState:
        angles = phi + 2 * jnp.pi * jnp.arange(self.num_agents) / self.num_agents
        rim = jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=-1) * MILL_RADIUS
        # clockwise motion: velocity = omega * R * (sin, -cos)
        vel = omega * jnp.stack([jnp.sin(angles), -jnp.cos(angles)], axis=-1) * MILL_RADIUS
        centre = jnp.zeros((1, 2), jnp.float32)
        return MillState(rim, vel, centre, jnp.asarray(t, jnp.int32), phi, omega)

    def _time_left(self, t: Array) -> Array:
        return jnp.asarray(1.0 - t / self.episode_limit, jnp.float32)

    def global_state(self, state: MillState) -> Array:
        return jnp.stack(
            [
                state.omega / WIN_OMEGA,
                jnp.cos(state.phi),
                jnp.sin(state.phi),
                self._time_left(state.t),
            ]
        ).astype(jnp.float32)

    def observations(self, state: MillState) -> Array:
        n = self.num_agents
        rim = state.agent_pos / MILL_RADIUS
        scalars = jnp.broadcast_to(
            jnp.stack([state.omega / WIN_OMEGA, self._time_left(state.t)]), (n, 2)
        )
        return jnp.concatenate([scalars[:, :1], rim, scalars[:, 1:]], axis=1).astype(jnp.float32)

    def _make_ts(self, state: MillState, team: Array, terminated: Array) -> TimeStep:
        n = self.num_agents
        return make_timestep(
            obs=self.observations(state),
            global_state=self.global_state(state),
            rewards=jnp.full((n,), team, jnp.float32),
            team_reward=team,
            terminated=terminated,
            episode_step=state.t,
            episode_limit=self.episode_limit,
            avail_actions=jnp.ones((n, 1 if self.continuous else 3), bool),
        )

    def initial_timestep(self, state: MillState) -> TimeStep:
        return self._make_ts(state, jnp.float32(0.0), jnp.bool_(False))

    def reset(self, key: Array) -> tuple[MillState, TimeStep]:
        phi = jax.random.uniform(key, (), minval=0.0, maxval=2 * jnp.pi)
        state = self._state(phi, jnp.float32(0.0), 0)
        return state, self.initial_timestep(state)

    def step(self, key: Array, state: MillState, actions: Array) -> tuple[MillState, TimeStep]:
        del key  # deterministic dynamics
        # navigation's integrator on the angle: the old velocity moves the position
        phi = state.phi - state.omega * DT
        omega = state.omega * (1.0 - DAMPING) + TORQUE_GAIN * jnp.sum(self.push(actions)) * DT
        new_state = self._state(phi, omega, state.t + 1)
        win = omega > WIN_OMEGA
        lose = ~win & (new_state.t >= self.episode_limit)
        team = (
            jnp.where(omega > REWARD_OMEGA, STEP_REWARD, 0.0)
            + jnp.where(win, SUCCESS_REWARD, 0.0)
            + jnp.where(lose, FAILURE_REWARD, 0.0)
        ).astype(jnp.float32)
        return new_state, self._make_ts(new_state, team, win | lose)
