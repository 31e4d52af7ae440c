"""Native GRU kernels: built on this machine, equal to the JAX scans under vmap, and a clean
fallback to the JAX scans when they cannot be built or are switched off."""

from __future__ import annotations

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from netmarl import kernels
from netmarl.algos.value_decomposition import QMixer, gru_sequence, mix
from netmarl.nets import GRUAgent

needs_compiler = pytest.mark.skipif(
    not shutil.which("g++") and not shutil.which("c++"), reason="no C++ compiler here"
)


@needs_compiler
def test_kernels_build_and_register_on_this_machine():
    assert kernels.available()
    assert kernels.usable(64) and kernels.usable(128) and not kernels.usable(40)


@needs_compiler
def test_vmapped_sequences_match_the_jax_scans(monkeypatch):
    """vmap over a leading axis (seeds or agents) runs the kernels one element after another;
    values and gradients equal the pure-JAX scans to float rounding."""
    net = GRUAgent(32, 4)
    keys = jax.random.split(jax.random.key(0), 3)
    params = jax.vmap(lambda k: net.init(k, jnp.zeros(32), jnp.zeros(5)))(keys)
    x = jax.random.normal(jax.random.key(1), (3, 9, 10, 5))  # [seeds, T, B, F], B not % 4
    h0 = jnp.zeros((3, 10, 32))

    def loss(params, x, h0):
        return jnp.sum(jnp.sin(jax.vmap(gru_sequence)(params, x, h0)))

    value_and_grad = jax.value_and_grad(loss, argnums=(0, 1))
    native = jax.jit(value_and_grad)(params, x, h0)
    monkeypatch.setattr(kernels, "usable", lambda hidden: False)
    scan = jax.jit(value_and_grad)(params, x, h0)
    for a, b in zip(jax.tree.leaves(native), jax.tree.leaves(scan), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_switched_off_or_unbuildable_kernels_fall_back(monkeypatch, tmp_path):
    monkeypatch.setenv("NETMARL_NATIVE_KERNELS", "0")
    assert kernels.available.__wrapped__() is False
    monkeypatch.setenv("NETMARL_NATIVE_KERNELS", "1")
    monkeypatch.setenv("NETMARL_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setenv("CXX", "/bin/false")  # a compiler that fails
    with pytest.warns(UserWarning, match="using the JAX scans and mixer"):
        assert kernels.available.__wrapped__() is False
    assert not list(tmp_path.glob("*.so"))  # nothing half-written left behind


@needs_compiler
def test_native_mixer_matches_the_flax_mixer_under_vmap():
    """QMIX's mixer on the native kernel: Q_tot and the gradients with respect to the mixer's
    parameters, the agents' values and the states equal the flax module's to float rounding,
    for 3 agents, a row count that is not a multiple of the kernel's 8-row blocks, and a vmap
    over seeds (run one seed after another)."""
    mixer = QMixer(3, out_scale=1.0)  # a full-size output layer: every term matters
    keys = jax.random.split(jax.random.key(0), 2)
    params = jax.vmap(lambda k: mixer.init(k, jnp.zeros(3), jnp.zeros(7)))(keys)
    qs = jax.random.normal(jax.random.key(1), (2, 9, 5, 3))  # [seeds, T, B, N]: 45 rows
    states = jax.random.normal(jax.random.key(2), (2, 9, 5, 7))

    def loss(mix_fn):
        def total(params, qs, states):
            return jnp.sum(jnp.sin(jax.vmap(mix_fn)(params, qs, states)))

        return jax.jit(jax.value_and_grad(total, argnums=(0, 1, 2)))

    native = loss(lambda p, q, s: mix(mixer, p, q, s))(params, qs, states)
    reference = loss(mixer.apply)(params, qs, states)
    for a, b in zip(jax.tree.leaves(native), jax.tree.leaves(reference), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)


def test_mixer_falls_back_to_flax_for_widths_the_kernel_cannot_take():
    mixer = QMixer(2, embed=8, hyper=24)  # not multiples of 16
    params = mixer.init(jax.random.key(0), jnp.zeros(2), jnp.zeros(4))
    qs, states = jnp.ones((3, 2)), jnp.ones((3, 4))
    np.testing.assert_array_equal(mix(mixer, params, qs, states), mixer.apply(params, qs, states))
