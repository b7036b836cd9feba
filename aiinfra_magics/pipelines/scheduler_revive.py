"""Bring the scheduler service back if it is wanted and gone: cheap, for every front door.

A leaf module (standard library only) so that ``doors/words.py`` can call
:func:`revive_quietly` on every ``aiinfra`` command without importing the scheduler: where
nothing was ever scheduled it costs one ``stat``; where a service runs, one ``flock`` probe.
"""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys
from pathlib import Path


def service_paths(home: Path) -> dict[str, Path]:
    """The service's files under ``$AIINFRA_HOME/scheduler``."""
    folder = home / "scheduler"
    return {
        "lock": folder / "service.lock",
        "pid": folder / "service.pid",
        "wake": folder / "wake",
        "wanted": folder / "wanted",
        "log": folder / "service.log",
    }


def lock_free(lock: Path) -> bool:
    """True if no service holds the lock (the probe's own lock is let go at once)."""
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    finally:
        os.close(fd)  # closing releases the probe's lock
    return True


def spawn(home: Path) -> subprocess.Popen:
    """Start a service process for ``home``, detached, logging to ``scheduler/service.log``.

    If another one wins the lock first, this one exits at once: there is never a second.
    """
    paths = service_paths(home)
    fd = os.open(paths["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aiinfra_magics.pipelines.scheduler_service",
                "--home",
                str(home),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "AIINFRA_HOME": str(home)},
            start_new_session=True,  # not in the caller's process group: its Ctrl-C stays there
        )


def revive(home: Path | None = None) -> bool:
    """Start the service again if it is wanted and not running; True if one was started."""
    if home is None:
        env = os.environ.get("AIINFRA_HOME")
        if not env:
            from ..paths import aiinfra_home

            home = aiinfra_home()
        else:
            home = Path(env)
    paths = service_paths(home)
    if not paths["wanted"].exists() or not lock_free(paths["lock"]):
        return False
    spawn(home)
    return True


def revive_quietly() -> None:
    """:func:`revive`, never failing the command that called it (it only reports)."""
    try:
        revive()
    except Exception as exc:  # a front door must not fail because the scheduler could not
        print(f"aiinfra: scheduler service not restarted: {exc}", file=sys.stderr)
