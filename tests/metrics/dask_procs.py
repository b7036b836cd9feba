"""Real Dask processes for the metrics tests: a ``dask scheduler`` and ``dask worker``s.

Each worker is given a host label (dask config ``aiinfra.metrics.host``), so two
"hosts" run on this one machine; a worker can be given the fake NVML device
(tests/nvml_fake.py) through its PYTHONPATH, the only GPU stand-in.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from waiting import wait_for

DASK = str(Path(sys.executable).with_name("dask"))
FAKE_NVML = Path(__file__).parent / "fakenvml"


def fake_gpu_env(tmp_path: Path, feed: dict) -> dict[str, str]:
    """Environment that gives a worker process the fake NVML device replaying ``feed``."""
    path = tmp_path / f"feed-{len(list(tmp_path.glob('feed-*')))}.json"
    path.write_text(json.dumps(feed))
    return {
        "PYTHONPATH": os.pathsep.join([str(FAKE_NVML), os.environ.get("PYTHONPATH", "")]),
        "AIINFRA_TEST_NVML_FEED": str(path),
        # distributed's own NVML diagnostics would read the fake too; ours is under test.
        "DASK_DISTRIBUTED__DIAGNOSTICS__NVML": "False",
    }


def steady_feed(base: dict, util: int) -> dict:
    """The recorded feed's boards, every tick at ``util`` % on GPU 0."""
    tick = dict(base["ticks"][0], util=[util, 0])
    return {**base, "ticks": [tick] * 3}


class DaskProcesses:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen] = []
        self.address: str | None = None

    def scheduler(self) -> str:
        file = self.tmp_path / "scheduler.json"
        self.procs.append(
            subprocess.Popen(
                [
                    DASK,
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--no-dashboard",
                    "--scheduler-file",
                    str(file),
                ],  # fmt: skip
                stdout=subprocess.DEVNULL,
                stderr=(self.tmp_path / "scheduler.log").open("w"),
            )
        )
        wait_for(lambda: file.exists() and file.read_text().strip(), what="scheduler file")
        self.address = json.loads(file.read_text())["address"]
        return self.address

    def worker(
        self, name: str, host: str, env: dict[str, str] | None = None, resources: str | None = None
    ) -> subprocess.Popen:
        cmd = [DASK, "worker", self.address, "--name", name, "--nthreads", "1", "--no-nanny",
               "--no-dashboard", "--host", "127.0.0.1", "--death-timeout", "30"]  # fmt: skip
        if resources:
            cmd += ["--resources", resources]
        proc = subprocess.Popen(
            cmd,
            env={**os.environ, "DASK_AIINFRA__METRICS__HOST": host, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=(self.tmp_path / f"worker-{name}.log").open("w"),
        )
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        # Workers first, the scheduler once they are gone: a worker that loses its scheduler
        # while closing waits out its death timeout (30 s) before it exits.
        workers, schedulers = self.procs[1:], self.procs[:1]
        for group in (workers, schedulers):
            for proc in group:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in group:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
