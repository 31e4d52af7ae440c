"""Replay buffers as JAX pytrees (so they live inside the compiled train state).

One circular buffer serves both uses: items are transitions (``[...]`` leaves) or whole
episodes (``[T, ...]`` leaves); :func:`buffer_add` writes a batch of items with a leading
batch axis and :func:`buffer_sample` draws items uniformly from those stored. Per-agent
buffers (Li & Jia Algorithm 2) are the same pytree with a leading agent axis, vmapped.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


class ReplayBuffer(NamedTuple):
    data: Any  # pytree, every leaf [capacity, ...]
    position: Array  # [] int32: where the next item goes
    size: Array  # [] int32: items stored (<= capacity)

    @property
    def capacity(self) -> int:
        return jax.tree.leaves(self.data)[0].shape[0]


def buffer_init(example: Any, capacity: int) -> ReplayBuffer:
    """An empty buffer for items shaped like ``example`` (one item, no batch axis)."""
    if capacity < 1:
        raise ValueError(f"buffer capacity must be >= 1, got {capacity}")
    data = jax.tree.map(
        lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), example
    )
    return ReplayBuffer(data, jnp.int32(0), jnp.int32(0))


def buffer_add(buffer: ReplayBuffer, items: Any, active: Array | bool = True) -> ReplayBuffer:
    """Append a batch of items (leading axis B <= capacity), overwriting the oldest.

    Where ``active`` is False the buffer is left as it was: the slots are rewritten with
    their own contents, which costs the size of the items, not of the buffer (a ``where``
    over the whole buffer would copy all of it).
    """
    batch = jax.tree.leaves(items)[0].shape[0]
    capacity = buffer.capacity
    index = (buffer.position + jnp.arange(batch)) % capacity

    def write(d: Array, x: Array) -> Array:
        x = x.astype(d.dtype)
        return d.at[index].set(x if active is True else jnp.where(active, x, d[index]))

    added = jnp.where(active, batch, 0)
    return ReplayBuffer(
        jax.tree.map(write, buffer.data, items),
        (buffer.position + added) % capacity,
        jnp.minimum(buffer.size + added, capacity),
    )


def buffer_sample(buffer: ReplayBuffer, key: Array, batch_size: int) -> Any:
    """``batch_size`` items drawn uniformly (with replacement) from the stored ones.

    Sampling an empty buffer returns the zero items; callers gate learning on
    :func:`buffer_ready`.
    """
    index = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return jax.tree.map(lambda d: d[index], buffer.data)


def buffer_ready(buffer: ReplayBuffer, min_size: int) -> Array:
    return buffer.size >= min_size
