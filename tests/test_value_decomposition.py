"""Value decomposition (paper 001): exact identities, locality, learning and bad input.

* DVDN with exact consensus has VDN's gradients (team reward = sum of local rewards); with
  K = 0 it has N times IQL's (local-reward) gradients.
* The locality audit passes for DVDN and DVDN (GT) at K rounds and fails at K - 1.
* Every learner learns a small LBF task from a fixed seed.
* Bad configurations fail before compiling; per-agent clipping never mixes agents.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from netmarl.algos.value_decomposition import (
    ALGOS,
    Episodes,
    LearnState,
    ValueDecomposition,
    ValueDecompositionConfig,
    VDParams,
    clip_per_agent,
    gru_sequence,
    linear_epsilon,
)
from netmarl.envs import make_env
from netmarl.errors import ConfigError, LocalityViolation
from netmarl.nets import GRUAgent
from netmarl.network import audit_locality, make_network

GAMMA = 0.99
SMALL = ValueDecompositionConfig(hidden=16, buffer_size=64, batch_size=4)


@functools.cache
def lbf(task: str = "Foraging-6x6-4p-2f-v3", limit: int = 12):
    return make_env("lbf", task=task, episode_limit=limit)


def build(algo: str, config=SMALL, network=None, env=None) -> ValueDecomposition:
    env = env or lbf()
    if network is None and algo in ("dvdn", "dvdn_gt"):
        network = make_network("complete", num_agents=env.spec.num_agents)
    return ValueDecomposition(algo, env, GAMMA, config, network)


@functools.cache
def batch_and_params(seed: int = 0) -> tuple[Episodes, VDParams, VDParams]:
    """Real episodes of a random policy, with random local rewards (team = their sum), and
    online/target parameters that differ (so both networks matter)."""
    vd = build("iql")
    key = jax.random.key(seed)
    k_params, k_target, k_play, k_rew = jax.random.split(key, 4)
    params, target = vd.init_params(k_params), vd.init_params(k_target)
    from netmarl.algos.base import collect_episodes

    @jax.jit
    def play(agent: Any, key: jax.Array) -> Episodes:
        steps, filled = collect_episodes(vd.env, vd.act, (agent, 1.0), key, 4, vd.init_carry)
        return vd.to_episodes(steps, filled)

    batch = play(params.agent, k_play)
    rewards = jax.random.normal(k_rew, batch.rewards.shape) * batch.filled[..., None]
    batch = batch._replace(rewards=rewards, team_reward=rewards.sum(-1))
    assert float(batch.filled.sum()) > float(batch.filled.size) / 2  # mostly real steps
    return batch, params, target


def agent_grads(vd: ValueDecomposition, params: VDParams, target: VDParams, batch: Episodes):
    grads, _ = jax.jit(vd.gradients)(params, target, batch, jax.random.key(3))
    return grads.agent


@functools.cache
def vdn_grads():
    """VDN's per-agent gradients on :func:`batch_and_params` (compiled once for all tests)."""
    return agent_grads(build("vdn"), *batch_and_params()[1:], batch_and_params()[0])


# --- networks -------------------------------------------------------------------------------


@pytest.mark.parametrize("hidden", [8, 16], ids=["jax-scan", "native-kernel"])
def test_gru_sequence_is_gru_agent_stepped(hidden):
    """The hoisted sequence form computes exactly what stepping GRUAgent does, and its
    hand-written backward pass the gradients autodiff gives the stepped GRUAgent: with the
    JAX scans (hidden 8) and with the native kernels (hidden a multiple of 16)."""
    from netmarl import kernels

    assert kernels.usable(hidden) == (hidden == 16 and kernels.available())
    net = GRUAgent(hidden, 5)
    params = jax.jit(net.init)(jax.random.key(0), jnp.zeros(hidden), jnp.zeros(7))
    x = jax.random.normal(jax.random.key(1), (6, 3, 7))
    h0 = jax.random.normal(jax.random.key(3), (3, hidden))
    w = jax.random.normal(jax.random.key(2), (6, 3, 5))

    def stepped(params, x, h0):
        return jax.lax.scan(lambda h, xt: net.apply(params, h, xt), h0, x)[1]

    @jax.jit  # one compiled program for the four results
    def compare(params, x, h0):
        def loss(f):
            return lambda *a: jnp.sum(f(*a) * w)

        values = gru_sequence(params, x, h0), stepped(params, x, h0)
        grads = [jax.grad(loss(f), argnums=(0, 1, 2))(params, x, h0)
                 for f in (gru_sequence, stepped)]  # fmt: skip
        return values, grads

    (fast, slow), (got, want) = compare(params, x, h0)
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(got), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    assert min(float(jnp.abs(g).max()) for g in jax.tree.leaves(want)) > 1e-3  # all reached


