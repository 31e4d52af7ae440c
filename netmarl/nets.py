"""Shared network blocks (Flax) and the distributions the learners sample from.

Per-agent networks: every agent owns its own copy of a module. :func:`init_stacked` builds N
independent parameter sets with a leading agent axis, and :func:`apply_stacked` applies agent
i's parameters to agent i's input (a ``vmap`` over the agent axis), so no agent's forward pass
ever reads another agent's weights.

Distributions are a few lines each (no distrax: it pulls a nightly TensorFlow Probability).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array

# A large negative logit for unavailable actions (finite, so no NaN in softmax gradients).
MASKED_LOGIT = -1e9


class MLP(nn.Module):
    """Dense layers with ReLU between them; ``out`` outputs (no final activation).

    He-normal hidden layers and a last layer with variance ``final_scale^2 / fan_avg`` (a
    small ``final_scale`` starts a policy near uniform). Not CleanRL's orthogonal init: normals
    suffice here (see :func:`orthogonal_init` for why a LAPACK QR must stay out of inits).
    """

    hidden: Sequence[int]
    out: int
    final_scale: float = 1.0

    @nn.compact
    def __call__(self, x: Array) -> Array:
        for width in self.hidden:
            x = nn.relu(nn.Dense(width, kernel_init=nn.initializers.he_normal())(x))
        final = nn.initializers.variance_scaling(self.final_scale**2, "fan_avg", "normal")
        return nn.Dense(self.out, kernel_init=final)(x)


def _orthonormal_columns(z: Array) -> Array:
    """Gram-Schmidt on the columns of ``z`` [rows, cols], rows >= cols, run twice per column
    ("CGS2": the second pass removes what rounding left of the earlier directions).

    Gram-Schmidt's R has a positive diagonal, so this is exactly the Q of ``qr(z)`` with the
    sign correction of Mezzadri (2007) that :func:`jax.random.orthogonal` applies.
    """

    def add_column(q: Array, j: Array) -> tuple[Array, None]:
        v = z[:, j]
        for _ in range(2):  # columns j.. of q are still zero, so no mask is needed
            v = v - q @ (q.T @ v)
        return q.at[:, j].set(v / jnp.sqrt(jnp.sum(v * v))), None

    q, _ = jax.lax.scan(add_column, jnp.zeros_like(z), jnp.arange(z.shape[1]))
    return q


def orthogonal_init(scale: float = 1.0, column_axis: int = -1) -> nn.initializers.Initializer:
    """:func:`jax.nn.initializers.orthogonal` (same normal draw, same matrix up to rounding)
    computed with plain matrix products instead of LAPACK's QR.

    [workaround] jaxlib 0.10.2's CPU QR kernel splits a batched QR (one per seed under
    ``vmap``) into tasks on XLA's intra-op thread pool and blocks until they finish. When the
    pool's workers are all running such QRs (a GRU's independent gate matrices, on 2 cores),
    every worker waits for a task no worker is free to run and the program hangs forever
    with 0% CPU (native stacks: ``jax::ParallelBatchMap`` -> ``BlockingCounter::Wait`` on
    every ``tf_XLAEigen`` thread). ``--xla_cpu_multi_thread_eigen=false`` does not avoid it.
    """

    def init(key: Array, shape: Sequence[int], dtype: Any = jnp.float32) -> Array:
        n_cols = shape[column_axis]
        n_rows = math.prod(shape) // n_cols
        z = jax.random.normal(key, (max(n_rows, n_cols), min(n_rows, n_cols)), dtype)
        q = _orthonormal_columns(z)
        q = q.T if n_rows < n_cols else q
        q = jnp.reshape(
            q, (*(d for i, d in enumerate(shape) if i != column_axis % len(shape)), n_cols)
        )
        return scale * jnp.moveaxis(q, -1, column_axis)

    return init


class GRUAgent(nn.Module):
    """The recurrent agent of EPyMARL / DVDN: Dense + ReLU, a GRU cell, a Dense head.

    ``__call__(h, x) -> (h_next, out)`` for one time step; :meth:`initial_carry` is zeros.
    Flax's GRU cell with its usual orthogonal recurrent init, computed by
    :func:`orthogonal_init` (no LAPACK call, see there).
    """

    hidden: int
    out: int

    @nn.compact
    def __call__(self, h: Array, x: Array) -> tuple[Array, Array]:
        x = nn.relu(nn.Dense(self.hidden)(x))
        h, _ = nn.GRUCell(self.hidden, recurrent_kernel_init=orthogonal_init())(h, x)
        return h, nn.Dense(self.out)(h)

    def initial_carry(self, batch_shape: tuple[int, ...] = ()) -> Array:
        return jnp.zeros((*batch_shape, self.hidden), jnp.float32)


def init_stacked(module: nn.Module, key: Array, num: int, *inputs: Any) -> Any:
    """``num`` independently initialised parameter sets with a leading axis (one per agent)."""
    keys = jax.random.split(key, num)
    return jax.vmap(lambda k: module.init(k, *inputs))(keys)


def apply_stacked(module: nn.Module, params: Any, *inputs: Any) -> Any:
    """Agent i's parameters on agent i's inputs; every input has the leading agent axis."""
    return jax.vmap(module.apply)(params, *inputs)


# --- categorical ----------------------------------------------------------------------------


def masked_logits(logits: Array, avail: Array | None) -> Array:
    """Logits with unavailable actions pushed to :data:`MASKED_LOGIT`."""
    if avail is None:
        return logits
    return jnp.where(avail, logits, MASKED_LOGIT)


def categorical_log_prob(logits: Array, action: Array) -> Array:
    """log softmax(logits)[action] along the last axis."""
    logp = jax.nn.log_softmax(logits)
    return jnp.take_along_axis(logp, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


def categorical_entropy(logits: Array) -> Array:
    logp = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(logp) * logp, axis=-1)


def categorical_sample(key: Array, logits: Array) -> Array:
    return jax.random.categorical(key, logits).astype(jnp.int32)


def gumbel_softmax(key: Array, logits: Array, temperature: float = 1.0) -> Array:
    """Straight-through Gumbel-softmax (Jang et al. 2017): a one-hot sample in the forward
    pass whose gradient is that of the relaxed sample (MADDPG's discrete actions)."""
    gumbel = jax.random.gumbel(key, logits.shape, logits.dtype)
    soft = jax.nn.softmax((logits + gumbel) / temperature)
    hard = jax.nn.one_hot(jnp.argmax(soft, axis=-1), logits.shape[-1], dtype=soft.dtype)
    return soft + jax.lax.stop_gradient(hard - soft)


# --- Gaussian -------------------------------------------------------------------------------

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


def gaussian_log_prob(mean: Array, log_std: Array, x: Array) -> Array:
    """log N(x; mean, diag(exp(log_std)^2)), summed over the last axis."""
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi), axis=-1)


def squashed_gaussian_sample(
    key: Array, mean: Array, log_std: Array, low: float, high: float
) -> tuple[Array, Array]:
    """Reparameterised sample a = low + (high - low) (tanh(u) + 1) / 2, u ~ N(mean, std^2),
    and its log-density (the change of variables of SAC, Haarnoja et al. 2018, App. C)."""
    log_std = jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)
    squashed = jnp.tanh(u)
    half_range = (high - low) / 2
    # log|da/du| = log(half_range) + log(1 - tanh(u)^2), the latter written stably
    log_det = jnp.log(half_range) + 2 * (jnp.log(2.0) - u - jax.nn.softplus(-2 * u))
    log_prob = gaussian_log_prob(mean, log_std, u) - jnp.sum(log_det, axis=-1)
    return low + half_range * (squashed + 1), log_prob


def squash(u: Array, low: float, high: float) -> Array:
    """The deterministic action of a squashed policy: ``low + (high - low)(tanh(u) + 1)/2``."""
    return low + (high - low) * (jnp.tanh(u) + 1) / 2
