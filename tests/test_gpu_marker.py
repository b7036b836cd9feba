"""The ``gpu`` marker does what pyproject.toml says: skipped where NVML sees no GPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from aiinfra_magics.devices.nvml import gpu_probe

TESTS = Path(__file__).resolve().parent


def test_gpu_marked_test_is_skipped_only_without_a_gpu(tmp_path):
    probe_file = tmp_path / "test_probe.py"
    probe_file.write_text(
        "import pytest\n\n@pytest.mark.gpu\ndef test_needs_gpu():\n    assert False, 'ran'\n"
    )
    # The probe lives outside tests/, so the suite's conftest is loaded as a plugin.
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "tests.conftest",
         "-q", "-rs", "-W", "ignore::pytest.PytestUnknownMarkWarning", str(probe_file)],
        capture_output=True, text=True, cwd=TESTS.parent, timeout=300,
    )  # fmt: skip
    if gpu_probe().count:
        assert "1 failed" in out.stdout, out.stdout
    else:
        assert "1 skipped" in out.stdout and "needs a real NVIDIA GPU" in out.stdout, out.stdout
