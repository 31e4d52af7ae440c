"""Communication graphs: who may talk to whom.

A graph is an undirected simple graph over the N agents, stored as a boolean adjacency matrix
(host-side numpy; graphs are fixed configuration, not traced data). Topologies follow
ALGORITHMS.md "Communication network": ring, line, star, complete, 2-D grid, Erdős–Rényi,
random graph with exactly E edges, and custom adjacency.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from netmarl.errors import NetworkError, unknown_name

TOPOLOGIES = ("ring", "line", "star", "complete", "grid", "erdos_renyi", "random_edges", "custom")


@dataclass(frozen=True, eq=False)
class Graph:
    """An undirected simple graph on agents 0..N-1 (symmetric bool adjacency, zero diagonal)."""

    adjacency: np.ndarray
    name: str = "custom"

    def __post_init__(self) -> None:
        adj = _validated_adjacency(self.adjacency)
        adj.setflags(write=False)  # frozen means frozen: no silent edits of the topology
        object.__setattr__(self, "adjacency", adj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Graph) and np.array_equal(self.adjacency, other.adjacency)

    def __hash__(self) -> int:
        return hash((self.num_agents, self.adjacency.tobytes()))

    def __repr__(self) -> str:
        n, e = self.num_agents, self.num_edges
        return f"Graph(name={self.name!r}, num_agents={n}, num_edges={e})"

    @property
    def num_agents(self) -> int:
        return int(self.adjacency.shape[0])

    @property
    def edges(self) -> list[tuple[int, int]]:
        """Undirected edges as (i, j) with i < j, in row-major order."""
        i, j = np.nonzero(np.triu(self.adjacency, 1))
        return [(int(a), int(b)) for a, b in zip(i, j, strict=True)]

    @property
    def num_edges(self) -> int:
        return int(np.triu(self.adjacency, 1).sum())

    @property
    def degrees(self) -> np.ndarray:
        return self.adjacency.sum(axis=1).astype(np.int64)

    def neighbors(self, i: int) -> list[int]:
        return [int(j) for j in np.nonzero(self.adjacency[i])[0]]

    def components(self) -> list[list[int]]:
        """Connected components (each sorted), ordered by their smallest agent."""
        dist = self.hop_distances()
        seen: set[int] = set()
        comps = []
        for start in range(self.num_agents):
            if start not in seen:
                reach = np.nonzero(dist[start] < self.num_agents)[0]
                seen.update(int(r) for r in reach)
                comps.append([int(r) for r in reach])
        return comps

    def is_connected(self) -> bool:
        return bool((self.hop_distances() < self.num_agents).all())

    def hop_distances(self) -> np.ndarray:
        """BFS hop counts [N, N]; unreachable pairs get the sentinel N (> any real distance).

        After k consensus rounds agent i can only have heard from agents at distance <= k,
        which is what the locality audit checks.
        """
        n = self.num_agents
        dist = np.full((n, n), n, dtype=np.int64)
        nbrs = [np.nonzero(row)[0] for row in self.adjacency]
        for s in range(n):
            dist[s, s] = 0
            queue = deque([s])
            while queue:
                u = queue.popleft()
                for v in nbrs[u]:
                    if dist[s, v] == n:
                        dist[s, v] = dist[s, u] + 1
                        queue.append(v)
        return dist


def _validated_adjacency(adj: Any) -> np.ndarray:
    """A bool copy of `adj`, or one NetworkError saying what is wrong and how to fix it."""
    if isinstance(adj, nx.Graph):
        if adj.is_directed():
            raise NetworkError("communication graphs are undirected: pass nx.Graph, not DiGraph")
        adj = nx.to_numpy_array(adj, nodelist=sorted(adj.nodes))
    a = np.asarray(adj)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise NetworkError(f"adjacency must be a square [N, N] matrix, got shape {a.shape}")
    if a.shape[0] < 2:
        raise NetworkError(
            f"a network needs at least 2 agents, got {a.shape[0]}; "
            "for a single agent use a non-networked algorithm"
        )
    if not np.isin(a, (0, 1)).all():
        raise NetworkError("adjacency entries must be 0/1 (or bool); weights go in Network.weights")
    a = a.astype(bool)
    if a.diagonal().any():
        loops = np.nonzero(a.diagonal())[0].tolist()
        raise NetworkError(f"adjacency has self-loops at agents {loops}; set its diagonal to 0")
    if not (a == a.T).all():
        i, j = np.argwhere(a != a.T)[0]
        raise NetworkError(
            f"adjacency is not symmetric (entry [{i}, {j}] differs from [{j}, {i}]); "
            "communication links are undirected: use (adj | adj.T)"
        )
    return a.copy()


def graph_from_adjacency(adj: Any, name: str = "custom") -> Graph:
    """A Graph from a 0/1 matrix or a networkx.Graph (nodes taken in sorted order)."""
    return Graph(np.asarray(_validated_adjacency(adj)), name)


def _from_edges(n: int, edges: Any, name: str) -> Graph:
    adj = np.zeros((n, n), dtype=bool)
    for i, j in edges:
        if i != j:
            adj[i, j] = adj[j, i] = True
    return Graph(adj, name)


def _grid_rows(n: int, rows: int | None) -> int:
    if rows is None:  # the most square factorisation rows x cols, rows <= cols
        return max(r for r in range(1, int(np.sqrt(n)) + 1) if n % r == 0)
    if rows < 1 or n % rows:
        divisors = [r for r in range(1, n + 1) if n % r == 0]
        raise NetworkError(
            f"grid rows={rows} does not divide num_agents={n}; pick rows from {divisors}"
        )
    return rows


def make_graph(
    topology: str,
    num_agents: int | None = None,
    *,
    seed: int = 0,
    edge_prob: float | None = None,
    num_edges: int | None = None,
    rows: int | None = None,
    adjacency: Any = None,
) -> Graph:
    """Build a named topology; random ones ("erdos_renyi", "random_edges") are seeded.

    "grid" is a rows x cols lattice (default: the most square factorisation of N; a prime N
    gives a 1 x N grid, i.e. a line). "ring" with N = 2 is a single edge.
    """
    if topology not in TOPOLOGIES:
        raise unknown_name("topology", topology, TOPOLOGIES)
    used = {
        "edge_prob": (edge_prob, "erdos_renyi"),
        "num_edges": (num_edges, "random_edges"),
        "rows": (rows, "grid"),
        "adjacency": (adjacency, "custom"),
    }
    for arg, (value, owner) in used.items():
        if value is not None and topology != owner:
            raise NetworkError(f"{arg} is only used by topology {owner!r}, not {topology!r}")
    if topology == "custom":
        if adjacency is None:
            raise NetworkError("topology 'custom' needs adjacency= (a 0/1 matrix or nx.Graph)")
        graph = graph_from_adjacency(adjacency)
        if num_agents is not None and graph.num_agents != num_agents:
            raise NetworkError(
                f"custom adjacency has {graph.num_agents} agents but num_agents={num_agents}"
            )
        return graph
    if num_agents is None or num_agents < 2:
        raise NetworkError(
            f"a network needs at least 2 agents, got num_agents={num_agents}; "
            "for a single agent use a non-networked algorithm"
        )
    n = int(num_agents)
    rng = np.random.default_rng(seed)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    if topology == "ring":
        edges = [(i, (i + 1) % n) for i in range(n)]
    elif topology == "line":
        edges = [(i, i + 1) for i in range(n - 1)]
    elif topology == "star":
        edges = [(0, i) for i in range(1, n)]
    elif topology == "complete":
        edges = pairs
    elif topology == "grid":
        r = _grid_rows(n, rows)
        c = n // r
        idx = np.arange(n).reshape(r, c)
        edges = list(zip(idx[:, :-1].ravel(), idx[:, 1:].ravel(), strict=True))
        edges += list(zip(idx[:-1, :].ravel(), idx[1:, :].ravel(), strict=True))
        topology = f"grid{r}x{c}"
    elif topology == "erdos_renyi":
        if edge_prob is None or not 0.0 <= edge_prob <= 1.0:
            raise NetworkError(f"erdos_renyi needs edge_prob in [0, 1], got {edge_prob}")
        keep = rng.random(len(pairs)) < edge_prob
        edges = [p for p, k in zip(pairs, keep, strict=True) if k]
    else:  # random_edges: exactly E edges, uniformly among all N(N-1)/2 pairs
        if num_edges is None or not 0 <= num_edges <= len(pairs):
            raise NetworkError(
                f"random_edges needs num_edges in [0, N(N-1)/2 = {len(pairs)}], got {num_edges}"
            )
        edges = [pairs[k] for k in rng.choice(len(pairs), size=num_edges, replace=False)]
    return _from_edges(n, edges, topology)
