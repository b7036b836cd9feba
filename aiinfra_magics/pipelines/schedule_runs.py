"""Firing a schedule: start ``aiinfra pipeline run`` detached, and find the run it made.

A firing is a new process in its own session (``start_new_session``): it belongs to no
Jupyter server, terminal or scheduler service, so stopping any of them leaves it running.
Its values travel as argv items, never through a shell. Its output goes to a private log
under ``$AIINFRA_HOME/scheduler/logs/NAME/``.

Overlap is decided here, under a lock that the service and ``schedule run`` share, so two
processes never both start a run that ``skip`` allows only once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import AiinfraException
from ..paths import private_dir
from .schedule_spec import ScheduleSpec, write_notebook_spec
from .schedule_store import ScheduleRow, ScheduleStore

#: Run states that are over (the record will not change again).
FINAL = ("ok", "failed", "interrupted", "cancelled")
# A run.json started this long before its firing was recorded is not that firing's run.
CLOCK_SLACK_S = 5.0


#: Options of ``aiinfra pipeline run`` a firing passes: the run records ``trigger`` from
#: ``--trigger schedule:NAME`` and tells ``--notify`` targets when it ends (test_schedule_service
#: checks that ``pipeline run`` still has both). Named here rather than read from its parser:
#: building that parser imports the pipeline words (0.3-0.5 s of every ``schedule run``).
RUN_OPTIONS = frozenset({"--trigger", "--notify"})


@contextlib.contextmanager
def firing_lock(store: ScheduleStore) -> Iterator[None]:
    """Held while one process decides on overlap and starts a run."""
    fd = os.open(store.dir / "fire.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def process_alive(pid: Any, started: Any) -> bool:
    """Is ``pid`` still the process that started at ``started`` (and not a zombie)?"""
    if not pid:
        return False
    import psutil

    try:
        proc = psutil.Process(int(pid))
        if started and abs(proc.create_time() - float(started)) > 1.0:
            return False  # the pid was reused
        return proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, ValueError):
        return False


def run_of(firing: dict[str, Any]) -> tuple[str | None, str]:
    """The run id and status of a firing that started a run.

    The run is found by its record (``runs/*/run.json`` of the pipeline's folder) naming
    the firing's process, or this schedule as its trigger. Status: the record's (a record
    whose runner died reads ``interrupted``), else ``starting`` while the process lives,
    else ``failed`` (the process ended before any run began: bad input, say).
    """
    if firing.get("run_id") and firing.get("status") in FINAL:
        return firing["run_id"], firing["status"]
    folder = Path(firing.get("folder") or "")
    record = _find_record(folder, firing)
    if record is not None:
        from .liveness import settle  # a leaf: no record, report or cluster imports

        try:
            data = json.loads((folder / "runs" / record / "run.json").read_text())
            settle(data, folder / "runs" / record)  # a runner that died reads interrupted
            return record, str(data["status"])
        except (AiinfraException, OSError, ValueError, KeyError, TypeError):
            pass
    if process_alive(firing.get("pid"), firing.get("pid_started")):
        return None, "starting"
    return None, "failed"


def _find_record(folder: Path, firing: dict[str, Any]) -> str | None:
    if firing.get("run_id"):
        return firing["run_id"]
    runs = folder / "runs"
    if not runs.is_dir():
        return None
    since = float(firing.get("at") or 0) - CLOCK_SLACK_S
    for path in sorted(runs.glob("*/run.json"), reverse=True)[:50]:
        try:
            if path.stat().st_mtime < since:
                break  # older runs: none of them is this firing's
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or float(data.get("start") or 0) < since:
            continue
        runner = data.get("runner") or {}
        trigger = data.get("trigger") or {}
        if runner.get("pid") == firing.get("pid") or (
            isinstance(trigger, dict) and trigger.get("schedule") == firing.get("name")
        ):
            return path.parent.name
    return None


def busy_firing(store: ScheduleStore, name: str) -> dict[str, Any] | None:
    """The schedule's latest started firing if its run is still going, else None."""
    last = store.last_started(name)
    if last is None:
        return None
    run_id, status = run_of(last)
    if status in FINAL:
        if run_id != last.get("run_id") or status != last.get("status"):
            store.set_run(last["id"], run_id, status)
        return None
    if status == "failed" and run_id is None:  # ended before any run began
        return None
    return {**last, "run_id": run_id, "status": status}


def fire(
    store: ScheduleStore,
    row: ScheduleRow,
    *,
    scheduled_for: float | None,
    why: str,
    home: Path,
) -> dict[str, Any]:
    """Start the schedule's run now, unless its overlap rule says otherwise.

    Returns the firing as recorded (``outcome`` started, skipped, queued or failed).
    """
    spec = row.spec
    assert spec is not None
    with firing_lock(store):
        busy = busy_firing(store, spec.name)
        if busy is not None and spec.overlap != "allow":
            which = busy.get("run_id") or f"pid {busy.get('pid')}"
            if spec.overlap == "queue" and not row.queued and not store.get(spec.name).queued:
                store.update(spec.name, queued=1)
                reason = f"{why}; queued behind run {which}, still running (overlap queue)"
                return _recorded(store, spec.name, "queued", scheduled_for, reason)
            extra = ", and one run is already queued" if spec.overlap == "queue" else ""
            reason = f"{why}; previous run {which} still running{extra} (overlap {spec.overlap})"
            return _recorded(store, spec.name, "skipped", scheduled_for, reason)
        if row.queued:
            store.update(spec.name, queued=0)
        try:
            if not Path(spec.path).is_file():
                raise OSError(f"path: {spec.path} no longer exists")
            pid, pid_started, log = launch(spec, home)
        except (OSError, AiinfraException) as exc:
            reason = f"{why}; not started: {exc}"
            store.update(spec.name, error=reason)
            return _recorded(store, spec.name, "failed", scheduled_for, reason)
        store.update(spec.name, error=None)
        fields = {
            "scheduled_for": scheduled_for,
            "reason": why,
            "pid": pid,
            "pid_started": pid_started,
            "folder": str(spec.folder),
            "log": str(log),
        }
        firing_id = store.record(spec.name, "started", **fields)
        return {"id": firing_id, "name": spec.name, "outcome": "started", **fields}


def _recorded(
    store: ScheduleStore, name: str, outcome: str, scheduled_for: float | None, reason: str
) -> dict[str, Any]:
    firing_id = store.record(name, outcome, scheduled_for=scheduled_for, reason=reason)
    return {"id": firing_id, "name": name, "outcome": outcome, "reason": reason}


def launch(spec: ScheduleSpec, home: Path) -> tuple[int, float, Path]:
    """Start ``aiinfra pipeline run`` for the schedule, detached; returns pid, start, log."""
    import psutil

    if spec.is_notebook:
        write_notebook_spec(spec)
    logs = private_dir(home / "scheduler" / "logs" / spec.name)
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() % 1_000_000_000:09d}"
    log = logs / f"{stamp}.log"
    argv = [sys.executable, "-m", "aiinfra_magics.doors.cli", *spec.run_argv(RUN_OPTIONS)]
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    env = {**os.environ, "AIINFRA_HOME": str(home)}
    try:
        with os.fdopen(fd, "ab") as out:
            out.write(("$ aiinfra " + " ".join(argv[3:]) + "\n").encode())
            out.flush()
            proc = subprocess.Popen(
                argv,
                cwd=spec.folder,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own session: no stop of ours reaches it
            )
    except BaseException:
        log.unlink(missing_ok=True)
        raise
    _children.append(proc)
    try:
        started = psutil.Process(proc.pid).create_time()
    except psutil.Error:  # already gone (it failed at once): its log says why
        started = time.time()
    return proc.pid, started, log


#: Runs this process started: polled so that none stays a zombie while this process lives.
_children: list[subprocess.Popen] = []


def reap() -> None:
    """Collect the exit status of runs this process started that have ended."""
    _children[:] = [p for p in _children if p.poll() is None]


def log_tail(path: Any, lines: int = 1) -> str:
    """The last non-empty line(s) of a firing's log (why a run never began)."""
    try:
        text = Path(path).read_text(errors="replace")
    except (OSError, TypeError):
        return ""
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])
