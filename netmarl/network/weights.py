"""Consensus weight rules: adjacency -> symmetric, doubly stochastic W, zero off the edges.

Each rule is a pure function of the *current* adjacency, so it also works on a traced,
time-varying graph (links dropped this round). With a jax array it returns a jnp matrix in
the default float dtype (float32 unless x64 is on); with a numpy array it returns a float64
numpy matrix, which the static-graph path uses to precompute W^K exactly on the host.
Symmetric + doubly stochastic + connected => x <- W x converges to the average, at the rate
of the second-largest eigenvalue modulus (Li & Jia, Lemma 2, eq. (41)-(43)).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from netmarl.errors import NetworkError, unknown_name


def _xp_adjacency(adj: Any) -> tuple[Any, Any]:
    """(array module, float 0/1 adjacency): jnp for jax arrays (maybe traced), else numpy."""
    if isinstance(adj, jax.Array):
        return jnp, jnp.asarray(adj, dtype=jnp.result_type(float))
    return np, np.asarray(adj, dtype=np.float64)


def metropolis_hastings(adj: Any) -> Any:
    """a_ij = 1/(1 + max(d_i, d_j)) on edges, a_ii = 1 - sum_j a_ij.

    The DVDN authors' default: each weight needs only the two endpoint degrees (local).
    """
    xp, a = _xp_adjacency(adj)
    deg = a.sum(axis=1)
    off = a / (1.0 + xp.maximum(deg[:, None], deg[None, :]))
    return off + xp.diag(1.0 - off.sum(axis=1))


def max_degree(adj: Any) -> Any:
    """Li & Jia eq. (41): a_ij = 1/(d+1) on edges, a_ii = 1 - d_i/(d+1), d = max degree.

    On a time-varying graph d is the max degree of the current round's graph.
    """
    xp, a = _xp_adjacency(adj)
    deg = a.sum(axis=1)
    d = deg.max()
    return a / (d + 1.0) + xp.diag(1.0 - deg / (d + 1.0))


def laplacian(adj: Any) -> Any:
    """W = I - L/(d_max+1) with L = D - A the graph Laplacian.

    Entry-wise this equals `max_degree` (eq. (41)); it is kept under the name the consensus
    literature uses (Xiao & Boyd 2004, constant edge weight 1/(d_max+1)).
    """
    xp, a = _xp_adjacency(adj)
    deg = a.sum(axis=1)
    lap = xp.diag(deg) - a
    return xp.eye(a.shape[0], dtype=a.dtype) - lap / (deg.max() + 1.0)


WEIGHT_RULES: dict[str, Callable[[Any], Any]] = {
    "metropolis": metropolis_hastings,
    "max_degree": max_degree,
    "laplacian": laplacian,
}


def weight_matrix(rule: str, adj: Any) -> Any:
    """W for the named rule on adjacency `adj` (see WEIGHT_RULES)."""
    if rule not in WEIGHT_RULES:
        raise unknown_name("weight rule", rule, WEIGHT_RULES)
    return WEIGHT_RULES[rule](adj)


_FIX = "use a weight rule such as 'metropolis' or normalise your matrix"


def check_weight_matrix(w: Any, adjacency: Any = None, atol: float = 1e-6) -> np.ndarray:
    """Host-side check that W is a valid consensus matrix; returns it as float64 numpy.

    Raises NetworkError naming the first defect: shape, asymmetry, a row/column whose sum is
    not 1, a negative entry, or weight on a pair that is not an edge of `adjacency`.
    """
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise NetworkError(f"weight matrix must be square [N, N], got shape {w.shape}")
    if not np.isfinite(w).all():
        raise NetworkError("weight matrix has non-finite entries")
    asym = np.abs(w - w.T)
    if asym.max() > atol:
        i, j = np.unravel_index(asym.argmax(), asym.shape)
        raise NetworkError(
            f"weight matrix is not symmetric: W[{i},{j}]={w[i, j]:.6g} but W[{j},{i}]="
            f"{w[j, i]:.6g}; {_FIX}"
        )
    for axis, what in ((1, "row"), (0, "column")):
        err = w.sum(axis=axis) - 1.0
        k = int(np.abs(err).argmax())
        if abs(err[k]) > atol:
            raise NetworkError(
                f"weight matrix is not doubly stochastic: {what} {k} sums to {1 + err[k]:.6g} "
                f"(off by {err[k]:+.3g}); {_FIX}"
            )
    if w.min() < -atol:
        i, j = np.unravel_index(w.argmin(), w.shape)
        raise NetworkError(f"weight matrix has a negative entry W[{i},{j}]={w[i, j]:.6g}; {_FIX}")
    if adjacency is not None:
        allowed = np.asarray(adjacency, dtype=bool) | np.eye(w.shape[0], dtype=bool)
        if allowed.shape != w.shape:
            raise NetworkError(f"weight matrix {w.shape} and graph {allowed.shape} differ in size")
        bad = np.argwhere(~allowed & (np.abs(w) > atol))
        if len(bad):
            i, j = bad[0]
            raise NetworkError(
                f"weight matrix puts weight {w[i, j]:.6g} on ({i}, {j}), which is not an edge of "
                f"the graph ({len(bad)} such entries); agents can only weigh their neighbours"
            )
    return w


def second_largest_eigenvalue_modulus(w: Any) -> float:
    """SLEM of W: the per-round contraction of the disagreement ||x - mean|| (consensus rate)."""
    moduli = np.sort(np.abs(np.linalg.eigvals(np.asarray(w, dtype=np.float64))))[::-1]
    return float(moduli[1])
