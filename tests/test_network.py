"""Tests of the communication network: consensus rates, weights, counting, tracking, audit."""

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest

from netmarl.errors import ConfigError, LocalityViolation, NetworkError
from netmarl.network import (
    TOPOLOGIES,
    WEIGHT_RULES,
    MixStats,
    Network,
    agent_map,
    audit_locality,
    check_weight_matrix,
    dependency_reach,
    dgd_step,
    diging_step,
    floats_per_edge_per_round,
    graph_from_adjacency,
    make_graph,
    make_network,
    second_largest_eigenvalue_modulus,
    tracking_init,
    tracking_update,
    weight_matrix,
)

SMALL_GRAPHS = {
    "ring": dict(num_agents=6),
    "line": dict(num_agents=5),
    "star": dict(num_agents=6),
    "complete": dict(num_agents=5),
    "grid": dict(num_agents=6),
    "erdos_renyi": dict(num_agents=8, edge_prob=0.5, seed=1),
    "random_edges": dict(num_agents=7, num_edges=10, seed=2),
    "custom": dict(adjacency=nx.path_graph(4)),
}


def assert_consensus_matrix(w, adj, atol=1e-6):
    """Symmetric, doubly stochastic, non-negative, zero exactly off the (active) edges."""
    w, adj = np.asarray(w, np.float64), np.asarray(adj, bool)
    check_weight_matrix(w, adj, atol=atol)
    off = ~np.eye(len(w), dtype=bool)
    assert np.all(w[off & ~adj] == 0.0), "weight on a link that is down"
    assert np.all(w[off & adj] > 0.0), "an active link carries no weight"


# ---------------------------------------------------------------------------- graphs


def test_graph_basics():
    ring2 = make_graph("ring", 2)
    assert ring2.edges == [(0, 1)] and ring2.num_edges == 1
    assert make_graph("ring", 5).num_edges == 5
    assert make_graph("line", 5).hop_distances()[0].tolist() == [0, 1, 2, 3, 4]
    star = make_graph("star", 5)
    assert star.degrees.tolist() == [4, 1, 1, 1, 1] and star.neighbors(0) == [1, 2, 3, 4]
    grid = make_graph("grid", 12)  # most square: 3 x 4 -> 3*3 + 2*4 edges
    assert grid.name == "grid3x4" and grid.num_edges == 17
    assert make_graph("grid", 12, rows=2).num_edges == 2 * 5 + 6
    assert make_graph("complete", 6).num_edges == 15
    assert make_graph("random_edges", 9, num_edges=11, seed=3).num_edges == 11
    assert make_graph("random_edges", 9, num_edges=11, seed=3) == make_graph(
        "random_edges", 9, num_edges=11, seed=3
    )
    assert make_graph("erdos_renyi", 6, edge_prob=1.0).num_edges == 15
    assert make_graph("erdos_renyi", 6, edge_prob=0.0).num_edges == 0
    two = graph_from_adjacency(nx.disjoint_union(nx.path_graph(3), nx.path_graph(2)))
    assert not two.is_connected() and two.components() == [[0, 1, 2], [3, 4]]
    assert two.hop_distances()[0, 4] == 5  # unreachable sentinel = N
    assert set(SMALL_GRAPHS) == set(TOPOLOGIES)


# ---------------------------------------------------------------------------- consensus


def _er_connected():
    graphs = (make_graph("erdos_renyi", 10, edge_prob=0.35, seed=s) for s in range(100))
    return next(g for g in graphs if g.is_connected())


