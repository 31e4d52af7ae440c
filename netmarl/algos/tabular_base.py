"""The shared training loop of the tabular learners (one online trajectory per seed).

A tabular learner is four pure functions over a pytree of tables:

    params = init(key)
    actions = act(params, s, key)                          # env actions [N] for state index s
    params, metrics = update(params, transition, key)      # one online step
    probs = policy(params)                                 # [L, S, A_l] each learner's policy

``act`` and ``update`` may be :class:`UniformFn`: they then also accept their random numbers
pre-drawn instead of a key, which the trainer uses to draw many steps' randomness at once.

:func:`make_trainer` turns a learner and a :class:`~netmarl.envs.tabular.TabularMDP` env into
``init_fn(key) -> TrainState`` and ``chunk_fn(TrainState) -> (TrainState, metrics)``: a chunk
is ``lax.scan`` over ``steps_per_chunk`` environment steps followed by an exact evaluation of
the policy, so one call of the compiled chunk advances every seed (vmapped) at once.

Speed (XLA CPU, where a step is a few dozen tiny kernels and their count is what costs): one
PRNG call per block of steps rather than several per step, inverse-CDF sampling instead of
Gumbel-max, table writes that XLA can do in place (see ``critic_step``), and the random MDP's
stored CDF. ``benchmarks/bench_lijia_tabular.py`` measures it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from netmarl.algos.base import Trainer, strong_types
from netmarl.envs.tabular import evaluate_joint_policy, evaluate_product_policy

Array = jax.Array


class Transition(NamedTuple):
    """One online transition as every agent sees it (the state is global, Li & Jia Def. 1)."""

    s: Array  # [] int32 state index
    actions: Array  # [N] int32 every agent's own action (agent i only reads actions[i])
    rewards: Array  # [N] local rewards
    team_reward: Array  # [] the shared / team reward
    s_next: Array  # [] int32 next state index (before any reset)
    terminated: Array  # [] bool: s_next is terminal (no bootstrap)


class TabularLearner(NamedTuple):
    """A tabular learner: pure functions over its tables (see the module docstring)."""

    name: str
    init: Callable[[Array], Any]
    act: Callable[[Any, Array, Array], Array]
    update: Callable[[Any, Transition, Array], tuple[Any, dict[str, Array]]]
    # Each learner's current policy as action probabilities [L, S, A_l]: L = N agents over
    # their own actions, or L = 1 learner over the A^N joint actions (centralized learners).
    policy: Callable[[Any], Array]
    evaluate: Callable[[Any, float], Any]  # (params, gamma) -> exact PolicyValue

    @classmethod
    def create(
        cls, name: str, env: Any, init: Callable, act: Callable, update: Callable,
        policy: Callable[[Any], Array],
    ) -> TabularLearner:  # fmt: skip
        """A learner whose ``evaluate`` scores ``policy`` exactly on ``env``."""

        def evaluate(params: Any, gamma: float) -> Any:
            return exact_policy_value(env, policy(params), gamma)

        return cls(name, init, act, update, policy, evaluate)


def exact_policy_value(env: Any, probs: Array, gamma: float) -> Any:
    """Exact PolicyValue of learner policies ``probs [L, S, A_l]`` on a TabularMDP env.

    L = N: the product of the agents' own policies; L = 1 with A^N actions: a joint policy.
    """
    if probs.shape[0] == env.num_agents and probs.shape[-1] == env.num_actions:
        return evaluate_product_policy(env, probs, gamma)
    return evaluate_joint_policy(env, probs[0], gamma)


def greedy(probs: Array) -> Array:
    """The deterministic policy that takes each learner's most probable action."""
    return jax.nn.one_hot(jnp.argmax(probs, axis=-1), probs.shape[-1], dtype=probs.dtype)


class TrainState(NamedTuple):
    params: Any
    env_state: Any
    key: Array
    step: Array  # [] int32 environment steps taken


# --- randomness -----------------------------------------------------------------------------
#
# On XLA CPU every PRNG call inside the scanned step costs ~1-2 us with 10 vmapped seeds (a
# threefry hash is ~10 ns per number and each call is its own kernel), as much as the whole
# tabular update. So the trainer pre-draws the U[0, 1) numbers of a block of up to
# UNIFORM_BLOCK steps in one call and hands each consumer its slice: learners whose ``act`` /
# ``update`` are :class:`UniformFn` and envs with ``step_from_uniforms`` /
# ``reset_from_uniforms`` (the random MDPs). Anything else gets a PRNG key per step.

