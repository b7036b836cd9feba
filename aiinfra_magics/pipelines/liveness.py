"""Whether a run's process is still there, and stopping it, from any door and any process.

A run is a process of its own (``pipeline run`` in a terminal, a lab launch, a
schedule), owned by no server or kernel. Its record names it (``runner``: host,
pid and the process's start time) and the runner rewrites ``runs/<id>/heartbeat``
every ``HEARTBEAT_S``. On the runner's host the pid and its start time decide (a
reused pid is another process, not the run); from another host (a shared folder)
the heartbeat's age does. A record that says ``running`` for a process that is
gone was killed outright (SIGKILL, OOM killer, power loss): it reads as
``interrupted``, never ``running`` or ``ok``.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, OperationError

HEARTBEAT_S = 5.0
# A heartbeat this old, from another host, means the runner is gone (a dozen beats missed:
# a loaded machine or a slow shared filesystem delays a beat, not twelve).
STALE_S = 60.0
CANCEL_GRACE_S = 20.0  # the runner needs a moment to stop its kernels and write run.json
GONE = "the runner process is gone"


def identity() -> dict[str, Any]:
    """This process as a record names it: host, pid and start time."""
    import psutil

    return {"host": platform.node(), "pid": os.getpid(), "started": psutil.Process().create_time()}


def same_process(pid: Any, started: Any) -> bool:
    """True when ``pid`` on this host is the process that started at ``started``."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(proc.create_time() - float(started)) < 1
    except (psutil.Error, TypeError, ValueError):
        return False


class Heartbeat:
    """Rewrites ``<run_dir>/heartbeat`` every ``interval`` seconds from a daemon thread."""

    def __init__(self, run_dir: Path, interval: float = HEARTBEAT_S) -> None:
        self.path = run_dir / "heartbeat"
        self.interval = interval
        self.me = identity()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="aiinfra-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def beat(self) -> None:
        from .cache import write_json_atomic

        try:
            write_json_atomic(self.path, {**self.me, "at": time.time()})
        except OSError:
            pass  # a full disk must not stop the run; readers on this host check the pid

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 1)
        self.path.unlink(missing_ok=True)


def runner_alive(data: dict[str, Any], run_dir: Path) -> bool:
    """Whether the process a record names still runs (True when nothing can tell)."""
    runner = data.get("runner") or {}
    if runner.get("host") == platform.node() and runner.get("pid"):
        return same_process(runner["pid"], runner.get("started"))
    try:
        beat = json.loads((run_dir / "heartbeat").read_text())
        at = max(float(beat.get("at") or 0), (run_dir / "heartbeat").stat().st_mtime)
    except (OSError, ValueError, TypeError, AttributeError):
        return True  # another host's run from before heartbeats: cannot tell
    return time.time() - at < STALE_S


def settle(data: dict[str, Any], run_dir: Path) -> bool:
    """Mark a ``running`` record whose process is gone ``interrupted`` (in place).

    Every step is put in a final state, as the runner would have done. Returns True
    when the record changed.
    """
    if data.get("status") != "running" or runner_alive(data, run_dir):
        return False
    for step in (data.get("steps") or {}).values():
        if not isinstance(step, dict):
            continue
        if step.get("status") == "running":
            step.update(status="failed", kind="interrupted", error=f"run ended: {GONE}")
        elif step.get("status") == "pending":
            step.update(status="skipped", reason=f"run ended: {GONE}")
    data["status"] = "interrupted"
    data.setdefault("error", GONE)
    return True


def cancel(run_dir: Path, grace: float = CANCEL_GRACE_S) -> dict[str, Any]:
    """Stop the run recorded in ``run_dir``: SIGINT, then SIGTERM, then SIGKILL.

    SIGINT and SIGTERM let the runner stop its kernels and record every step; the
    process is checked to be that run (pid and start time) before each signal.
    SIGKILL, the last resort, goes to the run's whole process group when the run
    leads one (a lab or scheduled run), so its kernels go with it.

    Raises:
        NotFoundError: no run.json in ``run_dir``.
        OperationError: the run already ended, or runs on another host.
    """
    path = run_dir / "run.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        raise NotFoundError(f"run: no run record {path}", field="run") from None
    run_id = data.get("run_id", run_dir.name)
    runner = data.get("runner") or {}
    if data.get("status") != "running":
        raise OperationError(f"run {run_id} already ended ({data.get('status')})")
    if not runner.get("pid"):
        raise OperationError(
            f"run {run_id}: its record names no process (an older aiinfra wrote it); "
            "stop it where it runs (Ctrl-C in its terminal or kernel)"
        )
    if runner.get("host") != platform.node():
        raise OperationError(
            f"run {run_id} runs on host {runner.get('host')!r}; cancel it there "
            f"(aiinfra pipeline cancel on that host)"
        )
    pid, started = runner.get("pid"), runner.get("started")
    sent: list[str] = []
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if not same_process(pid, started):
            break
        try:
            if sig == signal.SIGKILL and os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            break
        sent.append(sig.name)
        if _ended(pid, started, grace):
            break
    if not sent:
        raise OperationError(f"run {run_id} already ended ({GONE})")
    data = json.loads(path.read_text())
    if settle(data, run_dir):  # killed: nothing else will write the run's ending
        from .cache import write_json_atomic

        write_json_atomic(path, data)
    return {"run_id": run_id, "status": data.get("status"), "signals": sent}


def _ended(pid: int, started: Any, timeout: float) -> bool:
    """Whether the run's process ends within ``timeout``, polled without reaping it: a
    process that is our child keeps its exit status for its own ``wait`` (psutil's would
    take it)."""
    deadline = time.monotonic() + timeout
    while same_process(pid, started):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
