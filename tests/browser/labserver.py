"""The one real ``jupyter lab`` the browser tests start (conftest.py's ``live_lab`` makes it).

It serves this checkout's built labextension under a non-default ``base_url`` (as JupyterHub
does), with a token, its own config, runtime and workspace folders (the layout starts clean),
and the app exposed to scripts (``window.jupyterapp``: tests run commands as the palette does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from chromium import CHROMIUM
from live_server import free_port, server_port

REPO = Path(__file__).resolve().parents[2]
LABEXTENSION = REPO / "aiinfra_magics" / "labextension"
LIVE_TOKEN = "aiinfra-live-test"

#: The skips of a test that drives the sidebar: no Chromium, or the labextension not built.
NEEDS_LAB = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium not installed (apt-get install chromium)"),
    pytest.mark.skipif(
        not (LABEXTENSION / "package.json").exists(),
        reason="labextension not built (pip install -e . or jlpm build in extension/)",
    ),
]  # fmt: skip


class Lab:
    """``jupyter lab`` on 127.0.0.1 with this checkout's labextension; ``stop()`` ends it."""

    def __init__(
        self,
        tmp: Path,
        base_url: str = "/user/aiinfra-test/",
        env: dict | None = None,
        token: str = LIVE_TOKEN,
    ) -> None:
        data = tmp / "data" / "labextensions"
        data.mkdir(parents=True)
        if LABEXTENSION.exists():
            (data / "aiinfra").symlink_to(LABEXTENSION)  # what `pip install` puts in share/jupyter
        self.root = tmp / "root"
        self.root.mkdir()
        self.base_url = base_url
        self.token = token
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
                f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={self.root}",
                "--ServerApp.jpserver_extensions=aiinfra_magics=True",
                f"--LabApp.workspaces_dir={tmp / 'workspaces'}", "--LabApp.expose_app_in_browser=True",
            ],
            env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        port = server_port(self.proc, tmp / "runtime", 120) or port
        self.url = f"http://127.0.0.1:{port}{base_url}"
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

    def call(self, path: str, method: str = "GET", body: object = None) -> tuple[int, object]:
        """One authenticated REST call: its status and JSON answer, error statuses included."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def api(self, path: str, method: str = "GET", body: object = None) -> object:
        """The JSON answer of a call that must succeed."""
        status, answer = self.call(path, method, body)
        assert status < 400, (method, path, status, answer)
        return answer

    def open(self, page, path: str = "lab") -> None:
        """Load ``path`` (``lab``, ``lab/tree/x.ipynb``) in ``page`` as the logged-in user."""
        page.goto(f"{self.url}{path}?token={self.token}")

    def open_sidebar(self, page, path: str = "lab"):
        """Load the lab and open the aiinfra sidebar from its icon; returns the panel."""
        self.open(page, path)
        page.locator('.jp-SideBar [data-id="aiinfra-sidebar"]').click()
        panel = page.locator(".aiinfra-panel")
        panel.wait_for()
        return panel

    def stop(self) -> None:
        self.proc.terminate()  # stop_extension closes any cluster this server started
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def screenshot(page, tmp_path: Path, name: str) -> Path:
    """Save a screenshot under tmp, or under $AIINFRA_SCREENSHOTS (a folder) when it is set."""
    shots = Path(os.environ.get("AIINFRA_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    path = shots / name
    page.screenshot(path=str(path))
    return path


#: JupyterLab's "news?" toast, hidden so that it covers nothing a test clicks or a picture shows.
HIDE_TOASTS = ".Toastify { display: none !important; }"


def hide_toasts(page) -> None:
    """Hide JupyterLab's toasts in ``page`` (see HIDE_TOASTS)."""
    page.add_style_tag(content=HIDE_TOASTS)


def open_run(page, run_id: str, status: str):
    """Show run ``run_id`` (or a launch's id) in the run view, by the command the sidebar runs,
    and wait until it shows that run with ``status``; returns the run view's locator."""
    page.evaluate(
        "(run_id) => window.jupyterapp.commands.execute('aiinfra:open-runs', {run_id})", run_id
    )
    detail = page.locator(f'.aiinfra-run-detail[data-status="{status}"]')
    detail.wait_for(timeout=300_000)
    return detail


def decline_news(page) -> None:
    """Answer "No" to JupyterLab's news prompt where it shows (it covers what tests click)."""
    news = page.locator(".jp-toast-button", has_text="No")
    if news.count():
        news.first.click()


def field_error(dialog, field: str):
    """Wait for the error a form shows under its field ``field``; returns its locator."""
    error = dialog.locator(f'.aiinfra-field-error[data-error-for="{field}"]')
    error.wait_for()
    return error
