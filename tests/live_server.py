"""A real ``jupyter server`` process on 127.0.0.1 for tests that need one as a separate process
(sync REST clients, kernels started by the server's session API)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_port(proc: subprocess.Popen, runtime_dir: Path, timeout: float) -> int | None:
    """The port the jupyter server ``proc`` really listens on, from the info file it writes
    once bound; None if it ended or never wrote it.

    Its ``--port`` was free a moment before it started: when another process (a Dask
    dashboard on port 0, another test's server) took it meanwhile, jupyter moves to the
    next port, and a test talking to the first one gets that other process's answers.
    """
    info = Path(runtime_dir) / f"jpserver-{proc.pid}.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return int(json.loads(info.read_text())["port"])
        except (OSError, ValueError, KeyError, TypeError):  # not yet, or half written
            if proc.poll() is not None:
                return None
            time.sleep(0.1)
    return None


class LiveServer:
    """A real ``jupyter server`` process with the extension enabled (for sync clients).

    Another LiveServer on the same ``tmp`` is the same server started again: same root,
    home and runtime dir, its log appended. ``home`` (AIINFRA_HOME) is ``tmp/home`` unless told.
    """

    def __init__(
        self,
        tmp: Any,
        base_url: str = "/",
        python_flags: tuple[str, ...] = (),
        home: Any = None,
    ) -> None:
        self.port = free_port()
        self.token = "aiinfra-test-token"
        self.base_url = base_url
        root = tmp / "root"
        root.mkdir(exist_ok=True)
        env = {
            **os.environ,
            "AIINFRA_HOME": str(home or tmp / "home"),
            "JUPYTER_RUNTIME_DIR": str(tmp / "rt"),
        }
        self.log = open(tmp / "server.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable, *python_flags, "-m", "jupyter_server", "--no-browser", "--allow-root",
                f"--port={self.port}", "--ip=127.0.0.1", f"--ServerApp.base_url={base_url}",
                f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
                "--ServerApp.jpserver_extensions=aiinfra_magics=True",
            ],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        self.port = server_port(self.proc, tmp / "rt", 60) or self.port
        self.url = f"http://127.0.0.1:{self.port}{base_url}"
        while time.monotonic() < deadline:
            try:
                self.request("GET", "api/status")
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"jupyter server did not start; see {tmp / 'server.log'}")

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(
            self.url + path, data=body, method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def stop(self) -> None:
        self.proc.terminate()  # SIGTERM: the server runs stop_extension
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