@pytest.mark.parametrize(
    "graph",
    [make_graph("ring", 8), make_graph("grid", 9, rows=3), _er_connected()],
    ids=lambda g: g.name,
)
def test_consensus_decays_at_slem_rate(graph):
    with jax.enable_x64(True):
        net = Network(graph)
        w = np.asarray(net.weight_matrix())
        slem = second_largest_eigenvalue_modulus(w)
        assert 0.0 < slem < 1.0
        x0 = jnp.asarray(np.random.default_rng(0).normal(size=(graph.num_agents, 3)))
        mean = x0.mean(axis=0)
        errs, x = [float(jnp.linalg.norm(x0 - mean))], x0
        for _ in range(150):
            x, _ = net.mix(x)
            errs.append(float(jnp.linalg.norm(x - mean)))
            np.testing.assert_allclose(x.mean(axis=0), mean, atol=1e-12)  # mean preserved
        errs = np.asarray(errs)
        ks = np.arange(len(errs))
        assert np.all(errs <= errs[0] * slem**ks * (1 + 1e-9) + 1e-13)
        k = min(int(np.argmax(errs < 1e-9 * errs[0])) or len(errs) - 1, len(errs) - 1)
        assert abs(errs[k] / errs[k - 1] / slem - 1) < 1e-2
        # rounds=K in one call (W^K precomputed) == K single rounds
        xk, stats = net.mix(x0, rounds=25)
        xs = x0
        for _ in range(25):
            xs, _ = net.mix(xs)
        np.testing.assert_allclose(xk, xs, atol=1e-12)
        assert int(stats.rounds) == 25


def test_float32_mix_preserves_mean():
    net = make_network("grid", 9, rounds=7)
    x = jax.random.normal(jax.random.PRNGKey(0), (9, 4, 2))
    y, _ = jax.jit(net.mix)(x)
    assert y.dtype == jnp.float32
    np.testing.assert_allclose(y.mean(0), x.mean(0), atol=1e-6)
    w7 = np.linalg.matrix_power(np.asarray(net.weight_matrix(), np.float64), 7)
    np.testing.assert_allclose(y, np.einsum("ij,jkl->ikl", w7, np.asarray(x)), atol=1e-5)


# ---------------------------------------------------------------------------- weights


@pytest.mark.parametrize("rule", sorted(WEIGHT_RULES))
@pytest.mark.parametrize("topology", sorted(SMALL_GRAPHS))
def test_weight_rules_on_every_topology(rule, topology):
    graph = make_graph(topology, **SMALL_GRAPHS[topology])
    w_jax = weight_matrix(rule, jnp.asarray(graph.adjacency))
    assert w_jax.dtype == jnp.float32
    assert_consensus_matrix(w_jax, graph.adjacency)
    assert_consensus_matrix(weight_matrix(rule, graph.adjacency), graph.adjacency, atol=1e-12)


def test_max_degree_is_li_jia_eq41_on_star():
    graph = make_graph("star", 5)  # centre degree d = 4
    expected = np.zeros((5, 5))
    expected[0, 1:] = expected[1:, 0] = 1 / 5
    expected[0, 0] = 1 - 4 / 5
    expected[np.arange(1, 5), np.arange(1, 5)] = 1 - 1 / 5
    np.testing.assert_array_equal(weight_matrix("max_degree", graph.adjacency), expected)
    np.testing.assert_allclose(weight_matrix("laplacian", graph.adjacency), expected, atol=1e-15)
    mh = weight_matrix("metropolis", graph.adjacency)  # 1/(1+max(4,1)) on each spoke
    np.testing.assert_allclose(mh[0], [1 / 5] * 5)


def test_three_agent_ring_is_complete_and_averages_exactly_in_one_round():
    """Why the DVDN ablation (experiments/dvdn_lbf_ablation.yaml) runs one cell, not three,
    without link drops: on 3 agents the ring is the complete graph, every Metropolis weight
    is 1/3, and 1, 5 or 30 rounds all give the exact average."""
    ring = make_graph("ring", 3)
    np.testing.assert_array_equal(ring.adjacency, make_graph("complete", 3).adjacency)
    np.testing.assert_allclose(weight_matrix("metropolis", ring.adjacency), np.full((3, 3), 1 / 3))
    x = jnp.array([[1.0, -4.0], [2.5, 0.0], [-0.5, 7.0]])
    for rounds in (1, 5, 30):
        y, _ = make_network("ring", 3, rounds=rounds).mix(x)
        np.testing.assert_allclose(y, jnp.broadcast_to(x.mean(0), x.shape), rtol=1e-6)


