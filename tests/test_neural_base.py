"""The neural-learner base: replay buffer, rollouts, the driver's Trainer, independent AC."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from netmarl.algos.base import (
    collect,
    collect_episodes,
    episode_returns,
    max_over_seeds,
    runner_init,
    trim_lengths,
    vmap_seeds,
)
from netmarl.algos.independent_ac import IndependentACConfig, gae, make_independent_ac
from netmarl.buffers import buffer_add, buffer_init, buffer_ready, buffer_sample
from netmarl.envs import AutoReset, make_env
from netmarl.errors import ConfigError
from netmarl.nets import GRUAgent, orthogonal_init
from netmarl.run.config import RunConfig
from netmarl.run.driver import build, train


def test_replay_buffer_wraps_around_and_samples_only_stored_items():
    buf = buffer_init({"x": jnp.zeros(2), "t": jnp.int32(0)}, capacity=5)
    assert not bool(buffer_ready(buf, 1))
    buf = buffer_add(buf, {"x": jnp.ones((3, 2)), "t": jnp.arange(3)})
    sample = buffer_sample(buf, jax.random.key(0), 200)
    assert set(np.asarray(sample["t"]).tolist()) == {0, 1, 2}  # never the empty slots
    buf = buffer_add(buf, {"x": jnp.ones((4, 2)), "t": jnp.arange(3, 7)})
    # 7 items into 5 slots: items 5 and 6 overwrote 0 and 1
    assert int(buf.size) == 5 and int(buf.position) == 2
    assert np.asarray(buf.data["t"]).tolist() == [5, 6, 2, 3, 4]


def test_a_masked_buffer_write_changes_nothing():
    buf = buffer_add(buffer_init(jnp.zeros(2), capacity=4), jnp.ones((3, 2)))
    same = buffer_add(buf, jnp.full((2, 2), 7.0), active=jnp.bool_(False))
    for a, b in zip(jax.tree.leaves(buf), jax.tree.leaves(same), strict=True):
        np.testing.assert_array_equal(a, b)
    written = buffer_add(buf, jnp.full((2, 2), 7.0), active=jnp.bool_(True))
    assert int(written.size) == 4 and np.asarray(written.data)[[3, 0]].tolist() == [[7, 7]] * 2


def test_max_over_seeds_is_one_flag_shared_by_all_seeds():
    flags = jax.jit(vmap_seeds(lambda x: max_over_seeds(x > 0)))(jnp.array([-1, 2, -3]))
    assert np.asarray(flags).tolist() == [True, True, True]
    assert not bool(max_over_seeds(jnp.bool_(False)))  # one seed, outside vmap_seeds


# episodes of a random pair on a 5x5 grid with one food often end before the 50-step limit
EARLY_ENDS = {"env": "lbf", "env_kwargs": {"task": "Foraging-5x5-2p-1f-v3"}}
TINY_KWARGS = {
    "iql": {"hidden": 8, "buffer_size": 16, "batch_size": 2, "num_envs": 2},
    "dop": {"actor_hidden": 8, "critic_hidden": [8], "off_buffer": 8, "on_buffer": 4,
            "off_batch": 2, "on_batch": 2, "num_envs": 2},
    "coma": {"actor_hidden": 8, "critic_hidden": [8], "num_envs": 2},
}  # fmt: skip


@pytest.mark.parametrize("algo", ["iql", "dop", "coma"])
def test_episode_replay_learners_spend_a_budget_of_real_env_steps(algo):
    """Steps are the steps episodes actually took (pymarl's t_env), not episode slots: each
    seed runs iterations until its own count reaches the chunk's budget, passing it by less
    than one iteration (2 episodes x 50 steps), and an idle seed's iterations change
    nothing. Fewer real steps than slots means more iterations than slots/100."""
    config = RunConfig(algo=algo, **EARLY_ENDS, steps=600, eval_every=300, seeds=2,
                       algo_kwargs=TINY_KWARGS[algo])  # fmt: skip
    built = build(config)
    result = train(config, progress=False, write=False, built=built)
    counted = result.metrics["env_steps"]  # [seeds, chunks]
    assert np.all((counted >= [300, 600]) & (counted < [400, 700])), counted
    assert len(set(counted[:, -1].tolist())) == 2  # the seeds stopped at different counts
    final_count = built.learner.env_steps(result.final_state.learner)
    np.testing.assert_array_equal(final_count, counted[:, -1])
    learner = result.final_state.learner
    if algo == "iql":  # 16 slots, wrapped once: position + size episodes were stored
        iterations = (np.asarray(learner.buffer.position) + np.asarray(learner.buffer.size)) // 2
    else:
        iterations = np.asarray(learner.iteration)
    assert np.all(iterations * 100 > counted[:, -1]), (iterations, counted)


@pytest.mark.parametrize("algo", ["iql", "dop", "coma"])
def test_an_inactive_iteration_leaves_the_state_exactly_as_it_was(algo):
    config = RunConfig(algo=algo, **EARLY_ENDS, seeds=1, algo_kwargs=TINY_KWARGS[algo])
    learner = build(config).learner
    iteration = jax.jit(learner.iteration)
    state = learner.init(jax.random.key(0))
    for i in range(3):  # fill the buffers past a batch, so the next iteration would update
        state, _ = iteration(state, jax.random.key(i), jnp.bool_(True))
    moved, _ = iteration(state, jax.random.key(9), jnp.bool_(True))
    kept, _ = iteration(state, jax.random.key(9), jnp.bool_(False))
    changed = [
        not np.array_equal(a, b)
        for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(moved), strict=True)
    ]
    assert sum(changed) > 3
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(kept), strict=True):
        np.testing.assert_array_equal(a, b)


def test_trim_lengths_halve_the_limit():
    assert trim_lengths(100) == (25, 50, 100)
    assert trim_lengths(5) == (2, 3, 5)
    assert trim_lengths(1) == (1,)
    assert trim_lengths(40, levels=1) == (40,)


# one-cell corridors: an episode ends as soon as an agent steps left, so every batch's longest
# episode is far below the 40-step limit and the updates run on the shortest cut (10 steps)
SHORT_EPISODES = {"env": "hallway", "env_kwargs": {"lengths": 1, "episode_limit": 40}}
TRIM_KWARGS = {
    "qmix": {"hidden": 8, "buffer_size": 16, "batch_size": 4, "mixing_embed_dim": 4,
             "hypernet_embed": 8},
    "dvdn": {"hidden": 8, "buffer_size": 16, "batch_size": 4},
    "dop": TINY_KWARGS["dop"],
}  # fmt: skip


@pytest.mark.parametrize("algo", ["qmix", "dvdn", "dop"])
def test_updates_on_trimmed_episodes_equal_updates_on_whole_ones(algo):
    """Cutting a replayed batch after its longest episode changes no loss: the same iterations
    with and without trimming give the same parameters (up to float rounding)."""
    states = []
    for levels in (1, 3):
        kwargs = {**TRIM_KWARGS[algo], "trim_levels": levels}
        config = RunConfig(algo=algo, **SHORT_EPISODES, graph="complete", algo_kwargs=kwargs)
        learner = build(config).learner
        iteration = jax.jit(learner.iteration)
        state = learner.init(jax.random.key(0))
        for i in range(6):
            state, _ = iteration(state, jax.random.key(i))
        states.append(state)
    whole, trimmed = states
    buffer = whole.buffer if algo != "dop" else whole.off_buffer
    assert int(np.max(np.asarray(buffer.data.filled).sum(axis=1))) <= 10  # the cut was taken
    changed = 0
    for a, b, c in zip(
        *(jax.tree.leaves(s) for s in (whole, trimmed, learner.init(jax.random.key(0)))),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
        changed += not np.array_equal(a, c)
    assert changed > 3


def _random_act(env):
    def act(params, carry, ts, key):
        logits = jnp.where(ts.avail_actions, 0.0, -jnp.inf)
        return jax.random.categorical(key, logits).astype(jnp.int32), carry, ()

    return act


def test_collect_episodes_masks_the_steps_after_an_episode_ends():
    env = make_env("hallway", num_agents=2, lengths=3)
    collect = jax.jit(lambda key: collect_episodes(env, _random_act(env), None, key, 64))
    steps, filled = collect(jax.random.key(3))
    limit = env.spec.episode_limit
    assert filled.shape == (limit, 64) and steps.rewards.shape == (limit, 64, 2)
    ended_early = np.asarray(~filled[-1])
    assert ended_early.any() and not ended_early.all()  # some random walkers reach g
    filled = np.asarray(filled)
    for e in range(64):
        n = filled[:, e].sum()
        assert filled[:n, e].all() and not filled[n:, e].any()  # a prefix
        assert bool(steps.done[n - 1, e])  # ends exactly at the last filled step
        assert float(jnp.abs(steps.team_reward[n:, e]).sum()) == 0.0


def test_collect_auto_resets_and_records_the_final_observation():
    env = AutoReset(make_env("hallway", num_agents=2))
    runner = runner_init(env, jax.random.key(0), 4, lambda: ())
    runner, steps = collect(env, _random_act(env), None, runner, jax.random.key(1), 40)
    done = np.asarray(steps.done)
    assert done.any()
    obs, next_obs = np.asarray(steps.obs), np.asarray(steps.next_obs)
    # within an episode the next step starts where this one ended ...
    live = ~done[:-1]
    np.testing.assert_array_equal(next_obs[:-1][live], obs[1:][live])
    # ... and an ended episode's final observation is kept, not the fresh episode's
    ends = done[:-1]
    assert any(
        not np.array_equal(next_obs[:-1][ends][k], obs[1:][ends][k]) for k in range(ends.sum())
    )


def test_gae_stops_at_episode_ends_and_bootstraps_truncations():
    r = jnp.array([1.0, 1.0, 1.0])
    v = jnp.zeros(3)
    next_v = jnp.array([0.0, 5.0, 7.0])
    done = jnp.array([0.0, 1.0, 0.0])
    term = jnp.array([0.0, 0.0, 0.0])  # step 1 was truncated: bootstrap from V = 5
    adv = gae(r, v, next_v, done, term, gamma=0.5, lam=1.0)
    # step 2 is the first of a new episode: 1 + 0.5 * 7; step 1: 1 + 0.5 * 5 (no carry-over)
    np.testing.assert_allclose(adv, [1 + 0.5 * 3.5, 3.5, 4.5])


@pytest.fixture(scope="module")
def navigation_run():
    config = RunConfig(
        algo="independent_ac", env="navigation", env_kwargs={"num_agents": 2},
        algo_kwargs={"reward": "team"}, seeds=2, steps=100_000, eval_every=20_000,
        eval_episodes=16,
    )  # fmt: skip
    return train(config, progress=False, write=False)


def test_independent_ac_learns_cooperative_navigation(navigation_run):
    returns = navigation_run.metrics["return"]  # [seeds, 6]
    assert returns.shape == (2, 6)
    # the greedy team return of both seeds rises well above the untrained policy's
    assert np.all(returns[:, -1] > returns[:, 0] + 5.0), returns


def test_episode_returns_of_a_random_policy_match_a_python_loop():
    env = make_env("hallway", num_agents=2)
    act = _random_act(env)

    from netmarl.algos.base import Policy

    policy = Policy(lambda: (), lambda p, c, ts, k: act(p, c, ts, k)[:2])
    returns = episode_returns(env, policy, None, jax.random.key(0), 8)
    steps, filled = collect_episodes(env, act, None, jax.random.key(0), 8)
    np.testing.assert_allclose(returns, np.asarray(steps.team_reward).sum(0))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": 0.0}, "lr must be > 0"),
        ({"gae_lambda": 1.5}, "gae_lambda must be in"),
        ({"num_envs": 0}, "num_envs must be > 0"),
    ],
)
def test_independent_ac_rejects_bad_hyperparameters(kwargs, message):
    env = make_env("hallway")
    with pytest.raises(ConfigError, match=message):
        make_independent_ac(env, 0.99, IndependentACConfig(**kwargs))


def test_eval_every_must_fit_whole_iterations():
    config = RunConfig(algo="independent_ac", env="hallway", steps=1000, eval_every=300)
    with pytest.raises(ConfigError, match="multiple of 200"):
        train(config, progress=False, write=False)


def test_chunk_output_state_has_the_types_of_the_initial_state():
    """A weakly-typed leaf in the initial state (``jnp.full(shape, -0.5)``) used to make
    ``jit(chunk)`` compile twice: once for init's state, once for every later one."""
    from netmarl.run.driver import build, make_trainer

    config = RunConfig(algo="independent_ac", env="hallway", steps=400, eval_every=200)
    trainer = make_trainer(build(config))
    state = jax.eval_shape(trainer.init, jax.random.key(0))
    after = jax.eval_shape(trainer.chunk, state)[0]
    assert jax.tree.structure(state) == jax.tree.structure(after)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(after), strict=True):
        assert (a.shape, a.dtype, a.weak_type) == (b.shape, b.dtype, b.weak_type)


def test_orthogonal_init_matches_jax_without_calling_lapack():
    """The GRU's recurrent init is jax's orthogonal init (same draw, same matrix up to rounding)
    and a jitted, seed-vmapped GRU init lowers to no custom call: a batched LAPACK QR there
    deadlocked XLA:CPU's thread pool (see ``nets.orthogonal_init``)."""
    ours, ref = orthogonal_init(scale=2.0), jax.nn.initializers.orthogonal(scale=2.0)
    key = jax.random.key(3)
    for shape in [(16, 16), (8, 24), (24, 8), (3, 4, 5)]:
        np.testing.assert_allclose(ours(key, shape), ref(key, shape), atol=2e-6)
    net = GRUAgent(16, 5)
    init = jax.jit(jax.vmap(lambda k: net.init(k, net.initial_carry(), jnp.zeros(7))))
    hlo = init.lower(jax.random.split(key, 4)).as_text()
    assert "custom_call" not in hlo
    kernel = init(jax.random.split(key, 4))["params"]["GRUCell_0"]["hn"]["kernel"]
    np.testing.assert_allclose(kernel[0] @ kernel[0].T, np.eye(16), atol=1e-5)