# --- exact identities (paper 001 eq. 2-3 against eq. 1) ---------------------------------------


@pytest.mark.parametrize(
    "graph, rounds", [("complete", 1), ("ring", 200)], ids=["complete-K1", "ring-K200"]
)
def test_dvdn_with_exact_consensus_has_vdn_gradients(graph, rounds):
    batch, params, target = batch_and_params()
    network = make_network(graph, num_agents=4, rounds=rounds)
    vdn = vdn_grads()
    dvdn = agent_grads(build("dvdn", network=network), params, target, batch)
    for a, b in zip(jax.tree.leaves(vdn), jax.tree.leaves(dvdn), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)
    assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(vdn)) > 1e-2  # not trivial


def test_dvdn_with_one_round_on_a_ring_is_not_vdn():
    """The identity needs consensus: one round on a ring leaves a visible difference."""
    batch, params, target = batch_and_params()
    network = make_network("ring", num_agents=4, rounds=1)
    vdn = vdn_grads()
    dvdn = agent_grads(build("dvdn", network=network), params, target, batch)
    pairs = zip(jax.tree.leaves(vdn), jax.tree.leaves(dvdn), strict=True)
    diff = max(float(jnp.abs(a - b).max()) for a, b in pairs)
    assert diff > 1e-3


def test_dvdn_without_communication_is_n_times_iql():
    """K = 0: delta_-i = (N - 1) delta_i, so grad l_i = N x IQL's grad on the local reward."""
    batch, params, target = batch_and_params()
    network = make_network("ring", num_agents=4, rounds=0)
    iql_cfg = ValueDecompositionConfig(hidden=16, buffer_size=64, batch_size=4, reward="local")
    iql = agent_grads(build("iql", iql_cfg), params, target, batch)
    dvdn = agent_grads(build("dvdn", network=network), params, target, batch)
    for a, b in zip(jax.tree.leaves(iql), jax.tree.leaves(dvdn), strict=True):
        np.testing.assert_allclose(b, 4 * a, rtol=1e-5, atol=1e-6)


# --- locality ---------------------------------------------------------------------------------


NO_ID = ValueDecompositionConfig(hidden=16, buffer_size=64, batch_size=4, obs_agent_id=False)


def _local_update(vd: ValueDecomposition, batch: Episodes):
    """The update as a function of per-agent inputs (leading agent axis): the learn state
    and each agent's private data (observations, rewards)."""
    # Random observations: every weight then gets a non-zero gradient (with LBF's integer
    # features some never do, and d sqrt(nu)/d nu at nu = 0 inside Adam makes the probe NaN).
    obs = jax.random.normal(jax.random.key(5), jnp.moveaxis(batch.obs, 2, 0).shape)  # [N,B,T+1,F]
    rewards = jnp.moveaxis(batch.rewards, 2, 0)  # [N, B, T]

    def update(inputs):
        learn, obs, rewards = inputs
        b = batch._replace(obs=jnp.moveaxis(obs, 0, 2), rewards=jnp.moveaxis(rewards, 0, 2))
        new, _ = vd.update(learn, b, jax.random.key(7))
        return new._replace(updates=jnp.zeros((vd.n,)))  # a per-agent stand-in for the count

    def learn_state(params: VDParams) -> LearnState:
        learn = vd.init_learn(jax.random.key(0))
        return learn._replace(params=params, target=params, updates=jnp.int32(0))

    return update, learn_state, obs, rewards


