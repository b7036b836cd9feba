"""Run the CUDA kernels on Numba's CUDA simulator unless a real GPU is visible.

NUMBA_ENABLE_CUDASIM is read when numba is first imported, so it is set here, at
conftest import, before any test module of this folder imports numba. The variable is
left set for the rest of the pytest process (and its child processes): only code using
``numba.cuda`` notices it, and no other test folder does. On a machine where NVML sees
a GPU, the same tests run on the real device instead, and test_kernels_gpu.py adds more.
"""

from __future__ import annotations

import os
import sys


def _gpu_visible() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return pynvml.nvmlDeviceGetCount() > 0
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return False


if "NUMBA_ENABLE_CUDASIM" not in os.environ and not _gpu_visible():
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    if "numba" in sys.modules:  # numba read its config already: read it again
        from numba.core import config

        config.reload_config()
    if "numba.cuda" in sys.modules and "simulator" not in repr(sys.modules["numba.cuda"].jit):
        raise RuntimeError(
            "numba.cuda was imported before tests/kernels/conftest.py set the simulator"
        )

SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
