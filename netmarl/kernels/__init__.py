"""Native CPU kernels for the value-decomposition learners: the GRU recurrence and QMIX's mixer.

Why: the recurrence is 3 x (T + 1) dependent steps per update (online forward, target
forward, backward), each a [B, H] x [H, 3H] product and a few elementwise gates. XLA:CPU runs
every step as a dozen separate small operations (~1-2 us of overhead each, the products at
70-90 GFLOP/s), so the three scans took more than half of a VDN update on LBF. The kernels in
``gru_scan.cc`` run a whole scan in one call, the product register-blocked and the gates
vectorised while the rows are in cache (``benchmarks/RESULTS.md`` has the figures). QMIX's
mixer is ~40 small XLA operations and thin [T B, S] x [S, k] products forward and backward;
``qmix_mixer.cc`` runs it eight rows at a time through all its layers.

How: the C++ sources are compiled on first use with the machine's C++ compiler (``g++`` or
``$CXX``; ``-O3 -march=native``) into a cache directory (``$NETMARL_KERNEL_CACHE``, default
``~/.cache/netmarl``), keyed by the sources, the flags and the JAX version, and registered
as XLA FFI targets. The kernels are differentiated once, by hand-written backward passes;
code that differentiates an update again traces it inside :func:`switched_off`. Under
``vmap`` (seeds, agents) the calls run one batch element after another, as the learners'
updates already do. Where no compiler is found, the build fails,
or ``NETMARL_NATIVE_KERNELS=0`` is set, :func:`available` is False and the learners use the
pure-JAX scans and the flax mixer, which compute the same functions (tested to float
rounding).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import jax
import jax.numpy as jnp

SOURCES = tuple(Path(__file__).with_name(name) for name in ("gru_scan.cc", "qmix_mixer.cc"))
HEADERS = (Path(__file__).with_name("simd.h"),)
COMPILE_FLAGS = ("-O3", "-march=native", "-std=c++17", "-fPIC", "-w")
LINK_FLAGS = ("-shared",)
TARGETS = {
    "netmarl_gru_forward": "NetmarlGruForward",
    "netmarl_gru_forward_save": "NetmarlGruForwardSave",
    "netmarl_gru_backward": "NetmarlGruBackward",
    "netmarl_qmix_forward": "NetmarlQmixForward",
    "netmarl_qmix_backward": "NetmarlQmixBackward",
}
LANES = 16  # the kernels work on whole 16-float vectors of the hidden state
MAX_MIXED_AGENTS = 16  # the mixer kernel's backward keeps one gradient per agent on the stack


def _cache_dir() -> Path:
    return Path(os.environ.get("NETMARL_KERNEL_CACHE", Path.home() / ".cache" / "netmarl"))


def _machine() -> str:
    """The CPU's model and feature flags: a library built with ``-march=native`` must not be
    loaded on another kind of CPU sharing the same home directory (a cluster)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine() + platform.processor()
    wanted = [line for line in lines if line.startswith(("model name", "flags"))]
    return "\n".join(dict.fromkeys(wanted))  # one line of each kind per distinct CPU


def _build() -> Path:
    """Compile the kernels once per (sources, flags, compiler, JAX version, CPU); the cached
    library."""
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not compiler:
        raise RuntimeError("no C++ compiler found (g++, c++ or $CXX)")
    source = b"".join(path.read_bytes() for path in (*SOURCES, *HEADERS))
    key = hashlib.sha256(
        source + repr((COMPILE_FLAGS, LINK_FLAGS, compiler, jax.__version__, _machine())).encode()
    ).hexdigest()[:16]
    target = _cache_dir() / f"kernels-{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        objects = [str(Path(tmp) / f"{path.stem}.o") for path in SOURCES]
        lib = Path(tmp) / "kernels.so"
        include = f"-I{jax.ffi.include_dir()}"
        commands = [[compiler, *COMPILE_FLAGS, include, "-c", str(path), "-o", obj]
                    for path, obj in zip(SOURCES, objects, strict=True)]  # fmt: skip
        for command in (*commands, [compiler, *objects, "-o", str(lib), *LINK_FLAGS]):
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
        os.replace(lib, target)  # atomic: concurrent builders leave one complete library
    return target