@pytest.mark.parametrize("algo, link_drop", [("dvdn", 0.0), ("dvdn_gt", 0.25)])
def test_locality_audit(algo, link_drop):
    """On a line of 4, an agent's update after one step depends only on agents within K
    hops (K = 1 here), and really on its neighbours (the audit fails at K - 1 = 0). With
    link drops the graph of each round is drawn inside the update; the base graph bounds it."""
    batch, _, _ = batch_and_params()
    network = make_network("line", num_agents=4, rounds=1, link_drop=link_drop)
    vd = build(algo, NO_ID, network=network)
    update, learn_state, obs, rewards = _local_update(vd, batch)
    inputs = (learn_state(vd.init_params(jax.random.key(2))), obs, rewards)
    s = audit_locality(update, inputs, network, rounds=1)
    assert (s - np.diag(np.diag(s))).max() > 0  # some neighbour is heard
    if link_drop == 0.0:  # (with drops, this update's draw may have cut a link)
        assert s[0, 1] > 0 and s[1, 0] > 0
    with pytest.raises(LocalityViolation, match="hops"):
        audit_locality(update, inputs, network, rounds=0)


def test_iql_update_is_fully_local():
    batch, _, _ = batch_and_params()
    vd = build("iql", NO_ID)
    update, learn_state, obs, rewards = _local_update(vd, batch)
    network = make_network("line", num_agents=4, rounds=0)
    params = vd.init_params(jax.random.key(2))
    audit_locality(update, (learn_state(params), obs, rewards), network, rounds=0)


# --- clipping -------------------------------------------------------------------------------


def test_clip_per_agent_scales_each_agent_alone():
    grads = {"w": jnp.array([[300.0, 400.0], [0.3, 0.4]]), "b": jnp.array([[0.0], [0.0]])}
    clipped = clip_per_agent(grads, 10.0)
    np.testing.assert_allclose(clipped["w"][0], [6.0, 8.0], rtol=1e-6)
    np.testing.assert_allclose(clipped["w"][1], [0.3, 0.4], rtol=1e-6)


@pytest.mark.parametrize("algo", ["iql", "dvdn", "vdn"])
def test_a_huge_gradient_at_one_agent_leaves_the_others_alone(algo):
    """Networked/independent learners clip per agent: scaling agent 0's rewards by 1e4 does
    not change agent 1's update. VDN (centralized, global clip as in EPyMARL) is the control:
    there it does."""
    batch, params, _ = batch_and_params()
    cfg = ValueDecompositionConfig(hidden=16, buffer_size=64, batch_size=4, max_grad_norm=1.0)
    if algo == "iql":
        cfg = ValueDecompositionConfig(**{**cfg.__dict__, "reward": "local"})
    vd = build(algo, cfg, network=make_network("ring", num_agents=4, rounds=0))
    learn = vd.init_learn(jax.random.key(0))._replace(params=params)
    loud = batch._replace(rewards=batch.rewards.at[..., 0].multiply(1e4))
    loud = loud._replace(team_reward=loud.rewards.sum(-1))
    step = jax.jit(vd.update)
    quiet_new, _ = step(learn, batch, jax.random.key(1))
    loud_new, _ = step(learn, loud, jax.random.key(1))
    pairs = zip(*map(jax.tree.leaves, (quiet_new.params.agent, loud_new.params.agent)), strict=True)
    other = [jnp.abs(a[1] - b[1]).max() for a, b in pairs]  # agent 1's new parameters
    if algo == "vdn":
        assert max(map(float, other)) > 1e-6
    else:
        assert max(map(float, other)) == 0.0


# --- learning -------------------------------------------------------------------------------

# A small task every learner improves on within 30k steps (the shared-weight ones, vdn_ps and
# dvdn_gt, are the slowest). gamma 0.9, a faster target copy
# and lr 1e-3 (not EPyMARL's 0.99 / 200 / 5e-4, made for 2M steps) keep the short runs stable.
LEARN = ValueDecompositionConfig(
    hidden=32, lr=1e-3, buffer_size=500, batch_size=16, epsilon_anneal_steps=5_000,
    target_update_interval=50,
)  # fmt: skip
LEARN_GAMMA = 0.9
LEARN_ITERATIONS = 1_500  # episodes of 20 steps: 30k environment steps
EVAL_EVERY, EVAL_EPISODES = 250, 32
SEEDS = 2
GREEDY = np.float32(0.0)  # epsilon, float32 as in training: the same compiled rollout


@functools.cache
def learning_task():
    return make_env("lbf", task="Foraging-6x6-2p-1f-v3", episode_limit=20)


