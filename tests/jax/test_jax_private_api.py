"""The private JAX name aiinfra relies on (issue 25 item 13): there is no public way to
ask whether JAX started its backend without starting it. This test fails loudly, naming
the name, on the JAX release that removes or changes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import json
import os
from aiinfra_magics.jax.started import backend_started
before_import = backend_started()
import jax
after_import = backend_started()
jax.devices()
print(json.dumps([before_import, after_import, backend_started()]))
"""


def test_jax_private_backends_are_initialized_still_exists():
    from jax._src import xla_bridge

    assert callable(getattr(xla_bridge, "backends_are_initialized", None)), (
        "jax._src.xla_bridge.backends_are_initialized is gone: "
        "aiinfra_magics/jax/started.py needs another way to ask"
    )


def test_backend_started_turns_true_only_when_a_backend_starts():
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert json.loads(out.stdout.splitlines()[-1]) == [False, False, True]
