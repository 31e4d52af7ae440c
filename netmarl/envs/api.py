"""The multi-agent environment API shared by every netmarl environment.

An environment is a pair of pure JAX functions, so whole rollouts compile into one program:

    state, ts = env.reset(key)
    state, ts = env.step(key, state, actions)      # actions: [N] ints or [N, action_dim] floats

`ts` is a :class:`TimeStep` whose per-agent leaves have a leading agent axis N. Rewards are
*local* (one per agent, ``rewards[i]`` is private to agent i) and there is a ``team_reward``
(what a centralized learner would see; by convention the mean or the shared reward, stated
by each environment). ``env.spec`` is an :class:`EnvSpec`.

Vectorise over parallel environments with ``jax.vmap(env.reset)`` / ``jax.vmap(env.step)``;
:class:`AutoReset` restarts an episode inside ``step`` so a ``lax.scan`` never stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

Array = jax.Array
PRNGKey = jax.Array


@dataclass(frozen=True)
class Discrete:
    """``n`` actions, numbered 0..n-1."""

    n: int


@dataclass(frozen=True)
class Box:
    """Continuous actions in ``[low, high]`` with the given shape."""

    low: float
    high: float
    shape: tuple[int, ...]


ActionSpace = Discrete | Box


@dataclass(frozen=True)
class EnvSpec:
    """Static facts about an environment (Python values, never traced)."""

    name: str
    num_agents: int
    obs_shape: tuple[int, ...]  # per agent
    state_shape: tuple[int, ...]  # global state
    action_space: ActionSpace  # the same for every agent
    episode_limit: int  # steps after which an episode is truncated

    @property
    def discrete(self) -> bool:
        return isinstance(self.action_space, Discrete)

    @property
    def num_actions(self) -> int:
        if not isinstance(self.action_space, Discrete):
            raise TypeError(f"{self.name} has continuous actions; num_actions is undefined")
        return self.action_space.n


class TimeStep(NamedTuple):
    """What the environment reports after reset/step."""

    obs: Array  # [N, *obs_shape]
    global_state: Array  # [*state_shape]
    rewards: Array  # [N] local rewards (0 after reset)
    team_reward: Array  # [] team reward (0 after reset)
    done: Array  # [] bool: the episode ended at this step (terminated or truncated)
    terminated: Array  # [] bool: ended in a true terminal state (do not bootstrap)
    avail_actions: Array  # [N, A] bool (all True for continuous action spaces, A = 1)
    episode_step: Array  # [] int32, steps taken in the current episode


class Env(Protocol):
    spec: EnvSpec

    def reset(self, key: PRNGKey) -> tuple[Any, TimeStep]: ...

    def step(self, key: PRNGKey, state: Any, actions: Array) -> tuple[Any, TimeStep]: ...


def make_timestep(
    obs: Array,
    global_state: Array,
    rewards: Array,
    team_reward: Array,
    terminated: Array,
    episode_step: Array,
    episode_limit: int,
    avail_actions: Array,
) -> TimeStep:
    """Build a TimeStep, deriving ``done`` from termination or the episode limit."""
    terminated = jnp.asarray(terminated, bool)
    episode_step = jnp.asarray(episode_step, jnp.int32)
    done = terminated | (episode_step >= episode_limit)
    return TimeStep(
        obs=obs,
        global_state=global_state,
        rewards=jnp.asarray(rewards, jnp.float32),
        team_reward=jnp.asarray(team_reward, jnp.float32),
        done=done,
        terminated=terminated,
        avail_actions=avail_actions,
        episode_step=episode_step,
    )


class AutoReset:
    """Wrap an env so that ``step`` starts a new episode when the current one ends.

    The returned TimeStep keeps the *final* rewards, ``done`` and ``terminated`` of the
    finished episode (so learners see the last transition) but its ``obs``,
    ``global_state`` and ``avail_actions`` are those of the fresh episode, and the env state
    is the fresh state. The last observation of the ended episode is in ``info_final_obs``
    of :meth:`step_with_final`, for learners that need it to bootstrap truncated episodes.
    """

    def __init__(self, env: Env):
        self.env = env
        self.spec = env.spec

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def reset(self, key: PRNGKey) -> tuple[Any, TimeStep]:
        return self.env.reset(key)

    def step_with_final(
        self, key: PRNGKey, state: Any, actions: Array
    ) -> tuple[Any, TimeStep, TimeStep]:
        """Like :meth:`step`, also returning the un-reset TimeStep of this transition."""
        key_step, key_reset = jax.random.split(key)
        state_next, ts_next = self.env.step(key_step, state, actions)
        state_reset, ts_reset = self.env.reset(key_reset)
        done = ts_next.done
        state_out = jax.tree.map(lambda r, n: jnp.where(done, r, n), state_reset, state_next)
        ts_out = ts_next._replace(
            obs=jnp.where(done, ts_reset.obs, ts_next.obs),
            global_state=jnp.where(done, ts_reset.global_state, ts_next.global_state),
            avail_actions=jnp.where(done, ts_reset.avail_actions, ts_next.avail_actions),
            episode_step=jnp.where(done, ts_reset.episode_step, ts_next.episode_step),
        )
        return state_out, ts_out, ts_next

    def step(self, key: PRNGKey, state: Any, actions: Array) -> tuple[Any, TimeStep]:
        state_out, ts_out, _ = self.step_with_final(key, state, actions)
        return state_out, ts_out