UNIFORM_BLOCK = 1024  # at most this many steps' uniforms per PRNG call (~50 KB per seed)


def _block_length(steps: int) -> int:
    """Steps per block: the largest divisor of ``steps`` up to UNIFORM_BLOCK when there is a
    sizeable one (a chunk is then a single compiled scan; e.g. 1000 for 20k-step chunks), else
    UNIFORM_BLOCK (the remainder then runs as a second, shorter scan)."""
    divisor = max(d for d in range(1, min(steps, UNIFORM_BLOCK) + 1) if steps % d == 0)
    return divisor if divisor >= UNIFORM_BLOCK // 4 else UNIFORM_BLOCK


class UniformFn:
    """A learner's ``act`` or ``update`` that draws a fixed number of U[0, 1) numbers.

    Call it as a TabularLearner function, ``fn(params, x, rand)``: ``rand`` is a PRNG key (the
    numbers are drawn from it) or the ``num_uniforms`` numbers themselves, float32 in [0, 1)
    (what the trainer passes). ``fn`` itself always receives the numbers.
    """

    def __init__(self, fn: Callable[[Any, Any, Array], Any], num_uniforms: int):
        self.fn = fn
        self.num_uniforms = int(num_uniforms)

    def __call__(self, params: Any, x: Any, rand: Array) -> Any:
        return self.fn(params, x, uniforms(rand, self.num_uniforms))


def uniforms(rand: Array, n: int) -> Array:
    """``n`` U[0, 1) float32 numbers from ``rand``: a PRNG key, or the numbers themselves."""
    rand = jnp.asarray(rand)
    if jnp.issubdtype(rand.dtype, jnp.floating):
        if rand.shape != (n,):
            raise ValueError(f"expected {n} uniform numbers, got an array of shape {rand.shape}")
        return rand.astype(jnp.float32)
    return jax.random.uniform(rand, (n,), jnp.float32)


def make_trainer(
    env: Any, learner: TabularLearner, steps_per_chunk: int, gamma: float, unroll: int = 1
) -> tuple[Callable[[Array], TrainState], Callable[[TrainState], tuple[TrainState, dict]]]:
    """Build ``init_fn`` and ``chunk_fn`` for one seed; vmap/jit them in the driver."""
    # Layout of one step's pre-drawn uniforms; None: that consumer takes a PRNG key.
    draws = {
        "act": getattr(learner.act, "num_uniforms", None),
        "update": getattr(learner.update, "num_uniforms", None),
        "step": getattr(env, "step_uniforms", None) if hasattr(env, "step_from_uniforms") else None,
        "reset": (
            getattr(env, "reset_uniforms", None) if hasattr(env, "reset_from_uniforms") else None
        ),
    }
    offsets, width = {}, 0
    for name, count in draws.items():
        if count is not None:
            offsets[name] = (width, width + count)
            width += count
    keyed = [name for name, count in draws.items() if count is None]

    def init_fn(key: Array) -> TrainState:
        key_params, key_env, key_run = jax.random.split(key, 3)
        env_state, _ = env.reset(key_env)
        return TrainState(learner.init(key_params), env_state, key_run, jnp.int32(0))

    def env_step(carry: tuple[Any, Any, Array], xs: tuple[Array, Array]) -> tuple[Any, dict]:
        params, env_state, key_block = carry
        u, index = xs  # u [width]: this step's uniforms; index: the step within the block
        rand = {name: u[lo:hi] for name, (lo, hi) in offsets.items()}
        if keyed:  # the PRNG key path, for consumers without a uniform-driven version
            step_key = jax.random.fold_in(key_block, index)
            rand.update(zip(keyed, jax.random.split(step_key, len(keyed)), strict=True))

        s = env.state_index(env_state)
        actions = learner.act(params, s, rand["act"])
        if "step" in offsets:
            next_env_state, ts = env.step_from_uniforms(rand["step"], env_state, actions)
        else:
            next_env_state, ts = env.step(rand["step"], env_state, actions)
        transition = Transition(
            s=s,
            actions=actions,
            rewards=ts.rewards,
            team_reward=ts.team_reward,
            s_next=env.state_index(next_env_state),
            terminated=ts.terminated,
        )
        params, metrics = learner.update(params, transition, rand["update"])
        # Episodes that end restart from the initial distribution; the update above has
        # already used the true next state, so truncation does not cut the bootstrap.
        if "reset" in offsets:
            reset_state, _ = env.reset_from_uniforms(rand["reset"])
        else:
            reset_state, _ = env.reset(rand["reset"])
        next_env_state = jax.tree.map(
            lambda r, n: jnp.where(ts.done, r, n), reset_state, next_env_state
        )
        metrics = {"team_reward": ts.team_reward, **metrics}
        return (params, next_env_state, key_block), metrics

    def run_block(params: Any, env_state: Any, key: Array, length: int) -> tuple[Any, Any, dict]:
        """``length`` steps from one PRNG call; returns the per-step metrics summed."""
        key_uniforms, key_block = jax.random.split(key)
        u = jax.random.uniform(key_uniforms, (length, width), jnp.float32)
        xs = (u, jnp.arange(length, dtype=jnp.int32))
        (params, env_state, _), metrics = jax.lax.scan(
            env_step, (params, env_state, key_block), xs, unroll=min(unroll, length)
        )
        return params, env_state, jax.tree.map(lambda m: jnp.sum(m, axis=0), metrics)

    block_length = _block_length(steps_per_chunk)
    num_blocks, remainder = divmod(steps_per_chunk, block_length)

    def chunk_fn(train_state: TrainState) -> tuple[TrainState, dict]:
        params, env_state, key, step = train_state
        key, key_chunk = jax.random.split(key)

        def block(carry: tuple[Any, Any], block_key: Array) -> tuple[tuple[Any, Any], dict]:
            params, env_state, sums = run_block(*carry, block_key, block_length)
            return (params, env_state), sums

        sums = []
        if num_blocks:
            block_keys = jax.random.split(jax.random.fold_in(key_chunk, 0), num_blocks)
            (params, env_state), block_sums = jax.lax.scan(block, (params, env_state), block_keys)
            sums.append(jax.tree.map(lambda m: jnp.sum(m, axis=0), block_sums))
        if remainder:
            key_rest = jax.random.fold_in(key_chunk, 1)
            params, env_state, rest = run_block(params, env_state, key_rest, remainder)
            sums.append(rest)
        metrics = jax.tree.map(lambda *m: sum(m) / steps_per_chunk, *sums)
        step = step + steps_per_chunk
        value = learner.evaluate(params, gamma)
        metrics["return"] = value.ret
        metrics["env_steps"] = step
        return TrainState(params, env_state, key, step), metrics

    return init_fn, chunk_fn