@functools.cache
def learning_curve(algo: str) -> np.ndarray:
    """Mean greedy team return of each seed every 5k steps: [seeds, evaluations] (column 0:
    before training).

    The iteration is ``rollout`` then ``learn_step`` (what :meth:`ValueDecomposition.iteration`
    composes), each jitted on its own and driven from Python, seed after seed: the rollout of
    the learners with per-agent networks (iql, vdn, dvdn, dvdn_gt) compiles to the same
    program, which the persistent compilation cache then serves, and the greedy evaluation
    reuses it with epsilon 0 (one fused program per learner, vmapped over seeds, took ~3x as
    long to compile). Keys and epsilons are prepared on the host: an iteration is two calls.
    """
    network = make_network("complete", num_agents=2) if algo in ("dvdn", "dvdn_gt") else None
    vd = ValueDecomposition(algo, learning_task(), LEARN_GAMMA, LEARN, network)
    rollout, learn_step = compiled_steps(vd)
    # the epsilon schedule at every possible step count, computed once (no eager op per step)
    epsilons = np.asarray(linear_epsilon(LEARN, jnp.arange(LEARN_ITERATIONS * 20 + 1)), np.float32)
    curves = []
    for seed in range(SEEDS):
        state = vd.init(jax.random.key(seed))  # eager: its small kernels are shared
        learn, buffer, t_env = state.learn, state.buffer, 0
        keys = key_data(10 + seed, (LEARN_ITERATIONS, 3))
        eval_keys = key_data(20 + seed, (LEARN_ITERATIONS // EVAL_EVERY + 1, EVAL_EPISODES))

        def greedy_return(agent: Any, keys: np.ndarray) -> float:
            return float(np.mean([rollout(agent, GREEDY, k)[2] for k in keys]))

        curve = [greedy_return(learn.params.agent, eval_keys[0])]
        for i in range(LEARN_ITERATIONS):
            episodes, taken, _ = rollout(learn.params.agent, epsilons[t_env], keys[i, 0])
            learn, buffer, _ = learn_step(learn, buffer, episodes, keys[i, 1], keys[i, 2])
            t_env += int(taken)
            if (i + 1) % EVAL_EVERY == 0:
                curve.append(greedy_return(learn.params.agent, eval_keys[(i + 1) // EVAL_EVERY]))
        curves.append(curve)
    return np.array(curves)


def key_data(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.asarray(jax.random.key_data(jax.random.split(jax.random.key(seed), shape)))


def compiled_steps(vd: ValueDecomposition):
    """``rollout(params, epsilon, key data)`` and ``learn_step(learn, buffer, episodes, key
    data, key data)`` jitted; keys are raw uint32 data (no eager key operation per call)."""
    wrap = jax.random.wrap_key_data

    def rollout(agent, epsilon, k):
        return vd.rollout(agent, epsilon, wrap(k))

    def learn_step(learn, buffer, episodes, k_sample, k_update):
        return vd.learn_step(learn, buffer, episodes, wrap(k_sample), wrap(k_update))

    # donate the buffer: it is updated in place
    return jax.jit(rollout), jax.jit(learn_step, donate_argnums=1)


@functools.cache
def random_return() -> float:
    """Mean team return of the uniform policy over available actions (0.28 on this task):
    the same rollout program with epsilon 1."""
    vd = ValueDecomposition("iql", learning_task(), LEARN_GAMMA, LEARN)
    rollout, _ = compiled_steps(vd)
    params = vd.init_params(jax.random.key(0)).agent
    uniform = np.float32(1.0)
    return float(np.mean([rollout(params, uniform, k)[2] for k in key_data(3, (256,))]))


@pytest.mark.parametrize("algo", ALGOS)
def test_learns_small_foraging_task(algo):
    """The maximum average greedy return (paper 001's statistic: mean over seeds, max over
    evaluations every 5k steps) ends well above the uniform policy's."""
    curve = learning_curve(algo).mean(axis=0)
    assert curve[1:].max() > max(0.5, 1.75 * random_return()), (curve, random_return())


# --- bad input ------------------------------------------------------------------------------


def _run(**kw):
    from netmarl.run.config import RunConfig
    from netmarl.run.driver import build as build_run

    base = dict(env="lbf", env_kwargs={"task": "Foraging-5x5-2p-1f-v3"}, steps=1000,
                eval_every=500)  # fmt: skip
    return build_run(RunConfig(**{**base, **kw}))


def test_registered_and_buildable_by_the_driver():
    from netmarl.algos import get_algo

    for algo in ALGOS:
        spec = get_algo(algo)
        assert spec.family == "value_decomposition"
        assert spec.networked == (algo in ("dvdn", "dvdn_gt"))
        assert spec.centralized == (algo in ("vdn", "vdn_ps", "qmix"))
    built = _run(algo="dvdn", eval_every=500)
    assert built.learner.steps_per_iteration == 50


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(algo="iql", env="navigation", env_kwargs={"continuous": True}), "discrete"),
        (dict(algo="vdn", algo_kwargs={"lr": 0.0}), "lr must be > 0"),
        (dict(algo="qmix", algo_kwargs={"batch_size": -1}), "batch_size must be > 0"),
        (dict(algo="iql", algo_kwargs={"mixing_embed_dim": 16}), "iql has no mixer"),
        (dict(algo="dvdn", algo_kwargs={"hypernet_embed": 16}), "dvdn has no mixer"),
        (dict(algo="dvdn", algo_kwargs={"share_params": True}), "cannot share parameters"),
        (dict(algo="vdn_ps", algo_kwargs={"share_params": False}), "use algo 'vdn'"),
        (dict(algo="dvdn", algo_kwargs={"reward": "team"}), "local rewards"),
        (dict(algo="dvdn", rounds=-1), "rounds"),
        (dict(algo="dvdn", env_kwargs={"task": "Foraging-5x5-2p-v3"}), "Foraging"),
        (dict(algo="iql", algo_kwargs={"epsilon_finish": 1.5}), "epsilon_finish"),
        (dict(algo="iql", algo_kwargs={"batch_size": 64, "buffer_size": 32}), "exceeds"),
    ],
)
def test_bad_input_is_one_clear_error(kw, match):
    with pytest.raises(ConfigError, match=match):
        _run(**kw)


class _Heterogeneous:
    """An env whose agents' true observation sizes differ (padded to one shape)."""

    def __init__(self):
        self.inner = make_env("lbf", task="Foraging-5x5-2p-1f-v3")
        self.spec = self.inner.spec
        self.agent_obs_sizes = (9, 6)


@pytest.mark.parametrize("algo", ["vdn_ps", "dvdn_gt"])
def test_sharing_needs_homogeneous_agents(algo):
    env = _Heterogeneous()
    with pytest.raises(ConfigError, match="homogeneous"):
        build(algo, env=env, network=make_network("ring", num_agents=2))
    build("dvdn", env=env, network=make_network("ring", num_agents=2))  # no sharing: fine


def test_network_size_must_match():
    with pytest.raises(ConfigError, match="one node per agent"):
        build("dvdn", network=make_network("ring", num_agents=3))


def test_iql_with_one_shared_network_takes_one_update():
    """IQL may share one network (EPyMARL's default): one optimiser, one global clip."""
    batch, _, _ = batch_and_params()
    cfg = ValueDecompositionConfig(hidden=16, buffer_size=64, batch_size=4, share_params=True)
    vd = build("iql", cfg)
    learn = vd.init_learn(jax.random.key(0))
    new, metrics = jax.jit(vd.update)(learn, batch, jax.random.key(1))
    assert (
        jax.tree.leaves(new.params.agent)[0].shape == jax.tree.leaves(learn.params.agent)[0].shape
    )
    moved = max(
        float(jnp.abs(a - b).max())
        for a, b in zip(*map(jax.tree.leaves, (new.params, learn.params)), strict=True)
    )
    assert moved > 0 and np.isfinite(float(metrics["loss"]))


def test_reward_statistics_are_those_of_every_real_step_seen():
    """standardise_rewards: after two batches the running mean / variance are those of the
    real (unpadded) steps of both, per agent; padding is left out."""
    from netmarl.algos.value_decomposition import reward_stats_init, reward_stats_update

    rng = np.random.default_rng(0)
    batches = [rng.normal(2.0, 3.0, (4, 6, 2)).astype(np.float32) for _ in range(2)]
    masks = [np.ones((4, 6), np.float32), (np.arange(6) < 4)[None].repeat(4, 0).astype(np.float32)]
    stats = reward_stats_init((2,))
    for rewards, mask in zip(batches, masks, strict=True):
        stats = reward_stats_update(stats, jnp.asarray(rewards), jnp.asarray(mask))
    real = np.concatenate([r[m > 0] for r, m in zip(batches, masks, strict=True)])  # [steps, 2]
    np.testing.assert_allclose(stats.mean, real.mean(0), rtol=1e-4)
    np.testing.assert_allclose(stats.var, real.var(0), rtol=1e-3)  # the prior weighs 1e-4


def test_standardised_rewards_change_the_update_and_keep_their_statistics():
    batch, _, _ = batch_and_params()
    for algo in ("vdn", "dvdn", "iql"):
        vd = build(algo)  # SMALL: standardise_rewards on, the default
        plain = build(algo, dataclasses.replace(SMALL, standardise_rewards=False))
        learn = vd.init_learn(jax.random.key(0))
        new, _ = jax.jit(vd.update)(learn, batch, jax.random.key(1))
        shape = () if algo == "vdn" else (vd.n,)  # IQL, DVDN: each agent its own statistics
        assert new.reward_stats.mean.shape == shape
        steps = float(batch.filled.sum())
        assert float(new.reward_stats.count.min()) == pytest.approx(steps, abs=1e-3)
        base, _ = jax.jit(plain.update)(plain.init_learn(jax.random.key(0)), batch,
                                        jax.random.key(1))  # fmt: skip
        assert base.reward_stats == ()
        moved = [float(jnp.abs(a - b).max()) for a, b in zip(
            jax.tree.leaves(new.params), jax.tree.leaves(base.params), strict=True)]  # fmt: skip
        assert max(moved) > 0


@pytest.mark.parametrize("algo", ["dvdn_gt", "vdn"])
def test_seeds_updated_one_at_a_time_match_the_vmapped_update(algo):
    """The driver's update runs seed after seed (one_seed_at_a_time) inside a cond whose
    predicate differs per seed (the buffer is ready, the seed is still active): the same
    result as the plain vmapped update, also for DVDN (GT) whose consensus over dropping
    links puts constants in the update's body."""
    from netmarl.algos.base import vmap_seeds

    batch, _, _ = batch_and_params()
    network = make_network("ring", num_agents=4, rounds=1, link_drop=0.25)
    vd = build(algo, network=network if algo == "dvdn_gt" else None)
    learn = jax.vmap(vd.init_learn)(jax.random.split(jax.random.key(0), 2))
    keys = jax.random.split(jax.random.key(1), 2)
    ready = jnp.array([True, False])

    def step(update):
        def one(learn, key, ready):
            return jax.lax.cond(ready, lambda s: update(s, batch, key)[0], lambda s: s, learn)

        return jax.jit(vmap_seeds(one))(learn, keys, ready)

    in_sequence = step(vd._update_per_seed)
    vmapped = step(vd._trimmed_update)
    for a, b, before in zip(*map(jax.tree.leaves, (in_sequence, vmapped, learn)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(a[1], before[1])  # the seed whose predicate was False
    moved = jax.tree.leaves(in_sequence.params.agent)[0][0] - jax.tree.leaves(learn.params)[0][0]
    assert float(jnp.abs(moved).max()) > 0


@pytest.mark.parametrize(
    "algo, env", [("qmix", "didactic"), ("dvdn_gt", "hallway"), ("dvdn", "navigation")]
)
def test_runs_on_the_other_discrete_envs(algo, env):
    """The value-based learners train on DOP's didactic game and hallway and on discrete
    cooperative navigation through the driver (one algorithm per env keeps this cheap)."""
    from netmarl.run.config import RunConfig
    from netmarl.run.driver import train

    run = RunConfig(algo=algo, env=env, seeds=2, steps=200,
                    eval_every=100, algo_kwargs={"hidden": 8, "batch_size": 2,
                                                 "buffer_size": 8})  # fmt: skip
    result = train(run, progress=False, write=False)
    returns, steps = result.metrics["return"], result.metrics["env_steps"]
    assert returns.shape == (2, 3) and np.isfinite(returns).all()
    assert (steps[:, -1] >= 200).all()  # real env steps, every seed reached its budget
