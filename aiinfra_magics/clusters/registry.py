"""The cluster registry: one JSON file per cluster, shared by every process of the user.

Writes go to a temporary file and are renamed into place, so a reader never sees
half a record. Read-modify-write sequences (reserving a name, pruning) hold an
advisory ``flock`` on the registry directory, so concurrent writers from many
processes stay consistent.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from ..errors import AiinfraError
from .rpc import tcp_reachable

HOSTNAME = socket.gethostname()


def registry_dir() -> Path:
    """``$AIINFRA_HOME/clusters``, else ``<jupyter runtime dir>/aiinfra/clusters``."""
    home = os.environ.get("AIINFRA_HOME")
    if not home:
        from jupyter_core.paths import jupyter_runtime_dir

        home = os.path.join(jupyter_runtime_dir(), "aiinfra")
    path = Path(home) / "clusters"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def this_process() -> dict[str, Any]:
    proc = psutil.Process()
    return {"pid": proc.pid, "host": HOSTNAME, "started": proc.create_time()}


def owner_alive(owner: dict[str, Any] | None) -> bool | None:
    """True/False for an owner process on this host; None when it can't be told from here."""
    if not owner or owner.get("host") != HOSTNAME or not owner.get("pid"):
        return None
    try:
        proc = psutil.Process(owner["pid"])
        # A recycled pid has another start time.
        started = owner.get("started")
        if started is not None and abs(proc.create_time() - started) > 1.0:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def record_alive(record: dict[str, Any]) -> bool:
    """Does this record still describe a cluster someone can reach?"""
    if (record.get("owner") or {}).get("kind") == "external":
        # Nobody here owns an external scheduler: it lives as long as it answers.
        return tcp_reachable(record.get("scheduler_address", "")) is not False
    alive = owner_alive(record.get("owner"))
    if alive is False:
        return False
    if record.get("status") == "starting":
        # A start in progress on another host: keep it unless it is very old.
        return alive is True or time.time() - record.get("created", 0) < 600
    reachable = tcp_reachable(record.get("scheduler_address", ""))
    if reachable is None:
        return alive is not False
    return reachable


class Registry:
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else registry_dir()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.root / f"{name}.json"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        with open(self.root / ".lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def write(self, record: dict[str, Any]) -> None:
        """Atomically replace the record of ``record['name']``."""
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(record, handle, indent=2, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path(record["name"]))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def read(self, name: str) -> dict[str, Any] | None:
        try:
            with open(self.path(name)) as handle:
                return json.load(handle)
        except FileNotFoundError:
            return None
        except json.JSONDecodeError:
            return None  # only a foreign writer can leave this; atomic renames never do

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.json") if not p.name.startswith("."))

    def records(self) -> list[dict[str, Any]]:
        return [r for r in (self.read(n) for n in self.names()) if r is not None]

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(name).unlink()

    def update(self, name: str, **changes: Any) -> dict[str, Any] | None:
        with self.lock():
            record = self.read(name)
            if record is None:
                return None
            record.update(changes)
            self.write(record)
            return record

    def reserve(self, record: dict[str, Any]) -> None:
        """Write ``record`` as ``starting`` unless a live cluster already has its name."""
        name = record["name"]
        with self.lock():
            existing = self.read(name)
            if existing is not None and record_alive(existing):
                raise AiinfraError(
                    f"name: {name!r} is already in use by a running cluster; "
                    "choose another name or stop it first",
                    field="name",
                )
            self.write({**record, "status": "starting"})

    def free_name(self, base: str) -> str:
        """``base``, or ``base-2``, ``base-3``... whichever no live record holds."""
        taken = {r["name"] for r in self.records() if record_alive(r)}
        if base not in taken:
            return base
        n = 2
        while f"{base}-{n}" in taken:
            n += 1
        return f"{base}-{n}"

    def prune(self) -> list[str]:
        """Drop records whose cluster no longer answers; return their names."""
        dropped = []
        for record in self.records():
            if not record_alive(record):
                with self.lock():
                    again = self.read(record["name"])
                    if again is not None and not record_alive(again):
                        self.remove(record["name"])
                        dropped.append(record["name"])
        return dropped
