"""Cooperative navigation ("simple spread"): N agents cover N landmarks without colliding.

The multi-agent particle environment (MPE) of Lowe et al. 2017 ("Multi-Agent Actor-Critic for
Mixed Cooperative-Competitive Environments"), as maintained in ``mpe2`` (Farama,
``mpe2.simple_spread_v3``, version 1.1.1), rewritten in pure JAX (jit / vmap / scan) and checked
step for step against ``mpe2`` in ``tests/test_navigation.py``. Every constant and every
floating-point operation below follows ``mpe2/_mpe_utils/core.py`` (``World.step``),
``simple_env.py`` (``_set_action``, ``_execute_world_step``) and
``simple_spread/simple_spread.py`` (``Scenario``):

World. A 2-d plane, no walls. N agents (discs of radius ``AGENT_SIZE`` = 0.15, mass 1, movable,
colliding, silent, no motor noise, no speed limit) and N landmarks (points that neither move nor
collide). ``reset`` draws every agent and landmark position uniformly from ``[-1, 1]^2`` and sets
the agents' velocities to zero.

Actions -> forces (``SimpleEnv._set_action``), sensitivity ``SENSITIVITY`` = 5:

* discrete, ``Discrete(5)``: 0 no-op, 1 left ``u = (-1, 0)``, 2 right ``(+1, 0)``, 3 down
  ``(0, -1)``, 4 up ``(0, +1)``; force ``5 u``;
* continuous, ``Box(0, 1, (5,))`` (mpe2's format): ``a`` is first clipped to ``[0, 1]`` (mpe2
  wraps the env in ``ClipOutOfBoundsWrapper``), then ``u = (a[2] - a[1], a[4] - a[3])`` and the
  force is ``5 u``; ``a[0]`` (the "no-op" entry) has no effect.

Contact forces (``World.get_collision_force``) between every pair of agents i != j, at any
distance (a soft-plus penetration, so far-apart agents exert a vanishing force):
``d = p_i - p_j``, ``pen = k log(1 + exp(-(|d| - 2 * 0.15) / k))`` with the contact margin
``k = 1e-3``, and ``f_i += 100 * d / |d| * pen`` (``f_j`` gets the opposite).

Integration (``World.integrate_state``), ``dt = 0.1``, damping 0.25, semi-explicit Euler with the
*old* velocity moving the position::

    p <- p + v dt
    v <- v (1 - 0.25) + (f / m) dt

Observation of agent i (``Scenario.observation``, ``observation="local"``, 6N values):
``[v_i, p_i, (l_k - p_i) for each landmark k, (p_j - p_i) for each other agent j in index order,
2 (N - 1) zeros]`` (the zeros are the silent agents' communication channels, kept so the layout and
the size equal mpe2's). ``observation="global"`` [choice] gives every agent the global state
followed by a one-hot of its own index (Li & Jia: "the global state contains the location of all
the agents and targets").

Global state [choice]: ``[agent positions (2N), agent velocities (2N), landmark positions (2N)]``
flattened (mpe2's ``state()`` concatenates the N observations, 6N^2 values, which carry the same
information).

Rewards, computed after the move. ``collisions_i`` = number of other agents j with
``|p_i - p_j| < 0.3`` (strict, as ``Scenario.is_collision``).

* ``reward="mpe"`` (``simple_spread_v3``): ``r_i = (1 - local_ratio) * G + local_ratio * L_i``
  with the shared ``G = -sum_k min_i |p_i - l_k|`` and the local ``L_i = -collisions_i``
  (``local_ratio`` 0.5 by default, as in mpe2). ``team_reward`` = the mean of the ``r_i``.
* ``reward="lijia"`` (Li & Jia, paper 003 §V, "simple spread ... modified": "the negative value of
  the distance to its target and -1 if it collides with other agents. The global reward is
  calculated by averaging the rewards of all the agents"): agent i's target is landmark i,
  ``r_i = -|p_i - l_i| - collisions_i`` [choice: -1 per colliding agent, as mpe2 counts
  collisions; the paper's "-1 if it collides" reads the same when at most one other agent
  touches], ``team_reward`` = the mean of the ``r_i``.

Episodes never terminate (mpe2's ``terminate_on_success`` is off by default); they are truncated
after ``episode_limit`` steps (mpe2's ``max_cycles``, 25 by default), ``terminated`` stays False.

Arrays take the dtype of the state: float32 by default, float64 when the state is built from
float64 values under ``jax.enable_x64`` (the parity test runs so, to compare with mpe2's float64
NumPy to 1e-9; mpe2 casts observations to float32).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from netmarl.envs.api import Box, Discrete, EnvSpec, TimeStep, make_timestep
from netmarl.errors import ConfigError

Array = jax.Array

# mpe2 constants (core.World, core.Agent, simple_spread.Scenario, simple_env._set_action)
DT = 0.1
DAMPING = 0.25
CONTACT_FORCE = 1e2
CONTACT_MARGIN = 1e-3
AGENT_SIZE = 0.15
AGENT_MASS = 1.0
SENSITIVITY = 5.0
DIM_C = 2  # communication channels per agent (silent: always zero in observations)

NOOP, LEFT, RIGHT, DOWN, UP = 0, 1, 2, 3, 4
# unit force of each discrete action (mpe2 _set_action)
DISCRETE_DIRECTIONS = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], np.float64)

REWARDS = ("mpe", "lijia")
OBSERVATIONS = ("local", "global")


class NavigationState(NamedTuple):
    agent_pos: Array  # [N, 2]
    agent_vel: Array  # [N, 2]
    landmark_pos: Array  # [N, 2]; landmark i is agent i's target in the Li & Jia reward
    t: Array  # [] int32, steps taken in the episode


def navigation_state(
    agent_pos: Array | np.ndarray,
    landmark_pos: Array | np.ndarray,
    agent_vel: Array | np.ndarray | None = None,
    t: int | Array = 0,
) -> NavigationState:
    """A state from given positions ([N, 2] each) and velocities (zero if omitted).

    Values keep their float dtype where JAX allows it (float64 only under ``jax.enable_x64``).
    """
    agent_pos = jnp.asarray(agent_pos)
    if not jnp.issubdtype(agent_pos.dtype, jnp.floating):
        agent_pos = agent_pos.astype(float)
    landmark_pos = jnp.asarray(landmark_pos, agent_pos.dtype)
    if agent_pos.ndim != 2 or agent_pos.shape[-1] != 2 or landmark_pos.shape != agent_pos.shape:
        raise ConfigError(
            "agent_pos and landmark_pos must both have shape [N, 2], got "
            f"{tuple(agent_pos.shape)} and {tuple(landmark_pos.shape)}"
        )
    if agent_vel is None:
        agent_vel = jnp.zeros_like(agent_pos)
    agent_vel = jnp.asarray(agent_vel, agent_pos.dtype)
    if agent_vel.shape != agent_pos.shape:
        raise ConfigError(f"agent_vel must have shape {tuple(agent_pos.shape)}")
    return NavigationState(agent_pos, agent_vel, landmark_pos, jnp.asarray(t, jnp.int32))


class CooperativeNavigation:
    """MPE simple spread (mpe2 physics); discrete or continuous actions; MPE or Li & Jia reward.

    ``num_agents`` agents and as many landmarks. See the module docstring for the dynamics.
    """

    def __init__(
        self,
        num_agents: int = 3,
        continuous: bool = False,
        reward: str = "mpe",
        local_ratio: float = 0.5,
        episode_limit: int = 25,
        observation: str = "local",
    ):
        if isinstance(num_agents, bool) or not isinstance(num_agents, int) or num_agents < 1:
            raise ConfigError(f"num_agents must be an integer >= 1, got {num_agents!r}")
        if not isinstance(continuous, bool):
            raise ConfigError(f"continuous must be True or False, got {continuous!r}")
        if reward not in REWARDS:
            raise ConfigError(f"reward must be one of {', '.join(REWARDS)}; got {reward!r}")
        if observation not in OBSERVATIONS:
            raise ConfigError(
                f"observation must be one of {', '.join(OBSERVATIONS)}; got {observation!r}"
            )
        try:
            local_ratio = float(local_ratio)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"local_ratio must be a number in [0, 1], got {local_ratio!r}"
            ) from exc
        if not 0.0 <= local_ratio <= 1.0:
            raise ConfigError(f"local_ratio must be in [0, 1], got {local_ratio!r}")
        if (
            isinstance(episode_limit, bool)
            or not isinstance(episode_limit, int)
            or episode_limit < 1
        ):
            raise ConfigError(f"episode_limit must be an integer >= 1, got {episode_limit!r}")
        self.num_agents = num_agents
        self.continuous = continuous
        self.reward = reward
        self.local_ratio = local_ratio
        self.episode_limit = episode_limit
        self.observation = observation
        n = num_agents
        state_dim = 6 * n
        obs_dim = 6 * n if observation == "local" else state_dim + n
        self.spec = EnvSpec(
            name="navigation",
            num_agents=n,
            obs_shape=(obs_dim,),
            state_shape=(state_dim,),
            action_space=Box(0.0, 1.0, (5,)) if continuous else Discrete(5),
            episode_limit=episode_limit,
        )

    # --- dynamics ------------------------------------------------------------------------------

    def action_force(self, actions: Array, dtype: jnp.dtype) -> Array:
        """The agents' control forces [N, 2] (mpe2 ``_set_action``, times the sensitivity 5)."""
        if self.continuous:
            a = jnp.clip(jnp.asarray(actions, dtype), 0.0, 1.0)
            u = jnp.stack([a[:, 2] - a[:, 1], a[:, 4] - a[:, 3]], axis=-1)
        else:
            u = jnp.asarray(DISCRETE_DIRECTIONS, dtype)[jnp.asarray(actions, jnp.int32)]
        return u * SENSITIVITY

    @staticmethod
    def _pairwise(pos: Array) -> tuple[Array, Array, Array]:
        """delta[i, j] = p_i - p_j, distances [N, N] (1 on the diagonal), off-diagonal mask."""
        n = pos.shape[0]
        delta = pos[:, None, :] - pos[None, :, :]
        off = ~jnp.eye(n, dtype=bool)
        sq = jnp.sum(jnp.square(delta), axis=-1)
        dist = jnp.sqrt(jnp.where(off, sq, 1.0))
        return delta, dist, off

    def contact_force(self, pos: Array) -> Array:
        """Soft contact forces between agents, [N, 2] (mpe2 ``get_collision_force``)."""
        delta, dist, off = self._pairwise(pos)
        k = CONTACT_MARGIN
        penetration = jnp.logaddexp(0.0, -(dist - 2 * AGENT_SIZE) / k) * k
        force = CONTACT_FORCE * delta / dist[..., None] * penetration[..., None]
        return jnp.sum(jnp.where(off[..., None], force, 0.0), axis=1)

    def collisions(self, pos: Array) -> Array:
        """Number of other agents each agent overlaps, [N] (mpe2 ``is_collision``)."""
        _, dist, off = self._pairwise(pos)
        return jnp.sum(off & (dist < 2 * AGENT_SIZE), axis=1)

    def _rewards(self, state: NavigationState) -> tuple[Array, Array]:
        pos, lm = state.agent_pos, state.landmark_pos
        collisions = self.collisions(pos).astype(pos.dtype)
        if self.reward == "mpe":
            d = jnp.sqrt(jnp.sum(jnp.square(pos[:, None, :] - lm[None, :, :]), axis=-1))
            shared = -jnp.sum(jnp.min(d, axis=0))  # sum over landmarks of the closest agent
            rewards = shared * (1.0 - self.local_ratio) + (-collisions) * self.local_ratio
        else:
            own = jnp.sqrt(jnp.sum(jnp.square(pos - lm), axis=-1))
            rewards = -own - collisions
        return rewards, jnp.mean(rewards)

    # --- observations --------------------------------------------------------------------------

    def global_state(self, state: NavigationState) -> Array:
        return jnp.concatenate(
            [
                state.agent_pos.reshape(-1),
                state.agent_vel.reshape(-1),
                state.landmark_pos.reshape(-1),
            ]
        )

    def observations(self, state: NavigationState) -> Array:
        """[N, obs_dim]: mpe2's observation ("local") or global state + one-hot id ("global")."""
        n = self.num_agents
        pos, vel = state.agent_pos, state.agent_vel
        if self.observation == "global":
            g = jnp.broadcast_to(self.global_state(state), (n, 6 * n))
            return jnp.concatenate([g, jnp.eye(n, dtype=pos.dtype)], axis=1)
        rel_lm = (state.landmark_pos[None, :, :] - pos[:, None, :]).reshape(n, 2 * n)
        rel_agents = pos[None, :, :] - pos[:, None, :]  # [i, j] = p_j - p_i
        others = np.array([[j for j in range(n) if j != i] for i in range(n)], np.int32)
        rel_others = rel_agents[np.arange(n)[:, None], others.reshape(n, n - 1)]
        comm = jnp.zeros((n, DIM_C * (n - 1)), pos.dtype)
        return jnp.concatenate([vel, pos, rel_lm, rel_others.reshape(n, -1), comm], axis=1)

    def _timestep(self, state: NavigationState, rewards: Array, team: Array) -> TimeStep:
        n = self.num_agents
        num_avail = 1 if self.continuous else 5
        return make_timestep(
            obs=self.observations(state),
            global_state=self.global_state(state),
            rewards=rewards,
            team_reward=team,
            terminated=jnp.asarray(False),
            episode_step=state.t,
            episode_limit=self.episode_limit,
            avail_actions=jnp.ones((n, num_avail), bool),
        )

    # --- API -----------------------------------------------------------------------------------

    def initial_timestep(self, state: NavigationState) -> TimeStep:
        """The TimeStep ``reset`` would report for ``state`` (zero rewards)."""
        zero = jnp.zeros((), jnp.float32)
        return self._timestep(state, jnp.zeros((self.num_agents,), jnp.float32), zero)

    def reset(self, key: Array) -> tuple[NavigationState, TimeStep]:
        k_agents, k_landmarks = jax.random.split(key)
        shape = (self.num_agents, 2)
        agent_pos = jax.random.uniform(k_agents, shape, minval=-1.0, maxval=1.0)
        landmark_pos = jax.random.uniform(k_landmarks, shape, minval=-1.0, maxval=1.0)
        state = NavigationState(
            agent_pos=agent_pos,
            agent_vel=jnp.zeros_like(agent_pos),
            landmark_pos=landmark_pos,
            t=jnp.zeros((), jnp.int32),
        )
        return state, self.initial_timestep(state)

    def step(
        self, key: Array, state: NavigationState, actions: Array
    ) -> tuple[NavigationState, TimeStep]:
        del key  # deterministic dynamics
        pos, vel = state.agent_pos, state.agent_vel
        force = self.action_force(actions, pos.dtype) + self.contact_force(pos)
        new_pos = pos + vel * DT
        new_vel = vel * (1.0 - DAMPING) + (force / AGENT_MASS) * DT
        new_state = NavigationState(new_pos, new_vel, state.landmark_pos, state.t + 1)
        rewards, team = self._rewards(new_state)
        return new_state, self._timestep(new_state, rewards, team)
