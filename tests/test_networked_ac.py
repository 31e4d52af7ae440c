"""Zhang et al. 2018 networked actor-critic and the centralized AC: the updates are the
algorithm's lines, consensus is the only channel, they learn, and bad input is refused."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from netmarl.algos.base import Step, vmap_seeds
from netmarl.algos.networked_ac import (
    CentralACConfig,
    NetworkedACConfig,
    build_networked_ac,
    make_central_ac_neural,
    make_networked_ac,
)
from netmarl.envs import evaluate_product_policy, make_env
from netmarl.errors import ConfigError, LocalityViolation
from netmarl.network import audit_locality, make_network

GAMMA = 0.9


@functools.cache
def small_mdp(num_agents: int = 3):
    return make_env("zhang_mdp", num_agents=num_agents, num_states=5)


def fake_batch(env, key, size: int = 6) -> Step:
    """Random transitions of ``env`` (any consistent values will do for the identities)."""
    n, a, s = env.spec.num_agents, env.spec.num_actions, env.num_states
    k = jax.random.split(key, 5)
    states = jax.nn.one_hot(jax.random.randint(k[0], (size,), 0, s), s)
    nexts = jax.nn.one_hot(jax.random.randint(k[1], (size,), 0, s), s)
    obs = jnp.broadcast_to(states[:, None], (size, n, s))
    next_obs = jnp.broadcast_to(nexts[:, None], (size, n, s))
    avail = jnp.ones((size, n, a), bool)
    return Step(
        obs, states, avail, jax.random.randint(k[2], (size, n), 0, a),
        jax.random.uniform(k[3], (size, n), maxval=4.0), jnp.zeros((size,)), next_obs, nexts,
        avail, jnp.zeros((size,), bool), jnp.zeros((size,), bool), (),
    )  # fmt: skip


def per_agent_vector(tree):
    """Each agent's slice of a pytree with a leading agent axis as one flat vector [N, P]: the
    locality audit then draws one random cotangent, not one per leaf (each threefry draw
    costs about a second of XLA:CPU compile)."""
    return jax.vmap(lambda t: ravel_pytree(t)[0])(tree)


def test_linear_algorithm1_step_is_lines_a1_1_to_a1_6():
    """From zero linear critics, one update gives w~_i = b_w r_i phi(s, a) (A1.2-A1.3), and a
    complete graph's consensus (A1.6) leaves every agent with the average of the w~_j."""
    env = small_mdp()
    network = make_network("complete", 3)
    config = NetworkedACConfig(critic="linear", critic_lr=0.1, max_grad_norm=1e6)
    learner, update = build_networked_ac(env, GAMMA, config, network)
    state = learner.init(jax.random.key(0))
    batch = jax.tree.map(lambda x: x[:1], fake_batch(env, jax.random.key(1)))
    new, _ = jax.jit(update)(state, batch, jax.random.key(2))
    x = jnp.append(batch.global_state[0], 1.0)
    hot = jax.nn.one_hot(batch.actions[0], 2).reshape(-1)
    phi = jnp.outer(x, jnp.append(hot, 1.0)).reshape(-1)  # phi(s, a) of the docstring
    # Q = 0 and mu = 0 before the step, so delta_i = r_i; consensus averages over agents
    expected = 0.1 * jnp.mean(batch.rewards[0]) * phi
    kernel = new.critic["params"]["Dense_0"]["kernel"][..., 0]  # [N, features]
    for i in range(3):
        np.testing.assert_allclose(kernel[i], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new.mu, 0.1 * batch.rewards[0], rtol=1e-6)  # (A1.1), local