@pytest.mark.parametrize("p", [0.25, 0.5])
def test_link_drop_rounds_are_valid_and_drop_at_rate_p(p):
    net = make_network("grid", 9, link_drop=p, weights="max_degree")
    keys = jax.random.split(jax.random.PRNGKey(1), 200)
    adjs = np.asarray(jax.vmap(net.round_adjacency)(keys))
    ws = np.asarray(jax.jit(jax.vmap(net.weight_matrix))(keys))
    base = net.graph.adjacency
    for adj, w in zip(adjs, ws, strict=True):
        assert np.all(adj <= base) and np.all(adj == adj.T)  # subset of base edges
        assert_consensus_matrix(w, adj)
    dropped = 1 - adjs.sum() / (len(keys) * base.sum())
    assert abs(dropped - p) < 0.05
    assert len({a.tobytes() for a in adjs}) > 100  # redrawn every round


def test_random_edges_rounds_have_exactly_e_edges():
    net = make_network("complete", 6, random_edges=5)
    keys = jax.random.split(jax.random.PRNGKey(2), 100)
    adjs = np.asarray(jax.vmap(net.round_adjacency)(keys))
    ws = np.asarray(jax.vmap(net.weight_matrix)(keys))
    assert np.all(np.triu(adjs, 1).sum(axis=(1, 2)) == 5)
    for adj, w in zip(adjs, ws, strict=True):
        assert_consensus_matrix(w, adj)
    # every one of the 15 pairs gets drawn, roughly 5/15 of the time
    freq = np.triu(adjs, 1).sum(0)[np.triu_indices(6, 1)] / len(keys)
    assert np.all(freq > 0.15) and np.all(freq < 0.55)


# ---------------------------------------------------------------------------- counting


def test_message_counting():
    x = {"a": jnp.ones((5, 2)), "b": jnp.ones((5, 3, 1))}  # payload 5 floats per agent
    net = make_network("ring", 5, rounds=3)
    y, stats = net.mix(x)
    assert float(stats.floats_sent) == 3 * 2 * 5 * 5 and float(stats.messages) == 3 * 2 * 5
    assert float(floats_per_edge_per_round(stats, net.num_edges)) == 2 * 5
    total = stats + stats + MixStats.zero()
    assert int(total.rounds) == 6 and float(total.floats_sent) == 300

    drop = make_network("ring", 5, rounds=3, link_drop=0.5)
    key = jax.random.PRNGKey(3)
    y, stats = jax.jit(drop.mix)(x, key)
    round_keys = jax.random.split(key, 3)
    adjs = [np.asarray(drop.round_adjacency(k)) for k in round_keys]
    active = sum(int(np.triu(a, 1).sum()) for a in adjs)
    assert float(stats.floats_sent) == 2 * 5 * active and float(stats.messages) == 2 * active
    expected = np.ones((5, 2))  # mix applied the documented per-round graphs, in order
    z = np.arange(10.0).reshape(5, 2)
    for k in round_keys:
        z = np.asarray(drop.weight_matrix(k)) @ z
    np.testing.assert_allclose(y["a"], expected, atol=1e-6)
    np.testing.assert_allclose(drop.mix(jnp.arange(10.0).reshape(5, 2), key)[0], z, atol=1e-5)

    for silent in (make_network("ring", 5, rounds=0), drop):
        y, stats = silent.mix(x, key, rounds=0)
        assert y is x and float(stats.floats_sent) == 0 and int(stats.rounds) == 0


# ---------------------------------------------------------------------------- tracking