def tabular_trainer(
    env: Any, learner: TabularLearner, steps_per_chunk: int, gamma: float
) -> Trainer:
    """The driver's :class:`~netmarl.algos.base.Trainer` of a tabular learner (exact
    evaluation of its policy after every chunk)."""
    init_fn, chunk_fn = make_trainer(env, learner, steps_per_chunk, gamma)
    return Trainer(
        lambda key: strong_types(init_fn(key)),
        chunk_fn,
        lambda state: learner.evaluate(state.params, gamma).ret,
        lambda state: state.params,
    )


# --- sampling -------------------------------------------------------------------------------

SAMPLE_BLOCK = 16  # rows longer than this are sampled in two levels of blocks this long


def sample_categorical(weights: Array, u: Array) -> Array:
    """Sample index k of each row of ``weights [..., K]`` (>= 0, unnormalised) with ``u [...]``.

    Inverse CDF: k = #{j < K-1 : cdf_j <= u * cdf_{K-1}}, i.e. P(k) = weights_k / sum(weights)
    for u ~ U[0, 1). One uniform per sample and no logarithms (Gumbel-max needs K logs).
    Rows longer than :data:`SAMPLE_BLOCK` are sampled in two levels (see
    :func:`_sample_two_level`), which gives the same distribution.
    """
    if weights.shape[-1] > SAMPLE_BLOCK:
        return _sample_two_level(weights, u)
    cdf = _cumsum_last(weights)
    return sample_categorical_cdf(cdf, u * cdf[..., -1])


