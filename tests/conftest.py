"""Test-wide JAX settings: a persistent compilation cache (faster reruns), float32, and
XLA's lowest backend optimisation level.

The suite is dominated by compiling many small programs that then run for a moment;
``--xla_backend_optimization_level=0`` compiles them 2-7x faster (a seed-vmapped MLP init:
7.0 s -> 0.9 s) at the price of slower generated code, and even a file dominated by run time
still wins (tests/test_maddpg.py: 108 s -> 87 s of CPU with a cold cache). Results differ
from an optimised build only in the last bits of floating point; the tests check identities to
tolerances and learning against thresholds, never bit patterns of an optimised build. Set
``NETMARL_TEST_XLA_OPT=1`` to test with XLA's default optimisation. The variable is set before
JAX starts its backend and is inherited by the worker processes some tests spawn.
"""

import os
import tempfile

if os.environ.get("NETMARL_TEST_XLA_OPT") != "1":
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
    ).strip()

import jax  # noqa: E402

jax.config.update(
    "jax_compilation_cache_dir", os.path.join(tempfile.gettempdir(), "netmarl_jax_cache")
)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_enable_x64", False)
