"""The didactic one-step coordination game of DOP (paper 002, §5.1, Fig. 2).

Paper text: "In a state-less game with 3 agents and 14 actions, if agents take action1, 5, 9,
respectively, they get a team reward of 10; otherwise -10."

Reading: agent 0 must take action 1, agent 1 action 5 and agent 2 action 9 (one specific joint
action out of 14^3 = 2744); every other joint action, including any permutation of (1, 5, 9),
pays -10. [choice] The paper does not say whether its action numbers start at 0 or 1; we read
them as 0-based indices (all three are valid either way, and relabelling actions does not change
the game). ``optimal_actions`` can move the target.

One step per episode: the step is terminal (``terminated = True``). [choice] The game has no
observation; every agent observes the constant ``[1.0]`` and the global state is ``[1.0]``.
[choice] Local rewards: every agent receives the team reward.

As a :class:`~netmarl.envs.tabular.TabularMDP` the game has two states: 0 (the game) and 1
(an absorbing post-game state with reward 0), so the exact discounted value of state 0 is the
expected one-step payoff whatever ``gamma``. Tabular policies therefore have shape ``[.., 2, A]``;
the row of state 1 is irrelevant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from netmarl.envs.api import Discrete, EnvSpec, TimeStep, make_timestep
from netmarl.envs.tabular import joint_actions
from netmarl.errors import ConfigError

Array = jax.Array


class DidacticState(NamedTuple):
    s: Array  # [] int32: 0 in the game, 1 after it
    t: Array  # [] int32


class DidacticGame:
    """DOP's stateless 3-agent, 14-action game: +10 iff actions (1, 5, 9), else -10."""

    def __init__(
        self,
        num_agents: int = 3,
        num_actions: int = 14,
        optimal_actions: Sequence[int] | None = None,
        reward_win: float = 10.0,
        reward_lose: float = -10.0,
    ):
        if isinstance(num_agents, bool) or not isinstance(num_agents, int) or num_agents < 1:
            raise ConfigError(f"num_agents must be an integer >= 1, got {num_agents!r}")
        if isinstance(num_actions, bool) or not isinstance(num_actions, int) or num_actions < 1:
            raise ConfigError(f"num_actions must be an integer >= 1, got {num_actions!r}")
        if optimal_actions is None:
            if num_agents != 3 or num_actions < 10:
                raise ConfigError(
                    "optimal_actions is required unless num_agents == 3 and num_actions >= 10 "
                    "(the paper's target (1, 5, 9))"
                )
            optimal_actions = (1, 5, 9)
        optimal_actions = tuple(int(a) for a in optimal_actions)
        if len(optimal_actions) != num_agents or not all(
            0 <= a < num_actions for a in optimal_actions
        ):
            raise ConfigError(
                f"optimal_actions must hold {num_agents} actions in [0, {num_actions}), "
                f"got {optimal_actions}"
            )
        self.num_agents = num_agents
        self.num_actions = num_actions
        self.num_states = 2
        self.optimal_actions = optimal_actions
        self.reward_win = float(reward_win)
        self.reward_lose = float(reward_lose)
        self.spec = EnvSpec(
            name="didactic",
            num_agents=num_agents,
            obs_shape=(1,),
            state_shape=(1,),
            action_space=Discrete(num_actions),
            episode_limit=1,
        )

    def payoff(self, actions: Array) -> Array:
        """Team payoff of per-agent ``actions [..., N]``."""
        target = jnp.asarray(self.optimal_actions, jnp.int32)
        win = jnp.all(jnp.asarray(actions, jnp.int32) == target, axis=-1)
        return jnp.where(win, self.reward_win, self.reward_lose).astype(jnp.float32)

    # ------------------------------------------------------------------ env API

    def _timestep(self, t: Array, rewards: Array, terminated: Array) -> TimeStep:
        return make_timestep(
            obs=jnp.ones((self.num_agents, 1), jnp.float32),
            global_state=jnp.ones((1,), jnp.float32),
            rewards=rewards,
            team_reward=jnp.mean(rewards),
            terminated=terminated,
            episode_step=t,
            episode_limit=1,
            avail_actions=jnp.ones((self.num_agents, self.num_actions), bool),
        )

    def reset(self, key: Array) -> tuple[DidacticState, TimeStep]:
        del key
        state = DidacticState(s=jnp.zeros((), jnp.int32), t=jnp.zeros((), jnp.int32))
        zeros = jnp.zeros((self.num_agents,), jnp.float32)
        return state, self._timestep(state.t, zeros, jnp.asarray(False))

    def step(
        self, key: Array, state: DidacticState, actions: Array
    ) -> tuple[DidacticState, TimeStep]:
        del key
        r = self.payoff(actions)
        rewards = jnp.full((self.num_agents,), r, jnp.float32)
        new_state = DidacticState(s=jnp.ones((), jnp.int32), t=state.t + 1)
        return new_state, self._timestep(new_state.t, rewards, jnp.asarray(True))

    # ------------------------------------------------------------------ TabularMDP

    def transition_probs(self, s: Array, joint: Array) -> Array:
        del s, joint
        return jnp.asarray([0.0, 1.0], jnp.float32)

    def expected_rewards(self, s: Array, joint: Array) -> Array:
        r = self.payoff(joint_actions(joint, self.num_agents, self.num_actions))
        r = jnp.where(s == 0, r, 0.0)
        return jnp.full((self.num_agents,), r, jnp.float32)

    def initial_distribution(self) -> Array:
        return jnp.asarray([1.0, 0.0], jnp.float32)

    def team_reward_from_local(self, r: Array) -> Array:
        return jnp.mean(r, axis=-1)

    def state_index(self, env_state: DidacticState) -> Array:
        return env_state.s
