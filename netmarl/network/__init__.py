"""Communication networks: graphs, weight rules, `mix` (the only channel), tracking, audit."""

from netmarl.network.audit import audit_locality, dependency_reach, sensitivity_matrix
from netmarl.network.graphs import TOPOLOGIES, Graph, graph_from_adjacency, make_graph
from netmarl.network.network import (
    MixStats,
    Network,
    agent_map,
    floats_per_edge_per_round,
    make_network,
)
from netmarl.network.tracking import (
    TrackingState,
    dgd_step,
    diging_step,
    tracking_init,
    tracking_update,
)
from netmarl.network.weights import (
    WEIGHT_RULES,
    check_weight_matrix,
    laplacian,
    max_degree,
    metropolis_hastings,
    second_largest_eigenvalue_modulus,
    weight_matrix,
)

__all__ = [
    "TOPOLOGIES",
    "WEIGHT_RULES",
    "Graph",
    "MixStats",
    "Network",
    "TrackingState",
    "agent_map",
    "audit_locality",
    "check_weight_matrix",
    "dependency_reach",
    "dgd_step",
    "diging_step",
    "floats_per_edge_per_round",
    "graph_from_adjacency",
    "laplacian",
    "make_graph",
    "make_network",
    "max_degree",
    "metropolis_hastings",
    "second_largest_eigenvalue_modulus",
    "sensitivity_matrix",
    "tracking_init",
    "tracking_update",
    "weight_matrix",
]