@cache
def available() -> bool:
    """Whether the native kernels are built and registered (once per process)."""
    if os.environ.get("NETMARL_NATIVE_KERNELS", "1") == "0" or jax.default_backend() != "cpu":
        return False
    try:
        library = ctypes.cdll.LoadLibrary(str(_build()))
        for name, symbol in TARGETS.items():
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(library, symbol)))
    except (OSError, RuntimeError, AttributeError, subprocess.SubprocessError) as exc:
        warnings.warn(
            f"netmarl: native kernels unavailable, using the JAX scans and mixer ({exc})",
            stacklevel=2,
        )
        return False
    return True


_switched_off = 0


@contextmanager
def switched_off() -> Iterator[None]:
    """Trace with the JAX scans: for transformations the kernels do not support, e.g. the
    locality audit, which differentiates a whole update (a second derivative)."""
    global _switched_off
    _switched_off += 1
    try:
        yield
    finally:
        _switched_off -= 1


def usable(*widths: int) -> bool:
    """Whether layers of these widths (a GRU's hidden size; the mixer's embedding and
    hyper-network widths) run on the native kernels (outside :func:`switched_off`)."""
    return not _switched_off and all(w % LANES == 0 for w in widths) and available()


def gru_forward(
    gates_in: jax.Array, h0: jax.Array, w_h: jax.Array, b_n: jax.Array, save: bool
) -> tuple[jax.Array, jax.Array | None]:
    """Hidden states hs [T, B, H] from input-side gates [T, B, 3H] (r, z, n), h0 [B, H], the
    recurrent kernels side by side w_h [H, 3H] and the bias b_n [H]; with ``save`` also
    the backward pass's factors [T, B, 5H]."""
    t, b, _ = gates_in.shape
    hidden = h0.shape[-1]
    hs = jax.ShapeDtypeStruct((t, b, hidden), jnp.float32)
    if not save:
        call = jax.ffi.ffi_call("netmarl_gru_forward", hs, vmap_method="sequential")
        return call(gates_in, h0, w_h, b_n), None
    factors = jax.ShapeDtypeStruct((t, b, 5 * hidden), jnp.float32)
    call = jax.ffi.ffi_call("netmarl_gru_forward_save", (hs, factors), vmap_method="sequential")
    return tuple(call(gates_in, h0, w_h, b_n))


def gru_backward(
    d_hs: jax.Array, factors: jax.Array, w_h: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(dL/dh0 [B, H], recurrent-side gate gradients [T, B, 3H], input-side gate gradients
    [T, B, 3H]) from dL/dhs [T, B, H] and the saved factors."""
    t, b, hidden = d_hs.shape
    out = (
        jax.ShapeDtypeStruct((b, hidden), jnp.float32),
        jax.ShapeDtypeStruct((t, b, 3 * hidden), jnp.float32),
        jax.ShapeDtypeStruct((t, b, 3 * hidden), jnp.float32),
    )
    call = jax.ffi.ffi_call("netmarl_gru_backward", out, vmap_method="sequential")
    return tuple(call(d_hs, factors, w_h))


def qmix_forward(q: jax.Array, s: jax.Array, weights: tuple) -> jax.Array:
    """QMIX's Q_tot [R] from the agents' values q [R, N], states s [R, S] and the mixer's
    weights ``(W_s, c_s, W_b, c_b, W_e, c_e, w_g, c_g)`` (layouts in ``qmix_mixer.cc``)."""
    out = jax.ShapeDtypeStruct((q.shape[0],), jnp.float32)
    call = jax.ffi.ffi_call("netmarl_qmix_forward", out, vmap_method="sequential")
    return call(q, s, *weights)


def qmix_backward(
    q: jax.Array, s: jax.Array, weights: tuple, d_tot: jax.Array
) -> tuple[jax.Array, jax.Array, tuple]:
    """(dL/dq [R, N], dL/ds [R, S], the weights' gradients) from dL/dQ_tot [R]."""
    shapes = (q, s, *weights)
    out = tuple(jax.ShapeDtypeStruct(x.shape, jnp.float32) for x in shapes)
    call = jax.ffi.ffi_call("netmarl_qmix_backward", out, vmap_method="sequential")
    d_q, d_s, *d_weights = call(q, s, *weights, d_tot)
    return d_q, d_s, tuple(d_weights)
