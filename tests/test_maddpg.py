"""MADDPG: learns with continuous and Gumbel-softmax discrete actions; its updates are eq. 5-6."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from netmarl.algos.base import collect, vmap_seeds
from netmarl.algos.maddpg import MADDPG, MADDPGConfig, make_maddpg
from netmarl.buffers import buffer_add, buffer_sample
from netmarl.envs import make_env
from netmarl.errors import ConfigError
from netmarl.network import sensitivity_matrix

GAMMA = 0.95
TINY = MADDPGConfig(
    num_envs=2, rollout=4, updates=2, batch_size=8, buffer_size=16, warmup=1, hidden=(16,)
)


@functools.cache
def nav(num_agents: int, continuous: bool):
    return make_env(
        "navigation",
        num_agents=num_agents,
        continuous=continuous,
        reward="lijia",
        observation="global",
    )


def train(continuous: bool, steps: int) -> tuple[np.ndarray, np.ndarray]:
    cfg = MADDPGConfig(
        num_envs=4, rollout=25, updates=50, batch_size=128, buffer_size=10_000, warmup=500
    )
    trainer = make_maddpg(nav(2, continuous), GAMMA, cfg).trainer(steps, 32)
    state = jax.jit(jax.vmap(trainer.init))(jax.random.split(jax.random.key(0), 2))
    _, metrics = jax.jit(vmap_seeds(trainer.chunk))(state)
    return np.asarray(metrics["return"]), np.asarray(metrics["q"])


def random_return(continuous: bool) -> float:
    """Mean team return of uniformly random actions (the level learning must beat)."""
    from netmarl.algos.base import episode_returns, feedforward_policy
    from netmarl.render import random_policy

    env = nav(2, continuous)
    act = random_policy(env)
    policy = feedforward_policy(lambda params, ts, key: act(key, ts))
    return float(episode_returns(env, policy, (), jax.random.key(1), 256).mean())


def test_maddpg_learns_continuous_navigation():
    ret, q = train(continuous=True, steps=10_000)
    low = random_return(True)
    assert low < -22
    assert ret.mean() > low + 7, f"returns {ret} vs random {low:.1f}"
    assert np.all(np.isfinite(q))


def test_maddpg_learns_discrete_navigation_with_gumbel_softmax():
    ret, _ = train(continuous=False, steps=8_000)
    low = random_return(False)
    assert ret.mean() > low + 7, f"returns {ret} vs random {low:.1f}"


@functools.cache
def tiny(continuous: bool):
    alg = MADDPG(nav(3, continuous), GAMMA, TINY)
    state = alg.init(jax.random.key(0))
    runner, steps = collect(
        alg.env, alg.act, state.params.actor, state.runner, jax.random.key(1), 8
    )
    state = state._replace(buffer=buffer_add(state.buffer, alg.transitions(steps)), runner=runner)
    batch, avail = buffer_sample(state.buffer, jax.random.key(2), 8)
    return alg, state, batch, avail


@pytest.mark.parametrize("continuous", [True, False], ids=["continuous", "gumbel"])
def test_actor_i_follows_critic_i_alone(continuous):
    """MADDPG eq. (5): actor i ascends Q_i with its own action swapped in; so the actor
    gradients have zero sensitivity to any other agent's critic (an exact statement)."""
    alg, state, batch, avail = tiny(continuous)
    key = jax.random.key(3)

    def actor_grads(critics):
        grads = jax.grad(lambda a: alg.actor_loss(a, critics, batch, avail, key)[0])(
            state.params.actor
        )
        return jax.vmap(lambda g: ravel_pytree(g)[0])(grads)  # one cotangent draw, not one per leaf

    s = sensitivity_matrix(actor_grads, state.params.critic)
    n = alg.num_agents
    assert np.all(np.diag(s) > 0)
    np.testing.assert_array_equal(s[~np.eye(n, dtype=bool)], 0.0)


