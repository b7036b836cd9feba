"""Browser tests write screenshots and logs only under tmp: they never touch tracked files.

``make screenshots`` is the one way to refresh docs/ images (AIINFRA_SCREENSHOTS=docs).
``live_lab``: a real ``jupyter lab`` sharing its registry with the test (test_sidebar.py keeps
its own ``lab`` fixture); a module's own ``lab_env`` fixture adds to its server's environment.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: F401 - docs/screenshots.py imports them from here


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


REPO = Path(__file__).resolve().parents[2]
LABEXTENSION = REPO / "aiinfra_magics" / "labextension"
LIVE_TOKEN = "aiinfra-live-test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lab:
    """``jupyter lab`` serving this checkout's labextension, on ``base_url``, app exposed to scripts."""

    def __init__(self, tmp: Path, base_url: str = "/lab-live/", env: dict | None = None) -> None:
        data = tmp / "data" / "labextensions"
        data.mkdir(parents=True)
        (data / "aiinfra").symlink_to(LABEXTENSION)  # what `pip install` puts in share/jupyter
        self.root = tmp / "root"
        self.root.mkdir()
        port = free_port()
        self.env = {
            **os.environ,
            **(env or {}),
            "JUPYTER_PATH": str(tmp / "data"),
            "JUPYTER_CONFIG_DIR": str(tmp / "config"),
            "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        }
        self.log_path = tmp / "lab.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
                f"--port={port}", f"--ServerApp.base_url={base_url}",
                f"--IdentityProvider.token={LIVE_TOKEN}", f"--ServerApp.root_dir={self.root}",
                "--ServerApp.jpserver_extensions=aiinfra_magics=True",
                f"--LabApp.workspaces_dir={tmp / 'workspaces'}", "--LabApp.expose_app_in_browser=True",
            ],
            env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{port}{base_url}"
        deadline = time.monotonic() + 120
        while True:
            try:
                self.api("api/status")
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    log = self.log_path.read_text()[-3000:]
                    raise RuntimeError(f"jupyter lab did not start:\n{log}") from None
                time.sleep(0.3)

    def api(self, path: str, method: str = "GET", body: object = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"Authorization": f"token {LIVE_TOKEN}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read()
        return json.loads(text) if text else None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def lab_env() -> dict[str, str]:
    """More environment for ``live_lab``'s server; a test module overrides it (a gateway's auth)."""
    return {}


@pytest.fixture
def live_lab(tmp_path, monkeypatch, lab_env):
    """A lab whose registry ($AIINFRA_HOME) is this test process's too."""
    home = tmp_path / "home"
    monkeypatch.setenv("AIINFRA_HOME", str(home))
    lab = Lab(tmp_path, env={**lab_env, "AIINFRA_HOME": str(home)})
    yield lab
    lab.stop()
