"""The ``aiinfra`` CLI in a fresh process, as a user types it: the one way tests call it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

CLI = [sys.executable, "-m", "aiinfra_magics"]


def aiinfra(
    *args: str, home: Path | None = None, timeout: float = 300, **run: Any
) -> subprocess.CompletedProcess:
    """``python -m aiinfra_magics ARGS``, output captured as text; ``home`` sets AIINFRA_HOME
    (on top of ``env``, or this process's environment); other keywords go to subprocess.run."""
    if home is not None:
        run["env"] = {**(run.get("env") or os.environ), "AIINFRA_HOME": str(home)}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, **run)