def test_actor_gradient_is_the_deterministic_policy_gradient():
    """Eq. (5): grad_theta_i J = E[grad_theta mu_i(o_i) grad_{a_i} Q_i(x, a)|a_i = mu_i(o_i)],
    the other actions from the buffer, assembled here by hand from a jvp-free chain rule."""
    alg, state, batch, avail = tiny(True)
    p = state.params
    i = 1
    x = alg.critic_x(batch.obs, batch.state)

    def q_i_of_action(a_i):  # Q_i with agent i's action replaced, [B]
        joint = batch.actions.at[:, i].set(a_i)
        tiled = jnp.broadcast_to(joint[:, None], (joint.shape[0], alg.num_agents, *joint.shape[1:]))
        return alg.q_values(p.critic, x, tiled)[:, i]

    mu = alg.actions(p.actor, batch.obs, avail, None, differentiable=True)[:, i]
    dq_da = jax.grad(lambda a: jnp.sum(q_i_of_action(a)))(mu)  # [B, A]

    def mu_i(actor):
        return alg.actions(actor, batch.obs, avail, None, differentiable=True)[:, i]

    _, vjp = jax.vjp(mu_i, p.actor)
    (expected,) = vjp(-dq_da / batch.obs.shape[0])  # descend -J
    got = jax.grad(lambda a: alg.actor_loss(a, p.critic, batch, avail, jax.random.key(0))[0])(
        p.actor
    )
    for e, g in zip(jax.tree.leaves(expected), jax.tree.leaves(got), strict=True):
        np.testing.assert_allclose(g[i], e[i], rtol=1e-4, atol=1e-6)


def test_critic_target_is_the_target_networks_bellman_backup():
    """Eq. (6): with the target critic equal to the critic's zero-initialised copy, the loss is
    the mean squared error to r + gamma (1 - terminal) Q'(x', mu'(o'))."""
    alg, state, batch, avail = tiny(True)
    p = state.params
    zero = jax.tree.map(jnp.zeros_like, p.critic)
    bias = jax.tree.map(lambda v: v, zero)
    bias["params"]["Dense_1"]["bias"] = jnp.full_like(zero["params"]["Dense_1"]["bias"], 2.0)
    params = p._replace(critic=zero, target_critic=bias)
    loss, _ = alg.critic_loss(zero, params, batch, jax.random.key(0))
    y = batch.reward + GAMMA * (1 - batch.terminal[:, None]) * 2.0
    np.testing.assert_allclose(loss, jnp.sum(jnp.mean(y**2, axis=0)), rtol=1e-5)


def test_policy_delay_updates_actors_every_other_step():
    cfg = MADDPGConfig(**{**TINY.__dict__, "policy_delay": 2})
    alg, state, _, _ = tiny(True)
    alg = MADDPG(alg.env.env, GAMMA, cfg)
    s1, _ = alg.update(state, jax.random.key(1))
    s2, _ = alg.update(s1, jax.random.key(2))
    same = lambda a, b: all(  # noqa: E731
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )
    assert not same(s1.params.critic, state.params.critic)
    assert same(s1.params.actor, state.params.actor)
    assert not same(s2.params.actor, s1.params.actor)


def test_gumbel_actions_respect_available_actions():
    alg, state, _, _ = tiny(False)
    _, ts = alg.env.reset(jax.random.key(0))
    avail = jnp.zeros_like(ts.avail_actions).at[:, 3].set(True).at[0, 1].set(True)
    ts = ts._replace(avail_actions=avail)
    acts = jax.vmap(lambda k: alg.act(state.params.actor, (), ts, k)[0])(
        jax.random.split(jax.random.key(1), 200)
    )
    ok = np.asarray(avail)[np.arange(3)[None, :], np.asarray(acts)]
    assert ok.all()
    assert set(np.unique(np.asarray(acts)[:, 0])) == {1, 3}  # a stochastic policy


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"critic_lr": 0.0}, "critic_lr must be > 0"),
        ({"actor_lr": -1.0}, "actor_lr must be > 0"),
        ({"tau": 2.0}, "tau must be in"),
        ({"policy_delay": 0}, "policy_delay must be > 0"),
        ({"batch_size": 64, "buffer_size": 32}, "exceeds buffer_size"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        MADDPG(nav(2, True), GAMMA, MADDPGConfig(**kwargs))


def test_registered_as_centralized():
    from netmarl.algos import get_algo

    spec = get_algo("maddpg")
    assert spec.centralized and not spec.networked and spec.config_cls is MADDPGConfig
