"""Finite multi-agent MDPs and their exact policy evaluation.

A :class:`TabularMDP` exposes a finite multi-agent MDP (states ``0..S-1``, ``N`` agents with
``A`` actions each, joint actions numbered ``0..A^N-1`` by :func:`joint_index`) through two
traceable functions, ``transition_probs(s, joint) -> [S]`` and ``expected_rewards(s, joint) ->
[N]``. The evaluators solve the linear Bellman system

    (I - gamma P_pi) V = R_pi

with ``jnp.linalg.solve`` for the team reward and for every agent's local reward at once, so a
learner's tabular policy can be scored exactly (no Monte-Carlo noise) inside jit / vmap.

Two ways to build ``P_pi`` and ``R_pi`` (chosen statically from the sizes, or forced with
``method``):

* ``"dense"``: materialise ``P [S, A^N, S]`` and ``R [S, A^N, N]`` (or take the MDP's own
  tables from ``dense_tables()`` when it has them) and contract them with the policy;
* ``"chunked"``: a ``lax.scan`` over chunks of joint actions that calls the procedural
  transition / reward functions, so memory stays ``O(S^2 + chunk * S)`` however large ``A^N``
  is (e.g. N = 20 binary agents: 2^20 joint actions).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp

from netmarl.errors import ConfigError

Array = jax.Array

# Above this many floats for P [S, A^N, S] the evaluators switch to the chunked path.
DENSE_LIMIT = 2**25
# Target number of floats generated per chunk in the chunked path.
CHUNK_FLOATS = 2**21


# --------------------------------------------------------------------------- joint actions


def joint_index(actions: Array, num_actions: int) -> Array:
    """Joint-action index of ``actions [..., N]`` (mixed radix, agent 0 most significant).

    ``joint = sum_i a_i * A^(N-1-i)``, int32; valid while ``A^N < 2^31``.
    """
    actions = jnp.asarray(actions, jnp.int32)
    n = actions.shape[-1]
    powers = jnp.asarray([num_actions ** (n - 1 - i) for i in range(n)], jnp.int32)
    return jnp.sum(actions * powers, axis=-1).astype(jnp.int32)


def joint_actions(index: Array, num_agents: int, num_actions: int) -> Array:
    """Inverse of :func:`joint_index`: ``index [...]`` -> per-agent actions ``[..., N]`` int32."""
    index = jnp.asarray(index, jnp.int32)
    powers = jnp.asarray(
        [num_actions ** (num_agents - 1 - i) for i in range(num_agents)], jnp.int32
    )
    return ((index[..., None] // powers) % num_actions).astype(jnp.int32)


def greedy_probs(q: Array) -> Array:
    """One-hot (float32) of the argmax of ``q [..., A]`` (first maximum on ties)."""
    return jax.nn.one_hot(jnp.argmax(q, axis=-1), q.shape[-1], dtype=jnp.float32)


# --------------------------------------------------------------------------- protocol


@runtime_checkable
class TabularMDP(Protocol):
    """A finite multi-agent MDP exposed for exact evaluation.

    All methods are traceable; ``s`` and ``joint`` are int32 scalars. Rewards are the expected
    *local* rewards (one per agent); ``team_reward_from_local`` must be linear (mean, or pick
    the shared reward) so that the team value is that map applied to the local values.
    """

    num_states: int
    num_agents: int
    num_actions: int  # per agent

    def transition_probs(self, s: Array, joint: Array) -> Array: ...  # [S]

    def expected_rewards(self, s: Array, joint: Array) -> Array: ...  # [N]

    def initial_distribution(self) -> Array: ...  # [S]

    def team_reward_from_local(self, r: Array) -> Array: ...  # [N] -> []

    def state_index(self, env_state: Any) -> Array: ...  # int32


class PolicyValue(NamedTuple):
    """Exact infinite-horizon discounted values of a policy."""

    values: Array  # [S] team value V(s)
    ret: Array  # [] initial_distribution @ values: expected discounted team return
    local_values: Array  # [N, S] value of each agent's local reward


# --------------------------------------------------------------------------- evaluation


def _num_joint(mdp: TabularMDP) -> int:
    return int(mdp.num_actions) ** int(mdp.num_agents)


def _choose_method(mdp: TabularMDP, method: str) -> str:
    if method not in ("auto", "dense", "chunked"):
        raise ConfigError(f"method must be 'auto', 'dense' or 'chunked', got {method!r}")
    if method != "auto":
        return method
    if getattr(mdp, "dense_tables", None) is not None and mdp.dense_tables() is not None:
        return "dense"
    s, n = int(mdp.num_states), int(mdp.num_agents)
    return "dense" if s * _num_joint(mdp) * max(s, n) <= DENSE_LIMIT else "chunked"


def _dense_tables(mdp: TabularMDP) -> tuple[Array, Array]:
    """``P [S, J, S]`` and ``R [S, J, N]``: the MDP's own tables, else built by vmap."""
    tables = mdp.dense_tables() if getattr(mdp, "dense_tables", None) is not None else None
    if tables is not None:
        return tables
    states = jnp.arange(mdp.num_states, dtype=jnp.int32)
    joints = jnp.arange(_num_joint(mdp), dtype=jnp.int32)
    p = jax.vmap(jax.vmap(mdp.transition_probs, (None, 0)), (0, None))(states, joints)
    r = jax.vmap(jax.vmap(mdp.expected_rewards, (None, 0)), (0, None))(states, joints)
    return p, r


