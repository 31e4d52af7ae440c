"""Native GRU kernels: built on this machine, equal to the JAX scans under vmap, and a clean
fallback to the JAX scans when they cannot be built or are switched off."""

from __future__ import annotations

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from netmarl import kernels
from netmarl.algos.value_decomposition import gru_sequence
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
    with pytest.warns(UserWarning, match="using the JAX scans"):
        assert kernels.available.__wrapped__() is False
    assert not list(tmp_path.glob("*.so"))  # nothing half-written left behind
