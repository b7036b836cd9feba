"""The cluster registry: one JSON file per cluster, shared by every process of the user.

Writes go to a temporary file and are renamed into place, so a reader never sees
half a record. Every write, and every read-modify-write (reserving a name, an
update, pruning), holds an advisory ``flock`` on the registry directory, so
concurrent writers from many processes and threads never lose each other's
changes. Every path is built from a validated name, so no name can reach outside
the registry; a record another program damaged is reported by name and skipped,
never fatal to the others.

The process that owns a cluster publishes what it sees into the record every few
seconds (``observed``: workers, threads, memory, cost, when read; ``heartbeat``: when
the owner last wrote), so a listing reads files instead of asking every scheduler;
a record whose owner has gone quiet is shown as such (see :func:`heartbeat_age`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil

from ..checks import NAME_PATTERN, as_name, matches
from ..errors import AiinfraError
from ..paths import aiinfra_home, atomic_write_json, private_dir
from . import history
from .rpc import tcp_reachable

HOSTNAME = socket.gethostname()
#: A record is a few hundred bytes; a bigger file is not one of ours.
MAX_RECORD_BYTES = 1 << 20
#: An owner publishes every ``host.KEEPER_INTERVAL_S`` (2 s); after this long without word
#: a listing shows the cluster as ``unknown`` (generous: a loaded 2-core machine stalls).
STALE_AFTER_S = 30.0


#: Registry folders made (0700) in this process, by the settings that place them: a long
#: listing asks for the folder once per record (a SLURM cluster's jobs file), and making it
#: again each time (mkdir, chmod) was a tenth of a 200-cluster listing.
_made: dict[tuple[str | None, ...], Path] = {}


def registry_dir() -> Path:
    """``<aiinfra home>/clusters`` (private to the user)."""
    key = tuple(os.environ.get(k) for k in ("AIINFRA_HOME", "JUPYTER_RUNTIME_DIR", "HOME"))
    known = _made.get(key)
    if known is not None and known.is_dir():
        return known
    _made[key] = made = private_dir(aiinfra_home() / "clusters")
    return made


class DamagedRecord(ValueError):
    """A record file that is not a cluster record (foreign writer, disk trouble)."""


def check_record(name: str, data: Any) -> dict[str, Any]:
    """``data`` if it is a usable record of cluster ``name``; DamagedRecord saying why not."""
    if not isinstance(data, dict):
        raise DamagedRecord(f"not a JSON object but a {type(data).__name__}")
    if data.get("name") != name:
        raise DamagedRecord(f"its name field is {data.get('name')!r}, not {name!r}")
    for key, kind in (("owner", dict), ("spec", dict), ("scheduler_address", str)):
        if data.get(key) is not None and not isinstance(data[key], kind):
            raise DamagedRecord(f"{key} is a {type(data[key]).__name__}, not a {kind.__name__}")
    return data


def this_process() -> dict[str, Any]:
    proc = psutil.Process()
    return {"pid": proc.pid, "host": HOSTNAME, "started": proc.create_time()}


def heartbeat_age(record: dict[str, Any], now: float | None = None) -> float | None:
    """Seconds since the owner last published into the record (``heartbeat``); None if never."""
    at = record.get("heartbeat")
    if not isinstance(at, (int, float)) or isinstance(at, bool):
        return None
    return max(0.0, (time.time() if now is None else now) - at)


def heartbeat_fresh(record: dict[str, Any], now: float | None = None) -> bool:
    age = heartbeat_age(record, now)
    return age is not None and age <= STALE_AFTER_S


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


#: Probes in flight at once when many records are checked (each waits on a socket, not a CPU).
MAX_PROBES = 32


def vouched(record: dict[str, Any], alive: bool | None) -> bool:
    """The owner lives on this host (``alive``) and published lately: no probe is needed."""
    external = (record.get("owner") or {}).get("kind") == "external"
    return alive is True and not external and heartbeat_fresh(record)


class Probes:
    """One round of liveness checks over many records: each owner process is looked up once,
    and each scheduler address that needs it is probed once (all concurrently), so a long
    registry (or many records of one scheduler) costs about one probe, not one per record.
    Records that their living owner vouches for (see :func:`vouched`) need no probe.
    """

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self._owners: dict[Any, bool | None] = {}
        needed = [r for r in records if not vouched(r, self.owner_alive(r.get("owner")))]
        addresses = sorted({r.get("scheduler_address") or "" for r in needed})
        if len(addresses) <= 1:
            self._reachable = {a: tcp_reachable(a) for a in addresses}
        else:
            with ThreadPoolExecutor(max_workers=min(MAX_PROBES, len(addresses))) as pool:
                self._reachable = dict(zip(addresses, pool.map(tcp_reachable, addresses)))

    def reachable(self, address: str) -> bool | None:
        if address not in self._reachable:
            self._reachable[address] = tcp_reachable(address)
        return self._reachable[address]

    def owner_alive(self, owner: dict[str, Any] | None) -> bool | None:
        key = None if not owner else (owner.get("host"), owner.get("pid"), owner.get("started"))
        if key not in self._owners:
            self._owners[key] = owner_alive(owner)
        return self._owners[key]


def record_alive(record: dict[str, Any], probes: Probes | None = None) -> bool:
    """Does this record still describe a cluster someone can reach?

    ``probes``: the checks of a whole listing (see :class:`Probes`); without it,
    this record's owner and address are checked now.
    """
    probe = probes.reachable if probes is not None else tcp_reachable
    alive_owner = probes.owner_alive if probes is not None else owner_alive

    if not record.get("owner") and not record.get("scheduler_address"):
        return False  # nobody to ask and nowhere to look: expire it
    if (record.get("owner") or {}).get("kind") == "external":
        # Nobody here owns an external scheduler: it lives as long as it answers.
        return probe(record.get("scheduler_address", "")) is not False
    alive = alive_owner(record.get("owner"))
    if alive is False:
        return False
    if vouched(record, alive):  # its owner runs here and published lately
        return True
    if record.get("status") == "starting":
        # A start in progress on another host: keep it unless it is very old.
        return alive is True or time.time() - record.get("created", 0) < 600
    answer = probe(record.get("scheduler_address", ""))
    if answer is None:
        return alive is not False
    return answer


#: Registry locks this thread holds (root -> depth): ``lock`` is reentrant within a thread.
_held = threading.local()


class Registry:
    def __init__(self, root: Path | None = None) -> None:
        self.root = private_dir(Path(root)) if root is not None else registry_dir()

    def path(self, name: str) -> Path:
        """The record file of ``name``; InputError for anything that is not a cluster name."""
        return self.root / f"{as_name('name', name)}.json"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """The registry's one lock, across processes and threads (an exclusive ``flock``).

        Reentrant within a thread: a write inside an update takes it again without waiting
        on itself. Other threads of this process open their own descriptor, so ``flock``
        keeps them out as it keeps out other processes.
        """
        depth: dict[str, int] = _held.__dict__.setdefault("depth", {})
        key = str(self.root)
        if depth.get(key):
            depth[key] += 1
            try:
                yield
            finally:
                depth[key] -= 1
            return
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "r+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            depth[key] = 1
            try:
                yield
            finally:
                depth[key] = 0
                fcntl.flock(handle, fcntl.LOCK_UN)

    def write(self, record: dict[str, Any]) -> None:
        """Atomically replace the record of ``record['name']`` (under the lock)."""
        with self.lock():
            atomic_write_json(self.path(record["name"]), record)

    def merge(self, record: dict[str, Any]) -> dict[str, Any]:
        """Write ``record``'s fields over the stored record of the same name, or ``record``
        itself where there is none (or it is damaged); return what was written.

        One read-modify-write under the lock: fields another process wrote meanwhile (a
        ``stop_requested``) survive, as ``update`` keeps them.
        """
        with self.lock():
            merged = {**(self.read(record["name"]) or {}), **record}
            self.write(merged)
            return merged

    def load(self, name: str) -> dict[str, Any] | None:
        """The record of ``name``; None when there is none; DamagedRecord when unusable."""
        return self._load(self.path(name), name)

    def _load(self, path: Path, name: str) -> dict[str, Any] | None:
        try:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_RECORD_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DamagedRecord(f"unreadable ({exc.strerror})") from None
        if len(raw) > MAX_RECORD_BYTES:
            raise DamagedRecord(f"larger than {MAX_RECORD_BYTES} bytes")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise DamagedRecord(f"not valid JSON ({type(exc).__name__})") from None
        return check_record(name, data)

    def read(self, name: str) -> dict[str, Any] | None:
        """The record of ``name``, or None when there is none or it is damaged."""
        try:
            return self.load(name)
        except DamagedRecord:
            return None

    def names(self) -> list[str]:
        """Names of record files; files whose stem is not a cluster name are not ours."""
        stems = (p.stem for p in self.root.glob("*.json"))
        return sorted(stem for stem in stems if matches(NAME_PATTERN, stem))

    def scan(self) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """Every usable record, and ``{name: why}`` for each damaged one."""
        records, damaged = [], {}
        for name in self.names():  # names() kept cluster names only: no second check
            try:
                record = self._load(self.root / f"{name}.json", name)
            except DamagedRecord as exc:
                damaged[name] = str(exc)
                continue
            if record is not None:
                records.append(record)
        return records, damaged

    def records(self) -> list[dict[str, Any]]:
        return self.scan()[0]

    def remove(self, name: str) -> None:
        with self.lock(), contextlib.suppress(FileNotFoundError):
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
        records, damaged = self.scan()
        probes = Probes(records)
        taken = {r["name"] for r in records if record_alive(r, probes)} | set(damaged)
        if base not in taken:
            return base
        n = 2
        while f"{base}-{n}" in taken:
            n += 1
        return f"{base}-{n}"

    def live(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records that are alive (addresses probed concurrently); the dead ones are removed."""
        return self.live_and_lost(records)[0]

    def live_and_lost(
        self, records: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(records alive, records removed as ``lost``: their owner died without a word)."""
        probes = Probes(records)
        alive = [record_alive(r, probes) for r in records]
        dropped = self.remove_dead([r for r, ok in zip(records, alive) if not ok])
        lost = [r for r in records if r["name"] in dropped and lost_owner(r)]
        return [r for r, ok in zip(records, alive) if ok], lost

    def remove_dead(self, dead: list[dict[str, Any]]) -> list[str]:
        """Remove records judged dead, unless rewritten since (then judged again).

        A cluster that had started (it has an address) and whose owner died without
        recording it (``kill -9``, a crash, the node rebooted) gets its ``lost`` line in
        ``cluster history`` here: the owner that would have written it is gone.
        """
        dropped = []
        if not dead:
            return dropped
        with self.lock():
            for record in dead:
                again = self.read(record["name"])
                if again is not None and (again == record or not record_alive(again)):
                    self.remove(record["name"])
                    dropped.append(record["name"])
                    # Only when its owner is known dead: a scheduler that stops answering while
                    # its owner lives is being stopped, and the owner writes that line itself.
                    if lost_owner(again):
                        self._record_lost(again)
        return dropped

    def _record_lost(self, record: dict[str, Any]) -> None:
        try:  # the history sits beside the registry folder, in the aiinfra home
            history.append_history(history.entry(record, "lost", None), self.root.parent)
        except OSError:  # pruning goes on; a missing history line is not worth failing a list
            pass

    def prune(self) -> list[str]:
        """Drop records whose cluster no longer answers; return their names."""
        records = self.records()
        probes = Probes(records)
        return self.remove_dead([r for r in records if not record_alive(r, probes)])


def lost_owner(record: dict[str, Any]) -> bool:
    """A started cluster (it has an address) whose owner is known dead."""
    return bool(record.get("scheduler_address")) and owner_alive(record.get("owner")) is False
