"""Browser tests write screenshots and logs only under tmp: they never touch tracked files.

``make screenshots`` is the one way to refresh docs/ images (AIINFRA_SCREENSHOTS=docs).
``live_lab``: the one real ``jupyter lab`` every browser test uses (labserver.Lab), sharing its
registry with the test; a module's own ``lab_env`` fixture adds to its server's environment,
and a test writes the files it needs into ``live_lab.root`` (the server's root folder).
"""

from __future__ import annotations

import os
import subprocess

import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: F401 - docs/screenshots.py imports them from here
from labserver import LIVE_TOKEN, REPO, Lab  # noqa: F401 - docs/screenshots.py imports them from here


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


@pytest.fixture
def lab_env() -> dict[str, str]:
    """More environment for ``live_lab``'s server; a test module overrides it (a gateway's auth)."""
    return {}


@pytest.fixture
def live_lab(tmp_path, aiinfra_home, lab_env):
    """A lab whose registry ($AIINFRA_HOME, tests/conftest.py's) is this test process's too."""
    lab = Lab(tmp_path, env={**lab_env, "AIINFRA_HOME": str(aiinfra_home)})
    yield lab
    lab.stop()
