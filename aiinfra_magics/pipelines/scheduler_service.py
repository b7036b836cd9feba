"""The per-user scheduler service: one process per ``AIINFRA_HOME`` that fires schedules.

``python -m aiinfra_magics.pipelines.scheduler_service --home HOME`` holds an exclusive
``flock`` on ``scheduler/service.lock`` for its whole life (a second one exits at once),
writes its pid to ``scheduler/service.pid`` and loops: for each schedule whose firing is
due, start its run (``schedule_runs.fire``), then sleep until the next firing or until a
door writes to the ``scheduler/wake`` FIFO (a schedule changed).

- No Jupyter server is involved. ``schedule add`` and ``scheduler start`` start it; the
  server extension and every ``aiinfra`` command start it again if it is wanted but gone
  (killed, crashed, machine rebooted): :func:`revive`, cheap enough for every command.
- Firings due while no service ran (or more than :data:`LATE_S` late: a suspended
  machine) are recorded as ``missed`` with their count and times, and the schedule runs
  once to catch up; they never pile up.
- Whatever goes wrong with one schedule (a store row that cannot be read, a path gone, a
  trigger that raises) is recorded on that schedule and the loop goes on with the others.
- SIGTERM ends the loop; runs are in their own sessions and go on.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import OperationError
from ..paths import atomic_write_json, private_dir
from . import scheduler_revive
from .schedule_store import ScheduleRow, ScheduleStore, scheduler_dir
from .scheduler_revive import lock_free, service_paths, spawn

#: A firing later than this was missed (the machine slept, the service was stopped).
LATE_S = 60.0
#: A firing due this little before the service started is late, not missed (start-up time).
START_GRACE_S = 5.0
#: The longest sleep: store changes wake the loop at once; this bounds a lost wake-up.
IDLE_S = 30.0
#: While a queued run waits for the one before it, look this often.
BUSY_S = 1.0
#: Most missed firings counted one by one for a record (a schedule every second, down a day).
COUNT_LIMIT = 10_000
START_TIMEOUT_S = 60.0


def _paths(home: Path) -> dict[str, Path]:
    scheduler_dir(home)  # created 0700 before anything is written there
    return service_paths(home)


def running(home: Path) -> bool:
    """Is a service holding this home's lock?"""
    return not lock_free(_paths(home)["lock"])


def status(home: Path) -> dict[str, Any]:
    """The service's state: running, pid, since, the schedules it holds, where it logs."""
    paths = _paths(home)
    up = running(home)
    info: dict[str, Any] = {}
    if up:
        with contextlib.suppress(OSError, ValueError):
            info = json.loads(paths["pid"].read_text())
    store = ScheduleStore(home)
    rows = store.rows()
    return {
        "running": up,
        "pid": info.get("pid") if up else None,
        "since": _iso(info.get("since")) if up and info.get("since") else None,
        "home": str(home),
        "wanted": paths["wanted"].exists(),
        "schedules": len(rows),
        "paused": sum(1 for r in rows if r.paused),
        "broken": [{"name": r.name, "error": r.error} for r in rows if r.error],
        "log": str(paths["log"]),
    }


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, tz=timezone.utc).astimezone().isoformat()


