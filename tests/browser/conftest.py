"""Browser tests write screenshots and logs only under tmp: they never touch tracked files.

``make screenshots`` is the one way to refresh docs/ images (AIINFRA_SCREENSHOTS=docs).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _tracked() -> dict[str, tuple[int, int]] | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None  # not a git checkout (an sdist): nothing to guard
    state = {}
    for name in out.decode().split("\0"):
        path = REPO / name
        if name and path.is_file():
            st = path.stat()
            state[name] = (st.st_mtime_ns, st.st_size)
    return state


@pytest.fixture(autouse=True)
def tracked_files_unchanged():
    if os.environ.get("AIINFRA_SCREENSHOTS"):  # make screenshots: rewriting docs/ is the point
        yield
        return
    before = _tracked()
    yield
    after = _tracked()
    if before is not None and after is not None:
        changed = sorted(k for k in before if before[k] != after.get(k))
        assert not changed, f"a test modified tracked files: {changed}"
