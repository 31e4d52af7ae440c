"""Optimal values of a finite multi-agent MDP by policy iteration, as a reference point.

A centralized planner that knows P and R and owns the joint action: the best any learner
can do. Used to report what share of the uniform-to-optimal gap a learned policy closes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from netmarl.envs.tabular import PolicyValue, TabularMDP, _dense_tables, _solve


def optimal_policy_value(mdp: TabularMDP, gamma: float, max_iter: int = 200) -> PolicyValue:
    """Exact optimal team values by policy iteration (Howard): evaluate exactly, act greedily.

    Needs the dense tables ``[S, A^N, S]`` (fine for the paper's N = 4, 5 MDPs).
    """
    p, r = _dense_tables(mdp)
    r_team = jax.vmap(jax.vmap(mdp.team_reward_from_local))(r)  # [S, J]
    rows = jnp.arange(p.shape[0])

    @jax.jit
    def improve(values: jax.Array) -> tuple[jax.Array, PolicyValue]:
        q = r_team + gamma * jnp.einsum("sjt,t->sj", p, values)
        greedy = jnp.argmax(q, axis=1)
        return greedy, _solve(mdp, p[rows, greedy], r[rows, greedy], gamma)

    values = jnp.zeros(p.shape[0])
    previous = None
    for _ in range(max_iter):
        greedy, value = improve(values)
        greedy = np.asarray(greedy)
        if previous is not None and np.array_equal(greedy, previous):
            break
        previous, values = greedy, value.values
    return value


def optimal_return(mdp: TabularMDP, gamma: float) -> float:
    """Expected discounted team return of an optimal joint policy from the initial state."""
    return float(optimal_policy_value(mdp, gamma).ret)