def _sample_two_level(weights: Array, u: Array) -> Array:
    """:func:`sample_categorical` for long rows, in two levels: a block of ``SAMPLE_BLOCK``
    entries by inverting the CDF of the block totals at ``u``, then an entry of that block by
    inverting its own CDF at where ``u`` fell inside the block's interval (a U[0, 1) number
    given the block), so P(entry) = P(block) P(entry | block) = weights_entry / sum(weights).

    [measured] A full prefix sum over K = 243 entries (centralized AC, joint actions) is the
    costliest op of a step on XLA CPU; two prefix sums of ~16 entries make the step ~1.3x
    faster.
    """
    k, m = weights.shape[-1], SAMPLE_BLOCK
    b = -(-k // m)  # blocks of m entries, the last one padded with zero weights
    pad = [(0, 0)] * (weights.ndim - 1) + [(0, b * m - k)]
    blocks = jnp.pad(weights, pad).reshape(*weights.shape[:-1], b, m)
    cdf = _cumsum_last(jnp.sum(blocks, axis=-1))  # [..., b]
    target = u * cdf[..., -1]
    block = sample_categorical_cdf(cdf, target)  # cdf[block - 1] <= target < cdf[block]

    def cdf_at(i: Array) -> Array:
        return jnp.take_along_axis(cdf, jnp.maximum(i, 0)[..., None], axis=-1)[..., 0]

    lower = jnp.where(block > 0, cdf_at(block - 1), 0.0)
    upper = cdf_at(block)
    # In [0, 1) but for round-off (XLA may recompute cdf in two fusions): clip, so that a
    # zero-weight entry at either end of the block is never drawn.
    inside = jnp.clip((target - lower) / jnp.maximum(upper - lower, 1e-30), 0.0, 1.0)
    row = jnp.take_along_axis(blocks, block[..., None, None], axis=-2)[..., 0, :]  # [..., m]
    row_cdf = _cumsum_last(row)
    entry = sample_categorical_cdf(row_cdf, inside * row_cdf[..., -1])
    return jnp.minimum(block * m + entry, k - 1)  # the min guards float round-off


def sample_categorical_cdf(cdf: Array, target: Array) -> Array:
    """#{j < K-1 : cdf_j <= target}: the inverse CDF at ``target`` (rows of ``cdf [..., K]``)."""
    return jnp.sum(cdf[..., :-1] <= target[..., None], axis=-1, dtype=jnp.int32)


def softmax_weights(logits: Array) -> Array:
    """``exp(logits - max)`` along the last axis: softmax up to its normaliser."""
    return jnp.exp(logits - jnp.max(logits, axis=-1, keepdims=True))


def softmax_probs(logits: Array) -> Array:
    """``softmax(logits)`` along the last axis, from the same :func:`softmax_weights` as
    :func:`sample_softmax` so that XLA computes the exponentials once for both."""
    weights = softmax_weights(logits)
    return weights / jnp.sum(weights, axis=-1, keepdims=True)


def sample_softmax(logits: Array, u: Array) -> Array:
    """Sample from ``softmax(logits)`` along the last axis with ``u [...]`` (int32)."""
    return sample_categorical(softmax_weights(logits), u)


def _cumsum_last(x: Array) -> Array:
    """``cumsum`` over the last axis (the action axis, or a block of joint actions).

    [measured] XLA CPU lowers ``jnp.cumsum`` to a separate reduce-window kernel; for up to 16
    entries a chain of adds fuses with its neighbours instead (~5% faster Algorithm 1 steps).
    """
    if x.shape[-1] > SAMPLE_BLOCK:
        return jnp.cumsum(x, axis=-1)
    parts = [x[..., 0]]
    for j in range(1, x.shape[-1]):
        parts.append(parts[-1] + x[..., j])
    return jnp.stack(parts, axis=-1)


def epsilon_greedy(rand: Array, q: Array, epsilon: float | Array) -> Array:
    """Greedy action of ``q [..., A]`` with probability 1 - epsilon, else uniform (int32).

    ``rand``: a PRNG key, or ``u [..., 2]`` U[0, 1) numbers (u[..., 0] decides to explore,
    u[..., 1] picks the random action).
    """
    u = rand if jnp.issubdtype(jnp.asarray(rand).dtype, jnp.floating) else None
    if u is None:
        u = jax.random.uniform(rand, (*q.shape[:-1], 2))
    num_actions = q.shape[-1]
    random_action = jnp.minimum((u[..., 1] * num_actions).astype(jnp.int32), num_actions - 1)
    greedy = jnp.argmax(q, axis=-1).astype(jnp.int32)
    return jnp.where(u[..., 0] < epsilon, random_action, greedy)


def step_size(base: float, visits: Array, power: float) -> Array:
    """Robbins-Monro step ``base / (1 + visits)^power`` (power 0 gives a constant step).

    Li & Jia Theorem 1 asks sum(alpha) = inf and sum(alpha^2) < inf per state-action pair
    (eq. 9-10): any power in (0.5, 1] satisfies both.
    """
    return base / (1.0 + visits.astype(jnp.float32)) ** power
