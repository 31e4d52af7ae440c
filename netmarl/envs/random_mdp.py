"""Randomly generated networked multi-agent MDPs (Li & Jia; Zhang et al. 2018 / VP).

A finite MDP with ``S`` states and ``N`` agents of ``A`` actions each; the state is fully
observed by every agent and both transitions and rewards depend on the *joint* action
``a = (a_1, ..., a_N)`` (Li & Jia, paper 003, Definition 1).

Generation (paper 003 §V): ``P(s, a, .)`` is a vector of ``U(0, 1)`` numbers, normalised.
Rewards come in two kinds:

* ``"shared_normal"`` (Li & Jia §V): ``R(s, a) ~ N(0, 1)``, shared by all agents: every local
  reward equals it and the team reward is it. Preset: 100 states, 3 actions, N = 4 or 5.
* ``"local_uniform"`` (Zhang et al. 2018; Value Propagation): ``R_i(s, a) ~ U[0, 4]``, one
  entry per agent, state and joint action; each step adds fresh ``U[-0.5, 0.5]`` noise
  (``reward_noise = 0.5``) per agent; team reward = mean of the local rewards. Preset: 20
  states, binary actions, N up to 20.

[choice] Procedural generation, so memory does not grow with ``A^N``: row ``P(s, a, .)`` is
drawn from ``fold_in(fold_in(key_P, s), a)`` and the rewards of ``(s, a)`` from
``fold_in(fold_in(key_R, s), a)``, with ``a`` the joint index (:func:`joint_index`, agent 0
most significant) and ``key_P, key_R`` split from ``PRNGKey(mdp_seed)``. When the tables are
small (``S * A^N * max(S, N) <= 2^24`` floats, or ``materialize=True``) they are built once
with the *same* function, so both paths describe the identical MDP. The materialised path also
stores the CDF ``cumsum(P, -1)`` next to ``P`` (twice the memory): a per-step ``cumsum`` of a
row is the single most expensive op of a training step on XLA CPU (its reduce-window lowering
does ~S^2/8 adds per row, ~10 us per step for 10 vmapped seeds), and both paths compute the CDF
with the very same :func:`_generate`, so they sample next states with the same arithmetic
(identical trajectories from identical keys).

[choice] ``reward_noise`` is zero-mean uniform noise ``U[-reward_noise, reward_noise]``: one
draw per agent for local rewards, one shared draw for the shared reward (default 0 there:
Li & Jia describe a deterministic ``R``).

[choice] Continuing task: the initial state is uniform over the states and episodes are
truncated (never terminated) after ``episode_limit`` steps (default 100), only so that the
env API has episodes; :func:`~netmarl.envs.tabular.evaluate_product_policy` gives the
infinite-horizon discounted values.

Observations: every agent sees the one-hot global state, ``obs [N, S]``; ``global_state
[S]`` is the same one-hot; every action is always available.

Uniform-driven fast path (used by :func:`~netmarl.algos.tabular_base.make_trainer`):
``step(key, ...)`` is ``step_from_uniforms(jax.random.uniform(key, (step_uniforms,)), ...)``
and ``reset(key)`` is ``reset_from_uniforms(jax.random.uniform(key, (reset_uniforms,)))``, so a
caller that pre-draws many steps' uniforms in one PRNG call gets exactly the transitions (and
reward noise) of ``step``. ``u[0]`` picks the next state by inverting its CDF, ``u[1:]`` are the
reward-noise draws (none when ``reward_noise == 0``).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from netmarl.envs.api import Discrete, EnvSpec, TimeStep, make_timestep
from netmarl.envs.tabular import joint_index
from netmarl.errors import ConfigError, unknown_name

Array = jax.Array

REWARD_TYPES = ("shared_normal", "local_uniform")
MATERIALIZE_LIMIT = 2**24
LOCAL_REWARD_HIGH = 4.0  # Zhang et al. 2018: R_i(s, a) ~ U[0, 4]


class RandomMDPState(NamedTuple):
    s: Array  # [] int32 current state
    t: Array  # [] int32 steps taken in the episode


def _generate(
    key_p: Array,
    key_r: Array,
    s: Array,
    joint: Array,
    num_states: int,
    num_agents: int,
    shared: bool,
) -> tuple[Array, Array]:
    """Row ``P(s, joint, .) [S]``, its CDF ``[S]`` and the reward (``[1]`` shared or ``[N]``)."""
    kp = jax.random.fold_in(jax.random.fold_in(key_p, s), joint)
    u = jax.random.uniform(kp, (num_states,), jnp.float32)
    row = u / jnp.sum(u)
    kr = jax.random.fold_in(jax.random.fold_in(key_r, s), joint)
    if shared:
        r = jax.random.normal(kr, (1,), jnp.float32)
    else:
        r = jax.random.uniform(kr, (num_agents,), jnp.float32, 0.0, LOCAL_REWARD_HIGH)
    return row, jnp.cumsum(row), r


@functools.partial(jax.jit, static_argnums=(4, 5, 6))
def _generate_tables(
    key_p: Array,
    key_r: Array,
    states: Array,
    joints: Array,
    num_states: int,
    num_agents: int,
    shared: bool,
) -> tuple[Array, Array, Array]:
    """All rows at once (the materialised tables), with the very same :func:`_generate`."""
    row = functools.partial(_generate, num_states=num_states, num_agents=num_agents, shared=shared)
    grid = jax.vmap(jax.vmap(row, (None, None, None, 0)), (None, None, 0, None))
    return grid(key_p, key_r, states, joints)


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class RandomNetworkedMDP:
    """A random finite MDP with joint-action dependent transitions and rewards.

    Implements the env API (``reset``/``step``/``spec``) and
    :class:`~netmarl.envs.tabular.TabularMDP`.
    """

    def __init__(
        self,
        num_agents: int = 4,
        num_states: int = 100,
        num_actions: int = 3,
        reward: str = "shared_normal",
        reward_noise: float = 0.0,
        mdp_seed: int = 0,
        episode_limit: int = 100,
        materialize: bool | None = None,
        name: str = "random_mdp",
    ):
        self.num_agents = _check_int("num_agents", num_agents, 1)
        self.num_states = _check_int("num_states", num_states, 1)
        self.num_actions = _check_int("num_actions", num_actions, 1)
        self.episode_limit = _check_int("episode_limit", episode_limit, 1)
        self.mdp_seed = _check_int("mdp_seed", mdp_seed, 0)
        if reward not in REWARD_TYPES:
            raise unknown_name("reward type", str(reward), REWARD_TYPES)
        self.reward = reward
        if isinstance(reward_noise, bool) or not isinstance(reward_noise, int | float):
            raise ConfigError(f"reward_noise must be a number >= 0, got {reward_noise!r}")
        if reward_noise < 0:
            raise ConfigError(f"reward_noise must be >= 0, got {reward_noise!r}")
        self.reward_noise = float(reward_noise)
        self.num_joint = self.num_actions**self.num_agents
        if self.num_joint >= 2**31:
            raise ConfigError(
                f"{self.num_actions}^{self.num_agents} joint actions do not fit an int32 "
                "joint index; use fewer agents or actions"
            )
        if materialize is not None and not isinstance(materialize, bool):
            raise ConfigError(f"materialize must be True, False or None, got {materialize!r}")
        size = self.num_states * self.num_joint * max(self.num_states, self.num_agents)
        self.materialized = size <= MATERIALIZE_LIMIT if materialize is None else materialize

        key_p, key_r = jax.random.split(jax.random.PRNGKey(self.mdp_seed))
        self._key_p = key_p
        self._key_r = key_r
        self._shared = reward == "shared_normal"
        self.spec = EnvSpec(
            name=name,
            num_agents=self.num_agents,
            obs_shape=(self.num_states,),
            state_shape=(self.num_states,),
            action_space=Discrete(self.num_actions),
            episode_limit=self.episode_limit,
        )
        self._p_table: Array | None = None
        self._cdf_table: Array | None = None
        self._r_table: Array | None = None
        if self.materialized:
            states = jnp.arange(self.num_states, dtype=jnp.int32)
            joints = jnp.arange(self.num_joint, dtype=jnp.int32)
            self._p_table, self._cdf_table, self._r_table = _generate_tables(
                key_p, key_r, states, joints, self.num_states, self.num_agents, self._shared
            )
        # U[0, 1) numbers consumed by step_from_uniforms: the next state, then the noise.
        noise_draws = 0 if self.reward_noise == 0 else (1 if self._shared else self.num_agents)
        self.step_uniforms = 1 + noise_draws
        self.reset_uniforms = 1

    # ------------------------------------------------------------------ generation

    def _gen(self, s: Array, joint: Array) -> tuple[Array, Array, Array]:
        """Procedural ``P(s, joint, .) [S]``, its CDF and the reward entry ``[1]`` or ``[N]``."""
        return _generate(
            self._key_p, self._key_r, s, joint, self.num_states, self.num_agents, self._shared
        )

    def _lookup(self, s: Array, joint: Array) -> tuple[Array, Array]:
        """``P(s, joint, .)`` and the reward entry."""
        if self._p_table is not None:
            return self._p_table[s, joint], self._r_table[s, joint]
        row, _, r = self._gen(s, joint)
        return row, r

    def _lookup_cdf(self, s: Array, joint: Array) -> tuple[Array, Array]:
        """The CDF of ``P(s, joint, .)`` and the reward entry (what a step needs)."""
        if self._cdf_table is not None:
            return self._cdf_table[s, joint], self._r_table[s, joint]
        _, cdf, r = self._gen(s, joint)
        return cdf, r

    # ------------------------------------------------------------------ TabularMDP

    def transition_probs(self, s: Array, joint: Array) -> Array:
        """``P(s, joint, .)``, shape ``[S]``."""
        return self._lookup(s, joint)[0]

    def expected_rewards(self, s: Array, joint: Array) -> Array:
        """Expected local rewards ``[N]`` (the shared reward repeated for ``shared_normal``)."""
        r = self._lookup(s, joint)[1]
        return jnp.broadcast_to(r, (self.num_agents,))

    def initial_distribution(self) -> Array:
        return jnp.full((self.num_states,), 1.0 / self.num_states, jnp.float32)

    def team_reward_from_local(self, r: Array) -> Array:
        """The shared reward (``shared_normal``) or the mean of the local rewards."""
        return r[..., 0] if self._shared else jnp.mean(r, axis=-1)

    def state_index(self, env_state: RandomMDPState) -> Array:
        return env_state.s

    def dense_tables(self) -> tuple[Array, Array] | None:
        """``P [S, A^N, S]`` and ``R [S, A^N, N]`` when materialised, else None."""
        if self._p_table is None:
            return None
        r = jnp.broadcast_to(self._r_table, (self.num_states, self.num_joint, self.num_agents))
        return self._p_table, r

    # ------------------------------------------------------------------ env API

    def _timestep(self, state: RandomMDPState, rewards: Array, team: Array) -> TimeStep:
        onehot = jax.nn.one_hot(state.s, self.num_states, dtype=jnp.float32)
        return make_timestep(
            obs=jnp.broadcast_to(onehot, (self.num_agents, self.num_states)),
            global_state=onehot,
            rewards=rewards,
            team_reward=team,
            terminated=jnp.asarray(False),
            episode_step=state.t,
            episode_limit=self.episode_limit,
            avail_actions=jnp.ones((self.num_agents, self.num_actions), bool),
        )

    def reset(self, key: Array) -> tuple[RandomMDPState, TimeStep]:
        return self.reset_from_uniforms(jax.random.uniform(key, (self.reset_uniforms,)))

    def step(
        self, key: Array, state: RandomMDPState, actions: Array
    ) -> tuple[RandomMDPState, TimeStep]:
        u = jax.random.uniform(key, (self.step_uniforms,), jnp.float32)
        return self.step_from_uniforms(u, state, actions)

    def reset_from_uniforms(self, u: Array) -> tuple[RandomMDPState, TimeStep]:
        """:meth:`reset` with its randomness given: a uniform initial state from ``u [1]``."""
        s = jnp.minimum((u[0] * self.num_states).astype(jnp.int32), self.num_states - 1)
        state = RandomMDPState(s=s, t=jnp.zeros((), jnp.int32))
        zeros = jnp.zeros((self.num_agents,), jnp.float32)
        return state, self._timestep(state, zeros, jnp.zeros((), jnp.float32))

    def step_from_uniforms(
        self, u: Array, state: RandomMDPState, actions: Array
    ) -> tuple[RandomMDPState, TimeStep]:
        """:meth:`step` with its randomness given as ``u [step_uniforms]`` in [0, 1)."""
        joint = joint_index(actions, self.num_actions)
        cdf, r = self._lookup_cdf(state.s, joint)
        # Inverse CDF: s' = #{k : cdf_k <= u * cdf_last}; the min guards float round-off.
        target = u[0] * cdf[-1]
        s_next = jnp.minimum(jnp.sum(cdf <= target), self.num_states - 1).astype(jnp.int32)
        if self.reward_noise > 0:  # U[-noise, noise], one draw shared or one per agent
            r = r + self.reward_noise * (2.0 * u[1:] - 1.0)
        rewards = jnp.broadcast_to(r, (self.num_agents,))
        team = self.team_reward_from_local(rewards)
        new_state = RandomMDPState(s=s_next, t=state.t + 1)
        return new_state, self._timestep(new_state, rewards, team)


def lijia_mdp(
    num_agents: int = 4,
    num_states: int = 100,
    num_actions: int = 3,
    reward_noise: float = 0.0,
    mdp_seed: int = 0,
    episode_limit: int = 100,
    materialize: bool | None = None,
) -> RandomNetworkedMDP:
    """Li & Jia §V preset: 100 states, 3 actions, ``R(s, a) ~ N(0, 1)`` shared, N = 4 (or 5)."""
    return RandomNetworkedMDP(
        num_agents=num_agents,
        num_states=num_states,
        num_actions=num_actions,
        reward="shared_normal",
        reward_noise=reward_noise,
        mdp_seed=mdp_seed,
        episode_limit=episode_limit,
        materialize=materialize,
        name="lijia_mdp",
    )


def zhang_mdp(
    num_agents: int = 10,
    num_states: int = 20,
    num_actions: int = 2,
    reward_noise: float = 0.5,
    mdp_seed: int = 0,
    episode_limit: int = 100,
    materialize: bool | None = None,
) -> RandomNetworkedMDP:
    """Zhang et al. 2018 / VP preset: 20 states, binary actions, ``R_i ~ U[0, 4]`` + noise.

    [choice] N = 10 by default (the papers go up to 20, which also works: procedural path).
    """
    return RandomNetworkedMDP(
        num_agents=num_agents,
        num_states=num_states,
        num_actions=num_actions,
        reward="local_uniform",
        reward_noise=reward_noise,
        mdp_seed=mdp_seed,
        episode_limit=episode_limit,
        materialize=materialize,
        name="zhang_mdp",
    )
