"""Gradient tracking (DIGing: Nedić, Olshevsky & Shi 2017; DVDN eq. (4a)-(4d)).

Agent i keeps parameters w_i and a tracker z_i of the *team* gradient sum_j g_j / N:

    w_i <- sum_j a_ij w_j - eta z_i                        (DVDN eq. (4d))
    z_i <- sum_j a_ij z_j + g_i(w_new) - g_i(w_old)         (DVDN eq. (4c)),  z_i(0) = g_i(0)

Because W is doubly stochastic, mean_i z_i = mean_i g_i at every step, so with a constant
step the agents reach the minimiser of sum_i f_i exactly, where plain decentralized gradient
descent (`dgd_step`) stalls at an O(eta) distance from it.

All functions take pytrees whose leaves have a leading agent axis N. `tracking_init` and
`tracking_update` are the pieces an algorithm needs to feed the tracker into optax (e.g.
Adam) instead of a plain step; `diging_step` is the complete plain-gradient step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from netmarl.network.network import MixStats, Network

_tmap = jax.tree_util.tree_map


class TrackingState(NamedTuple):
    """tracker: z (estimate of the average gradient); last_grad: the g_i it was built from."""

    tracker: Any
    last_grad: Any


def tracking_init(grads: Any) -> TrackingState:
    """z_i(0) = g_i(0)."""
    return TrackingState(tracker=grads, last_grad=grads)


def tracking_update(
    network: Network, state: TrackingState, new_grads: Any, key: jax.Array | None = None
) -> tuple[TrackingState, MixStats]:
    """z <- W z + g_new - g_old (DVDN eq. (4c)); then step the parameters with the new z."""
    mixed, stats = network.mix(state.tracker, key)
    tracker = _tmap(lambda z, g1, g0: z + g1 - g0, mixed, new_grads, state.last_grad)
    return TrackingState(tracker, new_grads), stats


def diging_step(
    network: Network,
    params: Any,
    state: TrackingState,
    grad_fn: Callable[[Any], Any],
    step_size: float,
    key: jax.Array | None = None,
) -> tuple[Any, TrackingState, MixStats]:
    """One DIGing iteration; `grad_fn(params)` returns each agent's gradient of its own f_i.

    Parameters and tracker travel in the same message (one `mix`), so on a time-varying graph
    both use the same W(k), as in Nedić et al.
    """
    (mixed_w, mixed_z), stats = network.mix((params, state.tracker), key)
    new_params = _tmap(lambda w, z: w - step_size * z, mixed_w, state.tracker)
    new_grads = grad_fn(new_params)
    tracker = _tmap(lambda z, g1, g0: z + g1 - g0, mixed_z, new_grads, state.last_grad)
    return new_params, TrackingState(tracker, new_grads), stats


def dgd_step(
    network: Network,
    params: Any,
    grad_fn: Callable[[Any], Any],
    step_size: float,
    key: jax.Array | None = None,
) -> tuple[Any, MixStats]:
    """Plain decentralized gradient descent, w <- W w - eta g(w) (Nedić & Ozdaglar 2009)."""
    grads = grad_fn(params)
    mixed, stats = network.mix(params, key)
    return _tmap(lambda w, g: w - step_size * g, mixed, grads), stats