def poke(home: Path) -> None:
    """Wake the service now (a schedule changed); nothing happens if none is running."""
    try:
        fd = os.open(_paths(home)["wake"], os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # no FIFO yet, or no reader (ENXIO): no service to wake
        return
    try:
        os.write(fd, b"!")
    except OSError:  # the pipe is full: it is awake already
        pass
    finally:
        os.close(fd)


def start(home: Path, wait: bool = True) -> dict[str, Any]:
    """Start the service for ``home`` unless one runs; mark it wanted (``revive`` keeps it up).

    Raises:
        OperationError: it did not come up (its log is named).
    """
    paths = _paths(home)
    paths["wanted"].touch(mode=0o600, exist_ok=True)
    if running(home):
        return status(home)
    proc = spawn(home)
    if not wait:
        return {"running": None, "pid": proc.pid, "home": str(home), "log": str(paths["log"])}
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if running(home):
            return status(home)
        code = proc.poll()
        if code is not None:
            if running(home):  # another start won the lock: that one serves
                return status(home)
            raise OperationError(f"scheduler exited with status {code}; see {paths['log']}")
        time.sleep(0.05)
    raise OperationError(f"scheduler did not start in {START_TIMEOUT_S:.0f}s; see {paths['log']}")


def stop(home: Path, timeout: float = 30.0) -> dict[str, Any]:
    """Stop the service (SIGTERM); runs it started go on. It stays stopped until started.

    Raises:
        OperationError: it did not exit within ``timeout``.
    """
    paths = _paths(home)
    paths["wanted"].unlink(missing_ok=True)
    if not running(home):
        return {**status(home), "stopped": False}
    info = json.loads(paths["pid"].read_text())
    from .schedule_runs import process_alive

    if process_alive(info.get("pid"), info.get("started")):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(info["pid"]), signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while running(home):
        if time.monotonic() > deadline:
            raise OperationError(f"scheduler pid {info.get('pid')} did not stop in {timeout:.0f}s")
        time.sleep(0.05)
    return {**status(home), "stopped": True}


def revive(home: Path) -> bool:
    """Start the service again if it is wanted and not running; True if one was started."""
    scheduler_dir(home)
    return scheduler_revive.revive(home)


def install_unit(home: Path, write: bool = False) -> dict[str, Any]:
    """A systemd user unit that runs the service (written to the user's units with ``write``)."""
    name = "aiinfra-scheduler.service"
    unit = (
        "[Unit]\n"
        f"Description=aiinfra scheduler for AIINFRA_HOME={home}\n\n"
        "[Service]\n"
        "Type=simple\n"
        f'Environment="AIINFRA_HOME={home}"\n'
        f"ExecStart={sys.executable} -m aiinfra_magics.pipelines.scheduler_service --home {home}\n"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        "# Runs are detached processes of their own: stopping the unit must not kill them.\n"
        "KillMode=process\n\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    target = config / "systemd" / "user" / name
    out: dict[str, Any] = {"unit": unit, "path": str(target), "written": False}
    if write:
        target.parent.mkdir(parents=True, exist_ok=True)
        from ..paths import atomic_write_text

        atomic_write_text(target, unit)
        out["written"] = True
        out["next"] = f"systemctl --user daemon-reload && systemctl --user enable --now {name}"
    return out


# -- the service itself ------------------------------------------------------------------------
class Service:
    """The loop of one service process (see the module's docstring)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.paths = _paths(home)
        self.store = ScheduleStore(home)
        self.started = time.time()
        self.stopping = False
        self._wake_r = self._wake_w = -1

    def log(self, text: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}", flush=True)

    def serve(self) -> int:
        lock = os.open(self.paths["lock"], os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.log("another scheduler holds this AIINFRA_HOME; exiting")
            return 0
        me = {"pid": os.getpid(), "since": self.started, "started": _create_time()}
        atomic_write_json(self.paths["pid"], me)
        self._open_wake()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        self.log(f"scheduler started (pid {me['pid']}, AIINFRA_HOME={self.home})")
        try:
            while not self.stopping:
                if not self.paths["lock"].exists():  # the home was deleted under us
                    self.log("AIINFRA_HOME is gone; exiting")
                    break
                wait = self.tick(time.time())
                self._sleep(wait)
        finally:
            self.log("scheduler stopped; runs it started go on")
            with contextlib.suppress(OSError):
                if json.loads(self.paths["pid"].read_text()).get("pid") == os.getpid():
                    self.paths["pid"].unlink()
            os.close(lock)
        return 0

    def _open_wake(self) -> None:
        fifo = self.paths["wake"]
        with contextlib.suppress(FileExistsError):
            os.mkfifo(fifo, 0o600)
        # Read-write: the FIFO never reads as closed between writers (no busy loop on EOF),
        # and the signal handler writes to it to end a sleep at once.
        self._wake_r = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        self._wake_w = self._wake_r

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"!")

    def _sleep(self, seconds: float) -> None:
        if self.stopping:
            return
        ready, _, _ = select.select([self._wake_r], [], [], max(0.0, seconds))
        if ready:
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_r, 4096)

    def tick(self, now: float) -> float:
        """Fire what is due; return how long to sleep before the next look."""
        from .schedule_runs import reap

        reap()
        wait = IDLE_S
        try:
            rows = self.store.rows()
        except Exception as exc:  # the store itself: log, and try again later
            self.log(f"store not readable: {exc}")
            return IDLE_S
        for row in rows:
            try:
                wait = min(wait, self._tick_one(row, now))
            except Exception as exc:  # one schedule's trouble never stops the others
                self._mark_broken(row, exc)
        return max(0.0, wait)

    def _mark_broken(self, row: ScheduleRow, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        self.log(f"schedule {row.name} broken: {reason}\n{traceback.format_exc()}")
        with contextlib.suppress(Exception):
            self.store.update(row.name, error=f"scheduler: {reason}")

    def _missed(self, due: float, now: float) -> bool:
        """Was a firing due at ``due`` missed (rather than served a little late)?"""
        return due < self.started - START_GRACE_S or now - due > LATE_S

    def _tick_one(self, row: ScheduleRow, now: float) -> float:
        from .schedule_runs import busy_firing, fire

        if row.spec is None:  # unreadable: reported by list/status, never fired
            if row.raw.get("error") != row.error:
                self.store.update(row.name, error=row.error)
            return IDLE_S
        if row.paused:
            return IDLE_S
        spec = row.spec
        wait = IDLE_S
        if row.queued:
            if busy_firing(self.store, spec.name) is None:
                fire(self.store, row, scheduled_for=None, why="queued run", home=self.home)
                row.queued = False
            else:
                wait = BUSY_S
        due = row.next_due
        trigger = spec.trigger
        if due is None:
            due = trigger.next_after(_utc(now)).timestamp()
            self.store.update(spec.name, next_due=due)
        if due > now:
            return min(wait, due - now)
        # Every firing due by now: the first is ``due``, then the trigger's next ones.
        pending = [_utc(due)] + trigger.firings_between(_utc(due), _utc(now), COUNT_LIMIT)
        # Missed: due while no service ran (beyond the start-up of this one), or far too late.
        missed = [at for at in pending if self._missed(at.timestamp(), now)]
        on_time = [at for at in pending if at not in missed]
        next_due = trigger.next_after(_utc(now)).timestamp()
        # Advance first: a firing that raises is not fired again at every tick.
        self.store.update(spec.name, next_due=next_due)
        if missed:
            first, last = missed[0].timestamp(), missed[-1].timestamp()
            down = "not running" if first < self.started else "late (the machine slept?)"
            more = "" if len(pending) <= COUNT_LIMIT else " (at least)"
            self.store.record(
                spec.name,
                "missed",
                scheduled_for=first,
                until=last,
                count=len(missed),
                reason=f"{len(missed)}{more} firing(s) from {_iso(first)} to {_iso(last)} "
                f"missed: the scheduler was {down}",
            )
        extra = [at for at in on_time if at != pending[-1]]
        if extra:  # due together with a later one: one run serves them all
            self.store.record(
                spec.name,
                "skipped",
                scheduled_for=extra[0].timestamp(),
                until=extra[-1].timestamp(),
                count=len(extra),
                reason="due together with a later firing; one run serves them",
            )
        fired_for = pending[-1].timestamp()
        why = f"catch-up of {len(missed)} missed firing(s)" if missed else "scheduled"
        result = fire(self.store, row, scheduled_for=fired_for, why=why, home=self.home)
        self.log(f"schedule {spec.name}: {result['outcome']} ({result.get('reason') or why})")
        return min(wait, max(0.0, next_due - time.time()))


def _utc(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, tz=timezone.utc)


def _create_time() -> float:
    import psutil

    return psutil.Process().create_time()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m aiinfra_magics.pipelines.scheduler_service")
    parser.add_argument("--home", required=True, help="the AIINFRA_HOME whose schedules to fire")
    args = parser.parse_args(argv)
    home = private_dir(Path(args.home))
    return Service(home).serve()


if __name__ == "__main__":
    sys.exit(main())
