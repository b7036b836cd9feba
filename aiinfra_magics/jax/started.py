"""Whether JAX has started a backend in this process, asked without starting one.

JAX offers no public way to ask: ``jax.devices()`` would start the backend and fix
its settings before ``%aiinfra jax`` could apply them. ``jax._src.xla_bridge.
backends_are_initialized`` is the one private name aiinfra uses, in this one place;
tests/jax/test_jax_private_api.py fails loudly, naming it, on the JAX that removes it.
"""

from __future__ import annotations

import sys


def backend_started() -> bool:
    """True once JAX has started a backend in this process (never starts one)."""
    if "jax" not in sys.modules:
        return False
    from jax._src import xla_bridge

    return xla_bridge.backends_are_initialized()
