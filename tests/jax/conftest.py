"""JAX starts its backend once per process, so every session test runs in a fresh
interpreter: ``magic_steps`` drives a real IPython shell with the real
``%aiinfra`` magic in a subprocess and reports each step as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DRIVER = Path(__file__).with_name("session_driver.py")


def run_steps(steps: list[str], timeout: float = 120) -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, str(DRIVER)],
        input=json.dumps(steps),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def magic_steps():
    return run_steps
