"""Locality audit: prove, with autodiff, that an update only uses what the network delivered.

After K consensus rounds agent i can only have heard from agents within K hops. So the
Jacobian of agent i's output with respect to agent j's input must be exactly zero whenever
hops(i, j) > K (DESIGN.md, "The decentralization boundary"). `audit_locality` measures
S[i, j] = |d output_i / d input_j| with vector-Jacobian products against random cotangents
(one per output agent and probe; a true dependency survives a random projection with
probability 1) and raises `LocalityViolation` on any forbidden non-zero.

Use it in the tests of EVERY networked algorithm: pass the update for one training step
(inputs = per-agent params / data / rewards with a leading agent axis) and the number of
communication rounds that step performs. Only float input leaves are probed (PRNG keys and
integer data are skipped). On a time-varying graph audit against the base graph: dropped
links only shrink the reach. The audit can miss a dependency whose derivative happens to be
zero at the probe point (e.g. a dead ReLU), never the other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from netmarl import kernels
from netmarl.errors import LocalityViolation, NetworkError
from netmarl.network.graphs import Graph
from netmarl.network.network import Network


def _is_float(x: Any) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.inexact)


def sensitivity_matrix(
    update_fn: Callable[[Any], Any], inputs: Any, *, num_probes: int = 2, seed: int = 0
) -> np.ndarray:
    """S[i, j] = max over probes of sum |c_i^T d out_i / d in_j| (float leaves only)."""
    leaves, treedef = jax.tree_util.tree_flatten(inputs)
    float_pos = [k for k, leaf in enumerate(leaves) if _is_float(leaf)]
    if not float_pos:
        raise NetworkError("audit_locality found no float input leaves to probe")
    n = jnp.shape(leaves[float_pos[0]])[0]

    def f(float_leaves: list) -> list:
        full = list(leaves)
        for k, leaf in zip(float_pos, float_leaves, strict=True):
            full[k] = leaf
        out = jax.tree_util.tree_leaves(update_fn(jax.tree_util.tree_unflatten(treedef, full)))
        return [o for o in out if _is_float(o)]

    @jax.jit
    def compute(float_leaves: list, key: jax.Array) -> jax.Array:
        outs, vjp_fn = jax.vjp(f, float_leaves)
        for o in outs:
            if o.ndim == 0 or o.shape[0] != n:
                raise NetworkError(f"update output leaf of shape {o.shape} lacks agent axis {n}")
        onehot = jnp.eye(n)  # cotangent b = (probe, agent i) lives on agent i's slice only

        # one normal draw for all leaves: each threefry draw costs about a second to compile
        sizes = [o.size for o in outs]
        draws = jax.random.normal(key, (num_probes, sum(sizes)))
        offsets = np.cumsum([0, *sizes])

        def cotangent(o: jax.Array, start: int) -> jax.Array:
            c = draws[:, start : start + o.size].reshape((num_probes,) + o.shape).astype(o.dtype)
            mask = onehot.reshape((1, n, n) + (1,) * (o.ndim - 1)).astype(o.dtype)
            return (c[:, None] * mask).reshape((num_probes * n,) + o.shape)

        cts = [cotangent(o, int(start)) for o, start in zip(outs, offsets, strict=False)]
        (grads,) = jax.vmap(vjp_fn)(cts)
        per_leaf = [jnp.abs(g).reshape(num_probes, n, n, -1).sum(-1) for g in grads]
        return sum(per_leaf).max(axis=0)

    # the audit differentiates the update itself; the native GRU kernels are differentiated
    # only once (by the update), so trace with the JAX scans, which compute the same function
    with kernels.switched_off():
        return np.asarray(compute([leaves[k] for k in float_pos], jax.random.PRNGKey(seed)))


def audit_locality(
    update_fn: Callable[[Any], Any],
    inputs: Any,
    network_or_graph: Network | Graph,
    rounds: int,
    *,
    num_probes: int = 2,
    seed: int = 0,
) -> np.ndarray:
    """Return S [N, N]; raise LocalityViolation if S[i, j] != 0 for any hops(i, j) > rounds."""
    graph = network_or_graph.graph if isinstance(network_or_graph, Network) else network_or_graph
    s = sensitivity_matrix(update_fn, inputs, num_probes=num_probes, seed=seed)
    hops = graph.hop_distances()
    if s.shape != hops.shape:
        raise NetworkError(f"update has {s.shape[0]} agents but the graph {graph.num_agents}")
    bad = np.argwhere((s != 0) & (hops > rounds))
    if len(bad):
        n = graph.num_agents
        pairs = [
            f"(agent {i} <- agent {j}, hops={'unreachable' if hops[i, j] >= n else hops[i, j]},"
            f" sensitivity={s[i, j]:.3g})"
            for i, j in bad[:10]
        ]
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise LocalityViolation(
            f"update uses data from agents more than {rounds} hops away on graph "
            f"{graph.name!r}: {', '.join(pairs)}{more}. Route it through network.mix "
            "(one hop per round) or raise the number of rounds"
        )
    return s


def dependency_reach(s: np.ndarray, network_or_graph: Network | Graph) -> int:
    """The largest hop distance over which S shows a dependency (the rounds an update needs)."""
    graph = network_or_graph.graph if isinstance(network_or_graph, Network) else network_or_graph
    hops = graph.hop_distances()
    return int(hops[np.asarray(s) != 0].max(initial=0))