def test_diging_reaches_centralized_optimum_where_dgd_stalls():
    rng = np.random.default_rng(0)
    n, m, d = 5, 4, 3
    a = rng.normal(size=(n, m, d))
    b = rng.normal(size=(n, m)) + 3 * rng.normal(size=(n, 1))  # heterogeneous agents
    w_star = np.linalg.lstsq(a.reshape(-1, d), b.reshape(-1), rcond=None)[0]
    eta = 0.02
    with jax.enable_x64(True):
        a_j, b_j = jnp.asarray(a), jnp.asarray(b)

        def grad_fn(w):  # agent i's gradient of its own f_i = 0.5 ||A_i w - b_i||^2
            return agent_map(lambda ai, bi, wi: ai.T @ (ai @ wi - bi), a_j, b_j, w)

        def run(net, key):
            w0 = jnp.zeros((n, d))

            def body(carry, k):
                w, state, v = carry
                w, state, _ = diging_step(net, w, state, grad_fn, eta, k)
                v, _ = dgd_step(net, v, grad_fn, eta, k)
                return (w, state, v), None

            init = (w0, tracking_init(grad_fn(w0)), w0)
            return jax.lax.scan(body, init, jax.random.split(key, 2000))[0]

        for net in (make_network("ring", n), make_network("ring", n, link_drop=0.3)):
            w, state, v = jax.jit(lambda k, net=net: run(net, k))(jax.random.PRNGKey(0))
            assert np.abs(np.asarray(w) - w_star).max() < 1e-6  # every agent, exactly
            assert np.abs(np.asarray(v) - w_star).max() > 1e-3  # DGD: O(eta) bias
            # tracker invariant: mean_i z_i = mean_i g_i (W doubly stochastic)
            np.testing.assert_allclose(state.tracker.mean(0), grad_fn(w).mean(0), atol=1e-10)

        # the optax-facing piece: z <- W z + g_new - g_old
        net = make_network("ring", n)
        g0, g1 = grad_fn(jnp.zeros((n, d))), grad_fn(jnp.ones((n, d)))
        state, stats = tracking_update(net, tracking_init(g0), g1)
        np.testing.assert_allclose(state.tracker, net.mix(g0)[0] + g1 - g0, atol=1e-12)
        assert state.last_grad is g1 and float(stats.floats_sent) == 2 * n * d


# ---------------------------------------------------------------------------- audit


def test_audit_passes_k_round_mix_and_catches_violations():
    k = 2
    net = make_network("line", 6, rounds=k)
    x = {"w": jnp.arange(12.0).reshape(6, 2), "count": jnp.arange(6)}  # int leaf: not probed

    def update(inp):
        return {"w": net.mix(inp["w"])[0] * 2.0, "count": inp["count"] + 1}

    s = audit_locality(update, x, net, rounds=k)
    hops = net.hop_distances()
    np.testing.assert_array_equal(s > 0, hops <= k)  # exactly k hops of reach
    assert dependency_reach(s, net) == k
    with pytest.raises(LocalityViolation, match=r"more than 1 hops.*hops=2"):
        audit_locality(update, x, net, rounds=k - 1)

    def peek(inp):  # reads another agent's slice directly, bypassing the network
        return inp["w"] + jnp.roll(inp["w"], 2, axis=0)

    with pytest.raises(LocalityViolation, match="agent 2 <- agent 0, hops=2"):
        audit_locality(peek, x, net.graph, rounds=1)


def test_audit_a_diging_step_and_a_time_varying_mix():
    net = make_network("ring", 7, link_drop=0.3)
    data = jax.random.normal(jax.random.PRNGKey(0), (7, 3))

    def update(inp):
        grad_fn = lambda w: agent_map(lambda di, wi: wi - di, inp["data"], w)  # noqa: E731
        w, state, _ = diging_step(net, inp["w"], inp["state"], grad_fn, 0.1, inp["key"])
        return w, state

    inputs = {"w": data * 0, "state": tracking_init(-data), "data": data}
    inputs["key"] = jax.random.PRNGKey(1)  # keys are not floats: not probed
    s = audit_locality(update, inputs, net, rounds=1)
    assert dependency_reach(s, net) == 1


# ---------------------------------------------------------------------------- bad input