def _chunk_digits(mdp: TabularMDP, chunk_size: int | None) -> int:
    """Number ``k`` of trailing agents enumerated inside one chunk of ``A^k`` joint actions."""
    num_s, n, num_a = int(mdp.num_states), int(mdp.num_agents), int(mdp.num_actions)
    if chunk_size is None:
        chunk_size = max(1, CHUNK_FLOATS // (num_s * max(num_s, n)))
    k = 0
    while k < n and num_a ** (k + 1) <= chunk_size and num_a > 1:
        k += 1
    return n if num_a == 1 else k


def _chunked_moments(mdp: TabularMDP, probs_of: Any, k: int) -> tuple[Array, Array]:
    """``P_pi [S, S]``, ``R_pi [S, N]`` summed over chunks of ``A^k`` joint actions.

    Chunk ``c`` holds the joint actions ``c * A^k + [0, A^k)``: the first ``N - k`` agents'
    actions are the digits of ``c``, the last ``k`` agents' run over all combinations.
    ``probs_of(c) -> [S, A^k]`` gives the policy's probability of each of them.
    """
    num_s, n, num_a = int(mdp.num_states), int(mdp.num_agents), int(mdp.num_actions)
    chunk = num_a**k
    num_chunks = num_a ** (n - k)
    states = jnp.arange(num_s, dtype=jnp.int32)
    rows = jax.vmap(jax.vmap(mdp.transition_probs, (None, 0)), (0, None))
    rews = jax.vmap(jax.vmap(mdp.expected_rewards, (None, 0)), (0, None))

    def body(carry, c):
        p_acc, r_acc = carry
        js = c * chunk + jnp.arange(chunk, dtype=jnp.int32)
        w = probs_of(c)  # [S, C]
        p_acc = p_acc + jnp.einsum("sc,sct->st", w, rows(states, js))
        r_acc = r_acc + jnp.einsum("sc,scn->sn", w, rews(states, js))
        return (p_acc, r_acc), None

    init = (jnp.zeros((num_s, num_s), jnp.float32), jnp.zeros((num_s, n), jnp.float32))
    (p_pi, r_pi), _ = jax.lax.scan(body, init, jnp.arange(num_chunks, dtype=jnp.int32))
    return p_pi, r_pi


def _solve(mdp: TabularMDP, p_pi: Array, r_pi: Array, gamma: Array | float) -> PolicyValue:
    num_s = int(mdp.num_states)
    r_team = jax.vmap(mdp.team_reward_from_local)(r_pi)  # [S]
    lhs = jnp.eye(num_s, dtype=p_pi.dtype) - gamma * p_pi
    rhs = jnp.concatenate([r_team[:, None], r_pi], axis=1)  # [S, 1 + N]
    sol = jnp.linalg.solve(lhs, rhs)
    values = sol[:, 0]
    return PolicyValue(
        values=values,
        ret=mdp.initial_distribution() @ values,
        local_values=sol[:, 1:].T,
    )


def _outer_product(local_probs: Array) -> Array:
    """``[M, S, A]`` -> ``[S, A^M]``: product distribution, first agent most significant."""
    out = jnp.ones((local_probs.shape[1], 1), local_probs.dtype)
    for i in range(local_probs.shape[0]):  # static loop over agents
        out = (out[:, :, None] * local_probs[i][:, None, :]).reshape(out.shape[0], -1)
    return out


def _product_chunk_fn(local_probs: Array, k: int) -> Any:
    """``c -> [S, A^k]`` product probabilities of the joint actions of chunk ``c``."""
    n, num_a = local_probs.shape[0], local_probs.shape[2]
    suffix = _outer_product(local_probs[n - k :])  # [S, A^k], shared by every chunk

    def probs_of(c: Array) -> Array:
        if k == n:
            return suffix
        digits = joint_actions(c, n - k, num_a)  # [N - k]
        head = local_probs[jnp.arange(n - k), :, digits]  # [N - k, S]
        return jnp.prod(head, axis=0)[:, None] * suffix

    return probs_of


def evaluate_joint_policy(
    mdp: TabularMDP,
    joint_probs: Array,
    gamma: Array | float,
    *,
    method: str = "auto",
    chunk_size: int | None = None,
) -> PolicyValue:
    """Exact values of a joint policy ``joint_probs [S, A^N]`` (rows sum to 1).

    For centralized learners that own the joint action. Jit/vmap-able in ``joint_probs``
    and ``gamma``; ``mdp``, ``method`` and ``chunk_size`` are static.
    """
    joint_probs = jnp.asarray(joint_probs, jnp.float32)
    expected = (int(mdp.num_states), _num_joint(mdp))
    if joint_probs.shape != expected:
        raise ConfigError(f"joint_probs must have shape {expected}, got {joint_probs.shape}")
    if _choose_method(mdp, method) == "dense":
        p, r = _dense_tables(mdp)
        p_pi = jnp.einsum("sj,sjt->st", joint_probs, p)
        r_pi = jnp.einsum("sj,sjn->sn", joint_probs, r)
    else:
        k = _chunk_digits(mdp, chunk_size)
        blocks = joint_probs.reshape(joint_probs.shape[0], -1, int(mdp.num_actions) ** k)
        p_pi, r_pi = _chunked_moments(mdp, lambda c: blocks[:, c], k)
    return _solve(mdp, p_pi, r_pi, gamma)


def evaluate_product_policy(
    mdp: TabularMDP,
    local_probs: Array,
    gamma: Array | float,
    *,
    method: str = "auto",
    chunk_size: int | None = None,
) -> PolicyValue:
    """Exact values of the product policy ``pi(a|s) = prod_i pi_i(a_i|s)``.

    ``local_probs [N, S, A]``: agent i's action distribution in each state. Jit/vmap-able in
    ``local_probs`` and ``gamma``; ``mdp``, ``method`` and ``chunk_size`` are static.
    """
    local_probs = jnp.asarray(local_probs, jnp.float32)
    expected = (int(mdp.num_agents), int(mdp.num_states), int(mdp.num_actions))
    if local_probs.shape != expected:
        raise ConfigError(f"local_probs must have shape {expected}, got {local_probs.shape}")
    if _choose_method(mdp, method) == "dense":
        p, r = _dense_tables(mdp)
        jp = _outer_product(local_probs)
        p_pi = jnp.einsum("sj,sjt->st", jp, p)
        r_pi = jnp.einsum("sj,sjn->sn", jp, r)
    else:
        k = _chunk_digits(mdp, chunk_size)
        p_pi, r_pi = _chunked_moments(mdp, _product_chunk_fn(local_probs, k), k)
    return _solve(mdp, p_pi, r_pi, gamma)


def product_to_joint(local_probs: Array) -> Array:
    """Joint distribution ``[S, A^N]`` of the product of ``local_probs [N, S, A]``."""
    return _outer_product(jnp.asarray(local_probs))
