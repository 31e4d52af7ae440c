"""DOP (paper 002): eq. 6 and the targets of eq. 8-9 against brute force, learning on the
didactic game and continuous navigation, bad input, and the SMAX wrapper."""

import itertools
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from netmarl.algos import get_algo
from netmarl.algos.dop import (
    DOPConfig,
    expected_q_tot,
    local_q_table,
    q_tot,
    sampled_q_tot,
    td_lambda_targets,
    tree_backup_targets,
)
from netmarl.envs import make_env
from netmarl.errors import ConfigError
from netmarl.run.config import RunConfig
from netmarl.run.driver import build, train


def _random_critic(seed, n, a):
    # numpy draws: each jax.random call site costs a compile of its own on XLA:CPU
    rng = np.random.default_rng(seed)
    k = rng.uniform(size=n)
    k = k / k.sum()
    logits = rng.normal(size=(n, a)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    arrays = (k, rng.normal(), rng.normal(size=(n, a)) * 3, probs)
    return tuple(jnp.asarray(x, jnp.float32) for x in arrays)


@pytest.mark.parametrize("n,a", [(2, 3), (3, 4), (4, 2)])
def test_eq6_decomposed_expectation_equals_the_sum_over_all_joint_actions(n, a):
    k, b, q, probs = _random_critic(n * 10 + a, n, a)
    joints = np.asarray(list(itertools.product(range(a), repeat=n)))  # O(|A|^n)
    q_joint = np.asarray(jax.jit(jax.vmap(q_tot, in_axes=(None, None, None, 0)))(k, b, q, joints))
    p_joint = np.prod(np.asarray(probs)[np.arange(n), joints], axis=-1)
    brute = float(np.sum(p_joint * q_joint))
    np.testing.assert_allclose(float(expected_q_tot(k, b, q, probs)), brute, rtol=1e-5)
    # the common tree backup's sampled estimate converges to the same value
    est = jax.jit(sampled_q_tot, static_argnums=5)(jax.random.key(1), k, b, q, probs, 200_000)
    np.testing.assert_allclose(float(est), brute, atol=0.03)


def _episode(seed, length, end, terminated):
    rng = np.random.default_rng(seed)
    q_taken = rng.normal(size=length)
    v_next = rng.normal(size=length)
    rewards = rng.normal(size=length)
    prob = rng.uniform(0.1, 0.9, size=length)
    filled = np.arange(length) <= end
    term = np.zeros(length)
    term[end] = 1.0 if terminated else 0.0
    return q_taken, v_next, rewards, prob, filled, term


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("end,terminated", [(7, False), (4, True)])
def test_tree_backup_target_equals_eq8_written_out(k, end, terminated):
    gamma, lam, length = 0.9, 0.7, 8
    q_taken, v_next, r, prob, filled, term = _episode(k + end, length, end, terminated)
    y = tree_backup_targets(*map(jnp.asarray, (q_taken, v_next, r, term, filled, prob)),
                            gamma, lam, k)  # fmt: skip
    for t in range(length):
        # eq. 8: y = Q'(s_t, a_t) + sum_{j<k} gamma^j c_j [r + gamma E_pi Q'(s') - Q'(s, a)],
        # c_j = prod_{l=1..j} lambda pi(a_{t+l}); nothing after the episode's last step
        expect = q_taken[t]
        for j in range(k):
            s = t + j
            if s > end:
                break
            c = np.prod([lam * prob[t + l] for l in range(1, j + 1)])
            delta = r[s] + gamma * (1 - term[s]) * v_next[s] - q_taken[s]
            expect += gamma**j * c * delta
        np.testing.assert_allclose(float(y[t]), expect, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("end,terminated", [(7, False), (3, True)])
def test_td_lambda_target_equals_eq9_written_out(end, terminated):
    gamma, lam, length = 0.95, 0.8, 8
    q_taken, q_next, r, _, filled, term = _episode(end, length, end, terminated)
    y = td_lambda_targets(*map(jnp.asarray, (q_taken, q_next, r, term, filled)), gamma, lam)
    for t in range(end + 1):
        expect = q_taken[t] + sum(
            (gamma * lam) ** (s - t) * (r[s] + gamma * (1 - term[s]) * q_next[s] - q_taken[s])
            for s in range(t, end + 1)
        )
        np.testing.assert_allclose(float(y[t]), expect, rtol=1e-5, atol=1e-6)


# The didactic game with 6 actions per agent (216 joint actions, one pays +10). With the
# paper's 14 actions (2744) the signal in the local critics, 20 prod_{j != i} pi_j(a*_j), is
# below their sampling noise for the first thousands of steps, and within 10k steps DOP finds
# (1, 5, 9) only on some seeds (experiments/RESULTS.md); 6 actions make the test deterministic
# in outcome, not in luck.
DIDACTIC_ENV = {"num_actions": 6, "optimal_actions": [1, 3, 5]}
DIDACTIC_KW = {
    "epsilon_anneal_steps": 2000,
    "target_update_interval": 10,
    "critic_hidden": [64, 64],
    "critic_lr": 1e-3,
    "actor_lr": 1e-3,
    "updates_per_iteration": 2,
}


# The learning test and the ablation runs below share seeds, nets, buffers and evaluation, so
# the compiled init and evaluation (half of DOP's compile time, from a cold cache) are
# compiled once and found in the persistent compile cache afterwards.
DIDACTIC_RUN = {"algo": "dop", "env": "didactic", "env_kwargs": DIDACTIC_ENV, "seeds": 4,
                "eval_episodes": 1}  # fmt: skip


@pytest.fixture(scope="module")
def didactic_run():
    # every seed has the +10 joint action by 1000 steps; the second 1000 checks it stays
    config = RunConfig(**DIDACTIC_RUN, steps=2000, eval_every=1000, algo_kwargs=DIDACTIC_KW)
    return train(config, progress=False, write=False)


def test_dop_finds_the_plus_10_joint_action_of_a_didactic_game(didactic_run):
    returns = didactic_run.metrics["return"]
    assert (returns[:, 0] == -10).all()  # the initial greedy joint action misses
    assert (didactic_run.final_return == 10).all(), didactic_run.metrics["return"]


def test_dop_local_q_tables_rank_the_optimal_actions_first(didactic_run):
    env = make_env("didactic", **DIDACTIC_ENV)
    tables = jax.jit(jax.vmap(lambda s: local_q_table(s, env, tuple(DIDACTIC_KW["critic_hidden"]))))
    q_all, k_all, _ = tables(didactic_run.final_state.learner)
    for q, k in zip(q_all, k_all, strict=True):
        assert np.asarray(jnp.argmax(q, axis=-1)).tolist() == [1, 3, 5]  # Fig. 2 right-bottom
        assert bool(jnp.all(k >= 0)) and abs(float(k.sum()) - 1) < 1e-5


def test_deterministic_dop_learns_continuous_navigation():
    config = RunConfig(
        algo="dop_deterministic", env="navigation", seeds=2, steps=20000, eval_every=4000,
        eval_episodes=8, gamma=0.95,
        env_kwargs={"num_agents": 2, "continuous": True, "reward": "lijia"},
        algo_kwargs={"num_envs": 4, "rollout": 25, "batch_size": 512, "warmup": 2000,
                     "updates_per_iteration": 10, "critic_hidden": [64, 64],
                     "critic_lr": 1e-3, "noise_std": 0.3},
    )  # fmt: skip
    returns = train(config, progress=False, write=False).metrics["return"]
    # the untrained actors stand still (returns about -21 to -29); learned ones approach
    # their landmarks (about -10 to -15 after 20k steps on 4 seeds)
    assert (returns[:, -1] > returns[:, 0] + 5).all(), returns


@pytest.mark.parametrize(
    "algo,env,env_kwargs,algo_kwargs,match",
    [
        ("dop_deterministic", "didactic", {}, {}, "needs continuous actions"),
        ("dop", "navigation", {"continuous": True}, {}, "needs discrete actions"),
        ("dop", "didactic", {}, {"kappa": 1.5}, "kappa must be in"),
        ("dop", "didactic", {}, {"kappa": -0.1}, "kappa must be in"),
        ("dop", "didactic", {}, {"tb_steps": 0}, "tb_steps"),
        ("dop", "didactic", {}, {"critic_lr": 0.0}, "critic_lr must be > 0"),
        ("dop", "didactic", {}, {"tree_backup": "sampled"}, "tree_backup"),
        ("dop_deterministic", "navigation", {"continuous": True}, {"tau": 2.0}, "tau"),
    ],
)
def test_bad_input_is_one_clear_error_before_compiling(algo, env, env_kwargs, algo_kwargs, match):
    config = RunConfig(algo=algo, env=env, env_kwargs=env_kwargs, algo_kwargs=algo_kwargs)
    with pytest.raises(ConfigError, match=match):
        build(config)


def test_dop_family_is_registered_as_centralized():
    for name in ("dop", "dop_deterministic"):
        spec = get_algo(name)
        assert spec.family == "dop" and spec.centralized and not spec.networked
    assert get_algo("dop").config_cls is DOPConfig


def test_dop_ablations_run_and_log_the_gradient_variance():
    for kwargs in ({"kappa": 1.0, "tree_backup": "common", "common_samples": 8},
                   {"kappa": 0.0}):  # fmt: skip
        config = RunConfig(
            **DIDACTIC_RUN, steps=16, eval_every=16,
            algo_kwargs={**DIDACTIC_KW, **kwargs, "off_batch": 4, "on_batch": 4,
                         "log_grad_variance": True},
        )  # fmt: skip
        metrics = train(config, progress=False, write=False).metrics
        assert np.isfinite(metrics["critic_loss"]).all() and (metrics["critic_loss"] > 0).all()
        assert (metrics["pg_variance"] >= 0).all()
        key = "critic_loss_tb" if kwargs["kappa"] == 1.0 else "critic_loss_on"
        other = "critic_loss_on" if kwargs["kappa"] == 1.0 else "critic_loss_tb"
        assert key in metrics and other not in metrics  # kappa 0 / 1 drop the other loss


# --- SMAX -----------------------------------------------------------------------------------


def test_smax_without_jaxmarl_is_a_config_error_naming_the_extra(monkeypatch):
    for mod in [m for m in sys.modules if m == "jaxmarl" or m.startswith("jaxmarl.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "jaxmarl", None)  # import jaxmarl -> ImportError
    with pytest.raises(ConfigError, match=r"\[smax\]"):
        make_env("smax", map="3m")


def test_smax_maps_step_through_the_netmarl_api():
    pytest.importorskip("jaxmarl")
    # actions: stop + 4 moves + one attack per enemy
    expected = {"3m": (3, 8), "2s3z": (5, 10), "5m_vs_6m": (5, 11)}
    for name, (agents, actions) in expected.items():
        env = make_env("smax", map=name)
        assert (env.spec.num_agents, env.spec.num_actions) == (agents, actions)
    env = make_env("smax", map="3m", episode_limit=30)

    @jax.jit  # one compiled 30-step episode of uniformly random available actions
    def episode(key):
        state, ts = env.reset(key)

        def body(carry, k):
            state, ts, done = carry
            logits = jnp.where(ts.avail_actions, 0.0, -1e9)
            actions = jax.random.categorical(jax.random.fold_in(k, 0), logits)
            state, nts = env.step(jax.random.fold_in(k, 1), state, actions)
            shared = jnp.all(nts.rewards == nts.team_reward)
            out = (jnp.where(done, 0.0, nts.team_reward), ~done, nts.terminated, shared)
            return (state, nts, done | nts.done), out

        keys = jax.random.split(key, 30)
        _, (rewards, live, terminated, shared) = jax.lax.scan(body, (state, ts, False), keys)
        return ts, rewards, live, terminated, shared

    ts, rewards, live, terminated, shared = episode(jax.random.key(0))
    assert ts.obs.shape == (3, *env.spec.obs_shape)
    assert ts.global_state.shape == env.spec.state_shape
    assert ts.avail_actions.shape == (3, env.spec.num_actions) and bool(ts.avail_actions.any())
    t = int(live.sum())  # steps until the episode ended
    assert bool(shared[:t].all())
    assert 1 <= t <= 30
    if t < 30:
        assert bool(terminated[t - 1])  # only a wiped-out team ends an episode early
    total = float(rewards.sum())
    assert 0.0 <= total <= 2.0 + 1e-5  # enemy health removed (<= 1) plus the win bonus (1)
