"""Run Python code in a new process at the repository root, for what one test process
cannot show: a first compile (nothing in numba's cache) or another target CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, cache_dir: Path, **env: str) -> subprocess.CompletedProcess:
    """``python -c code`` with numba caching into ``cache_dir`` (empty: everything
    compiles) and ``env`` added; fails the test if the process fails."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "NUMBA_CACHE_DIR": str(cache_dir), **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done