@pytest.mark.parametrize("algorithm, critic", [(1, "neural"), (2, "linear")])
def test_networked_ac_update_is_local(algorithm, critic):
    """After one update agent i depends only on its graph neighbours (one consensus round),
    and the neighbour's private reward really arrives."""
    env = small_mdp(num_agents=4)
    network = make_network("line", 4, rounds=1)
    learner, update = build_networked_ac(
        env, GAMMA, NetworkedACConfig(algorithm, critic, hidden=(8,), actor_hidden=(8,)), network
    )
    state = learner.init(jax.random.key(0))
    batch = fake_batch(env, jax.random.key(1))

    def step(inputs):
        b = batch._replace(rewards=inputs["rewards"].T)
        s = state._replace(
            actor=inputs["actor"], critic=inputs["critic"], reward_model=inputs["model"]
        )
        new, _ = update(s, b, jax.random.key(3))
        new = {"actor": new.actor, "critic": new.critic, "model": new.reward_model, "mu": new.mu}
        return per_agent_vector(new)

    inputs = {
        "actor": state.actor,
        "critic": state.critic,
        "model": state.reward_model,
        "rewards": batch.rewards.T,
    }
    sensitivity = audit_locality(step, inputs, network, rounds=1)
    assert sensitivity[0, 1] > 0 and sensitivity[1, 0] > 0
    with pytest.raises(LocalityViolation):
        audit_locality(step, inputs, network, rounds=0)


def train_returns(learner, steps: int, every: int, seeds: int = 4):
    """Greedy returns [seeds] after ``steps`` (the chunk's own evaluation: no extra compile)."""
    trainer = learner.trainer(every, 8)
    state = jax.jit(jax.vmap(trainer.init))(jax.random.split(jax.random.key(0), seeds))
    chunk = jax.jit(vmap_seeds(trainer.chunk))
    for _ in range(steps // every):
        state, metrics = chunk(state)
    return np.asarray(metrics["return"])


def uniform_return(env) -> float:
    """Expected 100-step return of the uniform policy (per-step average reward x 100)."""
    probs = jnp.full((env.num_agents, env.num_states, env.num_actions), 0.5)
    return float(evaluate_product_policy(env, probs, 0.995).ret) * 0.005 * 100


@pytest.mark.parametrize(
    "make",
    [
        lambda env: make_networked_ac(
            env, GAMMA, NetworkedACConfig(algorithm=1), make_network("ring", 3)
        ),
        lambda env: make_networked_ac(
            env, GAMMA, NetworkedACConfig(algorithm=2, critic="linear"), make_network("ring", 3)
        ),
        lambda env: make_central_ac_neural(env, GAMMA, CentralACConfig()),
    ],
    ids=["algorithm1-neural", "algorithm2-linear", "central"],
)
def test_actor_critics_learn_a_random_networked_mdp(make):
    """Greedy team return over 100 steps rises well above the uniform policy's."""
    env = small_mdp()
    last = train_returns(make(env), steps=16_000, every=8_000)
    baseline = uniform_return(env)
    assert last.mean() > baseline + 20.0, (last, baseline)


def test_bad_input_is_refused_before_compiling():
    nav = make_env("navigation", num_agents=3, continuous=True)
    with pytest.raises(ConfigError, match="discrete actions"):
        make_networked_ac(nav, GAMMA, NetworkedACConfig(), make_network("ring", 3))
    with pytest.raises(ConfigError, match="discrete actions"):
        make_central_ac_neural(nav, GAMMA, CentralACConfig())
    env = small_mdp()
    with pytest.raises(ConfigError, match="graph has 4 agents"):
        make_networked_ac(env, GAMMA, NetworkedACConfig(), make_network("ring", 4))
    for field in ("critic_lr", "actor_lr"):
        with pytest.raises(ConfigError, match=f"{field} must be > 0"):
            make_networked_ac(
                env, GAMMA, NetworkedACConfig(**{field: 0.0}), make_network("ring", 3)
            )
    with pytest.raises(ConfigError, match="algorithm must be 1 or 2"):
        make_networked_ac(env, GAMMA, NetworkedACConfig(algorithm=3), make_network("ring", 3))
    with pytest.raises(ConfigError, match="policy: factored"):
        make_central_ac_neural(small_mdp(num_agents=13), GAMMA, CentralACConfig())


def test_registry_labels():
    from netmarl.algos import get_algo
    from netmarl.run.config import RunConfig
    from netmarl.run.driver import build

    assert get_algo("networked_ac").networked and not get_algo("networked_ac").centralized
    assert get_algo("central_ac_neural").centralized
    built = build(
        RunConfig(
            algo="networked_ac", env="zhang_mdp", env_kwargs={"num_agents": 4},
            algo_kwargs={"algorithm": 2, "critic": "linear"}, eval_every=16, steps=16,
        )
    )  # fmt: skip
    assert built.learner.steps_per_iteration == 16