def test_bad_input_errors_name_the_fix():
    two_parts = np.zeros((4, 4), int)
    two_parts[0, 1] = two_parts[1, 0] = two_parts[2, 3] = two_parts[3, 2] = 1
    with pytest.raises(NetworkError, match=r"disconnected.*\[\[0, 1\], \[2, 3\]\].*connected"):
        make_network("custom", adjacency=two_parts)
    assert make_network("custom", adjacency=two_parts, require_connected=False).num_agents == 4
    ring = make_graph("ring", 4)
    bad_w = np.asarray(weight_matrix("metropolis", ring.adjacency)) * 1.1
    with pytest.raises(NetworkError, match=r"doubly stochastic: row 0 .*'metropolis'"):
        Network(ring, weights=bad_w)
    off_edge = np.full((4, 4), 0.25)
    with pytest.raises(NetworkError, match="not an edge"):
        Network(ring, weights=off_edge)
    with pytest.raises(NetworkError, match="not symmetric"):
        check_weight_matrix(np.array([[0.5, 0.5], [0.4, 0.6]]))
    for n in (1, 0):
        with pytest.raises(NetworkError, match="at least 2 agents"):
            make_network("ring", n)
    for p in (1.0, -0.1):
        with pytest.raises(ConfigError, match=r"link_drop must be in \[0, 1\)"):
            make_network("ring", 4, link_drop=p)
    with pytest.raises(ConfigError, match="unknown topology 'rnig'. Did you mean 'ring'"):
        make_graph("rnig", 4)
    with pytest.raises(ConfigError, match="Did you mean 'metropolis'"):
        make_network("ring", 4, weights="metropolis_")
    with pytest.raises(NetworkError, match=r"num_edges in \[0, N\(N-1\)/2 = 6\]"):
        make_graph("random_edges", 4, num_edges=7)
    with pytest.raises(NetworkError, match=r"does not divide.*\[1, 2, 3, 6\]"):
        make_graph("grid", 6, rows=4)
    with pytest.raises(NetworkError, match=r"edge_prob in \[0, 1\]"):
        make_graph("erdos_renyi", 4, edge_prob=1.5)
    with pytest.raises(NetworkError, match="only used by topology 'erdos_renyi'"):
        make_graph("ring", 4, edge_prob=0.5)
    with pytest.raises(NetworkError, match="not symmetric"):
        graph_from_adjacency(np.triu(np.ones((3, 3), int), 1))
    with pytest.raises(NetworkError, match="self-loops"):
        graph_from_adjacency(np.ones((3, 3), int))
    with pytest.raises(NetworkError, match="square"):
        graph_from_adjacency(np.zeros((2, 3)))
    with pytest.raises(ConfigError, match="rounds must be an int >= 0"):
        make_network("ring", 4, rounds=-1)
    with pytest.raises(ConfigError, match="random_edges=7 must be in"):
        make_network("ring", 4, random_edges=7)
    tv = make_network("ring", 4, link_drop=0.2)
    with pytest.raises(ConfigError, match="pass a PRNG key"):
        tv.mix(jnp.ones((4, 2)))
    with pytest.raises(NetworkError, match="leading agent axis of size 4"):
        make_network("ring", 4).mix(jnp.ones((3, 2)))
    with pytest.raises(NetworkError, match="cast it to float"):
        make_network("ring", 4).mix(jnp.ones((4, 2), int))


# ---------------------------------------------------------------------------- jit + vmap


def test_time_varying_mix_under_jit_and_vmap_over_keys():
    net = make_network("ring", 6, rounds=2, link_drop=0.4)
    x = jax.random.normal(jax.random.PRNGKey(0), (6, 3))
    keys = jax.random.split(jax.random.PRNGKey(5), 4)
    ys, stats = jax.jit(jax.vmap(net.mix, in_axes=(None, 0)))(x, keys)
    assert ys.shape == (4, 6, 3) and stats.floats_sent.shape == (4,)
    for i in range(4):
        np.testing.assert_allclose(ys[i].mean(0), x.mean(0), atol=1e-6)
        np.testing.assert_allclose(ys[i], net.mix(x, keys[i])[0], atol=1e-6)
        for j in range(i):
            assert not np.allclose(ys[i], ys[j])
    # static graph vmapped over per-seed data
    static = make_network("ring", 6, rounds=2)
    xs = jax.random.normal(jax.random.PRNGKey(1), (4, 6, 3))
    ys, _ = jax.jit(jax.vmap(static.mix))(xs)
    np.testing.assert_allclose(ys[2], static.mix(xs[2])[0], atol=1e-6)
