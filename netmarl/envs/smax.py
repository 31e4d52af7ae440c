"""SMAX (JaxMARL's StarCraft micromanagement in JAX) behind netmarl's env API.

DOP (paper 002) evaluates stochastic DOP on SMAC, which needs the StarCraft II binary; SMAX
(Rutherford et al., JaxMARL) re-implements the SMAC unit-micro scenarios in pure JAX and
stands in for it (``../ALGORITHMS.md``). This module wraps ``jaxmarl``'s
``HeuristicEnemySMAX`` (the allies are the learners; the enemies follow JaxMARL's built-in
heuristic, like SMAC's built-in AI) into a :class:`~netmarl.envs.api.Env`:

* ``obs [N, obs_dim]``: each ally's JaxMARL observation (own features and the units it sees);
* ``global_state``: JaxMARL's ``world_state`` (every unit's features), for centralized critics;
* ``avail_actions [N, A]``: JaxMARL's availability mask (movement + attack targets in range);
* ``team_reward``: the allies' shared JaxMARL reward (normalised enemy health removed, plus
  ``won_battle_bonus`` = 1 for a win), and every ally's local reward is the same number;
* an episode *terminates* when either team is wiped out and is *truncated* at
  ``episode_limit`` (JaxMARL's ``max_steps``, 100 by default).

``map`` picks the scenario by its SMAC name: 3m, 2s3z, 3s5z, 5m_vs_6m, 10m_vs_11m, ... (every
name JaxMARL's ``map_name_to_scenario`` knows). ``jaxmarl`` is an optional extra
(``pip install -e ".[smax]"``): it is imported only when an SMAX env is built, and building one
without it raises a :class:`~netmarl.errors.ConfigError` naming the extra.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from netmarl.envs.api import Discrete, EnvSpec, TimeStep, make_timestep
from netmarl.errors import ConfigError

Array = jax.Array

MAPS = ("3m", "2s3z", "3s5z", "5m_vs_6m", "10m_vs_11m")  # the ones DOP's experiments use


def _import_jaxmarl() -> Any:
    try:
        from jaxmarl.environments.smax import HeuristicEnemySMAX, map_name_to_scenario
    except ImportError as exc:
        raise ConfigError(
            "environment 'smax' needs the optional extra 'smax' (the jaxmarl package): "
            'install it with  pip install -e ".[smax]"  (or pip install jaxmarl).'
        ) from exc
    return HeuristicEnemySMAX, map_name_to_scenario


class SMAXState(NamedTuple):
    inner: Any  # JaxMARL's HeuristicEnemySMAX state
    t: Array  # [] int32, steps taken in this episode


class SMAX:
    """A JaxMARL SMAX map (allies learn, enemies run the heuristic) as a netmarl env."""

    def __init__(
        self,
        map: str = "3m",  # noqa: A002 (the SMAC name of the option)
        episode_limit: int = 100,
        won_battle_bonus: float = 1.0,
        enemy_shoots: bool = True,
    ):
        if isinstance(episode_limit, bool) or not isinstance(episode_limit, int):
            raise ConfigError(f"episode_limit must be an integer >= 1, got {episode_limit!r}")
        if episode_limit < 1:
            raise ConfigError(f"episode_limit must be an integer >= 1, got {episode_limit!r}")
        heuristic_smax, map_name_to_scenario = _import_jaxmarl()
        try:
            scenario = map_name_to_scenario(map)
        except KeyError:
            raise ConfigError(f"unknown SMAX map {map!r}; for example {', '.join(MAPS)}") from None
        self.map = map
        self._env = heuristic_smax(
            scenario=scenario,
            max_steps=episode_limit,
            won_battle_bonus=float(won_battle_bonus),
            enemy_shoots=bool(enemy_shoots),
        )
        self.agents = list(self._env.agents)
        self.num_agents = len(self.agents)
        self.num_enemies = self._env.num_enemies
        obs, state = self._env.reset(jax.random.key(0))
        num_actions = int(self._env.action_spaces[self.agents[0]].n)
        self.spec = EnvSpec(
            name=f"smax_{map}",
            num_agents=self.num_agents,
            obs_shape=tuple(obs[self.agents[0]].shape),
            state_shape=tuple(obs["world_state"].shape),
            action_space=Discrete(num_actions),
            episode_limit=episode_limit,
        )

    def _timestep(
        self, obs: dict, inner: Any, t: Array, reward: Array, terminated: Array
    ) -> TimeStep:
        avail = self._env.get_avail_actions(inner)
        rewards = jnp.full((self.num_agents,), reward, jnp.float32)
        return make_timestep(
            obs=jnp.stack([obs[a] for a in self.agents]).astype(jnp.float32),
            global_state=obs["world_state"].astype(jnp.float32),
            rewards=rewards,
            team_reward=reward,
            terminated=terminated,
            episode_step=t,
            episode_limit=self.spec.episode_limit,
            avail_actions=jnp.stack([avail[a] for a in self.agents]).astype(bool),
        )

    def reset(self, key: Array) -> tuple[SMAXState, TimeStep]:
        obs, inner = self._env.reset(key)
        t = jnp.zeros((), jnp.int32)
        ts = self._timestep(obs, inner, t, jnp.float32(0.0), jnp.asarray(False))
        return SMAXState(inner, t), ts

    def step(self, key: Array, state: SMAXState, actions: Array) -> tuple[SMAXState, TimeStep]:
        actions = jnp.asarray(actions, jnp.int32)
        obs, inner, rewards, _, _ = self._env.step_env(
            key, state.inner, {a: actions[i] for i, a in enumerate(self.agents)}
        )
        alive = inner.state.unit_alive
        allies_dead = ~jnp.any(alive[: self.num_agents])
        enemies_dead = ~jnp.any(alive[self.num_agents :])
        t = state.t + 1
        ts = self._timestep(
            obs, inner, t, rewards[self.agents[0]].astype(jnp.float32), allies_dead | enemies_dead
        )
        return SMAXState(inner, t), ts

    def won(self, state: SMAXState) -> Array:
        """Every enemy dead and some ally alive (a win; JaxMARL pays the bonus then)."""
        alive = state.inner.state.unit_alive
        return jnp.any(alive[: self.num_agents]) & ~jnp.any(alive[self.num_agents :])
