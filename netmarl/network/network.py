"""The network: the ONLY way networked algorithms communicate.

Contract (DESIGN.md, "The decentralization boundary"):

* Per-agent state is a pytree whose leaves have a leading agent axis N. Algorithm code is
  written for ONE agent and lifted over that axis with `agent_map` (= `jax.vmap`); it never
  indexes another agent's slice.
* Everything that crosses an edge goes through `Network.mix(x, key)`, which returns
  `sum_j W_ij x_j` per leaf, K rounds, plus `MixStats` counting what was sent.

These two operations are the whole interface. A multi-process backend (one MPI rank per
agent, each holding a leading axis of size 1, neighbour-only messages) implements the same
`agent_map` and `mix`, so algorithm code runs unchanged on a cluster. The simulated backend
here does it with dense matrices: for a static graph W^K is precomputed once on the host
(float64) and applied with one einsum per leaf; for time-varying graphs a fresh W is drawn
every round inside a `lax.scan`. Both paths work under jit and vmap (e.g. over seeds).

Time-varying models (ALGORITHMS.md): (a) `link_drop=p`: each base-graph edge is down with
probability p, redrawn every round; (b) `random_edges=E`: each round a graph with exactly E
edges drawn uniformly from the base graph's edges (Zhang et al. 2018 use the complete graph
and E = 2(N-1)). Either way the base graph bounds who can ever hear whom.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from netmarl.errors import ConfigError, NetworkError, unknown_name
from netmarl.network.graphs import Graph, make_graph
from netmarl.network.weights import WEIGHT_RULES, check_weight_matrix

_HIGHEST = jax.lax.Precision.HIGHEST  # no TF32/bf16 shortcuts: consensus must be exact-ish


class MixStats(NamedTuple):
    """What crossed the edges. Counts are float32 so long runs cannot overflow an int32.

    `messages` are directed (2 per active undirected edge per round); `floats_sent` is
    messages x floats per agent payload. Accumulate with `a + b` (field-wise).
    """

    rounds: jax.Array
    messages: jax.Array
    floats_sent: jax.Array

    @classmethod
    def zero(cls) -> MixStats:
        return cls(jnp.int32(0), jnp.float32(0), jnp.float32(0))

    def __add__(self, other: MixStats) -> MixStats:  # type: ignore[override]
        return MixStats(*(a + b for a, b in zip(self, other, strict=True)))


def floats_per_edge_per_round(stats: MixStats, num_edges: int) -> jax.Array:
    """Floats sent per undirected base-graph edge per round (both directions together)."""
    denom = jnp.maximum(stats.rounds, 1).astype(jnp.float32) * max(num_edges, 1)
    return jnp.where(stats.rounds > 0, stats.floats_sent / denom, 0.0)


def agent_map(fn: Callable[..., Any], *args: Any) -> Any:
    """Per-agent local computation: `fn` is written for one agent, mapped over the agent axis."""
    return jax.vmap(fn)(*args)


@dataclass(frozen=True, eq=False)
class Network:
    """Graph + weight rule + rounds + link-drop model. See the module docstring."""

    graph: Graph
    weights: str | np.ndarray = "metropolis"
    rounds: int = 1
    link_drop: float = 0.0
    random_edges: int | None = None
    require_connected: bool = True
    _powers: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.graph, Graph):
            raise ConfigError(f"Network.graph must be a Graph (see make_graph), got {self.graph!r}")
        if self.require_connected and not self.graph.is_connected():
            comps = self.graph.components()
            raise NetworkError(
                f"graph {self.graph.name!r} is disconnected: components {comps}; consensus "
                "cannot reach the average. Use a connected topology (e.g. 'ring') or pass "
                "require_connected=False"
            )
        if isinstance(self.rounds, bool) or not isinstance(self.rounds, int) or self.rounds < 0:
            raise ConfigError(
                f"rounds must be an int >= 0 (0 = no communication), got {self.rounds!r}"
            )
        if not 0.0 <= self.link_drop < 1.0:
            raise ConfigError(
                f"link_drop must be in [0, 1) (probability an edge is down), got {self.link_drop}"
            )
        if self.random_edges is not None:
            m = self.graph.num_edges
            if self.link_drop > 0:
                raise ConfigError("choose one time-varying model: link_drop or random_edges")
            if not 0 <= self.random_edges <= m:
                raise ConfigError(
                    f"random_edges={self.random_edges} must be in [0, {m}]: each round's edges "
                    f"are drawn from the base graph {self.graph.name!r} ({m} edges); use "
                    "topology='complete' for Zhang et al.'s random graphs"
                )
        if isinstance(self.weights, str):
            if self.weights not in WEIGHT_RULES:
                raise unknown_name("weight rule", self.weights, WEIGHT_RULES)
            w = WEIGHT_RULES[self.weights](self.graph.adjacency)  # numpy in -> float64 out
        else:
            if self.time_varying:
                raise ConfigError(
                    "a custom weight matrix only fits a static graph; with link_drop or "
                    "random_edges pass a weight rule name such as 'metropolis'"
                )
            w = check_weight_matrix(self.weights, self.graph.adjacency)
        self._powers[1] = w

    def _key(self) -> tuple:
        w = self.weights if isinstance(self.weights, str) else np.asarray(self.weights).tobytes()
        return (self.graph, w, self.rounds, self.link_drop, self.random_edges)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Network) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    @property
    def num_agents(self) -> int:
        return self.graph.num_agents

    @property
    def num_edges(self) -> int:
        """Undirected edges of the base graph."""
        return self.graph.num_edges

    @property
    def time_varying(self) -> bool:
        return self.link_drop > 0 or self.random_edges is not None

    def hop_distances(self) -> np.ndarray:
        """Base-graph hop counts; dropped links only shrink who can be heard."""
        return self.graph.hop_distances()

    def _power(self, k: int) -> np.ndarray:
        """W^k of the static graph, float64 on the host, cached per k."""
        if k not in self._powers:
            self._powers[k] = np.linalg.matrix_power(self._powers[1], k)
        return self._powers[k]

    def round_adjacency(self, key: jax.Array) -> jax.Array:
        """This round's active links (bool [N, N]); the base graph if static."""
        base = jnp.asarray(self.graph.adjacency)
        if self.link_drop > 0:  # model (a): each edge up w.p. 1-p, independently
            up = jnp.triu(jax.random.bernoulli(key, 1.0 - self.link_drop, base.shape), 1)
            return base & (up | up.T)
        if self.random_edges is not None:  # model (b): exactly E of the base edges
            iu, ju = np.nonzero(np.triu(self.graph.adjacency, 1))
            pick = jax.random.choice(key, len(iu), (self.random_edges,), replace=False)
            on = jnp.zeros(len(iu), bool).at[pick].set(True)
            adj = jnp.zeros(base.shape, bool).at[iu, ju].set(on)
            return adj | adj.T
        return base

    def weight_matrix(self, key: jax.Array | None = None) -> jax.Array:
        """One round's W [N, N] (needs a key when the graph is time-varying)."""
        if not self.time_varying:
            return jnp.asarray(self._powers[1], dtype=jnp.result_type(float))
        self._need_key(key)
        return WEIGHT_RULES[self.weights](self.round_adjacency(key))

    def _need_key(self, key: Any) -> None:
        if key is None:
            raise ConfigError(
                "this network is time-varying (link_drop or random_edges): pass a PRNG key to "
                "mix / weight_matrix, and a fresh one every communication step"
            )

    def mix(
        self, x: Any, key: jax.Array | None = None, rounds: int | None = None
    ) -> tuple[Any, MixStats]:
        """K rounds of x_i <- sum_j W_ij x_j on every leaf (leading axis = agents).

        `rounds` overrides self.rounds (a static int). Time-varying: round r uses the graph
        drawn from `jax.random.split(key, K)[r]`, so the same key gives the same graphs.
        """
        k = self.rounds if rounds is None else operator.index(rounds)
        if k < 0:
            raise ConfigError(f"rounds must be >= 0, got {k}")
        leaves = jax.tree_util.tree_leaves(x)
        for leaf in leaves:
            if jnp.ndim(leaf) == 0 or jnp.shape(leaf)[0] != self.num_agents:
                raise NetworkError(
                    f"mix needs a leading agent axis of size {self.num_agents} on every leaf, "
                    f"got a leaf of shape {jnp.shape(leaf)}"
                )
            if not jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
                raise NetworkError(
                    f"mix averages real numbers; got a leaf of dtype {jnp.result_type(leaf)}: "
                    "cast it to float or keep it out of the message"
                )
        payload = sum(math.prod(jnp.shape(leaf)[1:]) for leaf in leaves)
        if k == 0:
            return x, MixStats.zero()

        def apply(w: jax.Array, tree: Any) -> Any:
            return jax.tree_util.tree_map(
                lambda l: jnp.einsum("ij,j...->i...", w.astype(l.dtype), l, precision=_HIGHEST),
                tree,
            )

        if not self.time_varying:
            w1 = self._powers[1]
            messages = float(k * np.count_nonzero(w1 - np.diag(np.diag(w1))))
            out = apply(jnp.asarray(self._power(k)), x)
            stats = MixStats(jnp.int32(k), jnp.float32(messages), jnp.float32(messages * payload))
            return out, stats

        self._need_key(key)

        def one_round(carry: tuple[Any, jax.Array], round_key: jax.Array) -> tuple:
            tree, sent = carry
            adj = self.round_adjacency(round_key)
            tree = apply(WEIGHT_RULES[self.weights](adj), tree)
            return (tree, sent + adj.sum(dtype=jnp.float32)), None

        (out, messages), _ = jax.lax.scan(one_round, (x, jnp.float32(0)), jax.random.split(key, k))
        return out, MixStats(jnp.int32(k), messages, messages * payload)


def make_network(
    topology: str = "ring",
    num_agents: int | None = None,
    *,
    weights: str | np.ndarray = "metropolis",
    rounds: int = 1,
    link_drop: float = 0.0,
    random_edges: int | None = None,
    require_connected: bool = True,
    seed: int = 0,
    **graph_kwargs: Any,
) -> Network:
    """Convenience: `Network(make_graph(topology, num_agents, seed=seed, ...), ...)`."""
    graph = make_graph(topology, num_agents, seed=seed, **graph_kwargs)
    return Network(graph, weights, rounds, link_drop, random_edges, require_connected)
