"""Test-wide JAX settings: a persistent compilation cache (faster reruns) and float32."""

import os
import tempfile

import jax

jax.config.update(
    "jax_compilation_cache_dir", os.path.join(tempfile.gettempdir(), "netmarl_jax_cache")
)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_enable_x64", False)
