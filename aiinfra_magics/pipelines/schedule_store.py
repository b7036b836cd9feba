"""Where schedules live: one SQLite file per ``AIINFRA_HOME``, private to the user.

``$AIINFRA_HOME/scheduler/schedules.db`` (folder 0700, file 0600) holds two tables:
``schedules`` (each schedule's checked spec as JSON, paused, the next firing due, its
error if broken, whether a run is queued) and ``firings`` (every firing: started,
skipped, missed, queued or failed, with its reason, the run's process and, once known,
its run id and status). SQLite serialises writers across processes (the service, the
CLI, the server) and survives a SIGKILL at any point with every committed change.

A row whose spec cannot be read back is still listed, marked with its error: one broken
schedule never hides or stops the others.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AiinfraError, NotFoundError
from ..paths import private_dir
from .schedule_spec import ScheduleSpec

SCHEMA = """
CREATE TABLE IF NOT EXISTS schedules (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0,
    next_due REAL,
    error TEXT,
    queued INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS firings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    outcome TEXT NOT NULL,
    scheduled_for REAL,
    until REAL,
    count INTEGER NOT NULL DEFAULT 1,
    at REAL NOT NULL,
    reason TEXT,
    pid INTEGER,
    pid_started REAL,
    folder TEXT,
    log TEXT,
    run_id TEXT,
    status TEXT
);
CREATE INDEX IF NOT EXISTS firings_by_name ON firings (name, id);
"""
#: What a firing's ``outcome`` can be.
OUTCOMES = ("started", "skipped", "missed", "queued", "failed")
FIRING_COLUMNS = (
    "id",
    "name",
    "outcome",
    "scheduled_for",
    "until",
    "count",
    "at",
    "reason",
    "pid",
    "pid_started",
    "folder",
    "log",
    "run_id",
    "status",
)


def scheduler_dir(home: Path) -> Path:
    """``$AIINFRA_HOME/scheduler`` (0700): the store, the service's lock, pid and logs."""
    return private_dir(home / "scheduler")


@dataclass
class ScheduleRow:
    """A stored schedule: its spec (None when it cannot be read back) and its state."""

    name: str
    spec: ScheduleSpec | None
    paused: bool
    next_due: float | None
    error: str | None
    queued: bool
    raw: dict[str, Any]


class ScheduleStore:
    """The schedules and firings of one ``AIINFRA_HOME``."""

    def __init__(self, home: Path) -> None:
        self.dir = scheduler_dir(home)
        self.path = self.dir / "schedules.db"

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: writers queue, never deadlock)."""
        if not self.path.exists():
            # Created 0600 before SQLite opens it; its journal takes the same mode.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("BEGIN IMMEDIATE")
            for statement in SCHEMA.strip().split(";"):
                if statement.strip():
                    conn.execute(statement)
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    # -- schedules --------------------------------------------------------------------------
    def add(self, spec: ScheduleSpec, next_due: float) -> None:
        """Store a new schedule.

        Raises:
            InputError: a schedule of that name exists (field ``name``).
        """
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM schedules WHERE name = ?", (spec.name,)).fetchone():
                raise AiinfraError(
                    f"name: got {spec.name!r}; allowed: a name no other schedule has "
                    "(remove it first to replace it)",
                    field="name",
                )
            conn.execute(
                "INSERT INTO schedules (name, spec, next_due) VALUES (?, ?, ?)",
                (spec.name, json.dumps(spec.to_dict()), next_due),
            )

    def rows(self) -> list[ScheduleRow]:
        """Every schedule, by name (a row that cannot be read carries its error)."""
        if not self.path.exists():
            return []
        with self.transaction() as conn:
            found = conn.execute("SELECT * FROM schedules ORDER BY name").fetchall()
        return [_row(dict(r)) for r in found]

    def get(self, name: str) -> ScheduleRow:
        """One schedule.

        Raises:
            NotFoundError: no schedule of that name (field ``name``).
        """
        with self.transaction() as conn:
            found = conn.execute("SELECT * FROM schedules WHERE name = ?", (name,)).fetchone()
            known = [r[0] for r in conn.execute("SELECT name FROM schedules ORDER BY name")]
        if found is None:
            raise NotFoundError(
                f"name: no schedule {name!r}; allowed: {', '.join(known) or 'none yet'}",
                field="name",
            )
        return _row(dict(found))

    def remove(self, name: str) -> None:
        """Forget a schedule and its firings (runs it started go on)."""
        self.get(name)
        with self.transaction() as conn:
            conn.execute("DELETE FROM schedules WHERE name = ?", (name,))
            conn.execute("DELETE FROM firings WHERE name = ?", (name,))

    def update(self, name: str, **fields: Any) -> None:
        """Set columns of one schedule (``paused``, ``next_due``, ``error``, ``queued``)."""
        allowed = {"paused", "next_due", "error", "queued"}
        assert set(fields) <= allowed, fields
        if not fields:
            return
        columns = ", ".join(f"{key} = ?" for key in fields)
        with self.transaction() as conn:
            conn.execute(f"UPDATE schedules SET {columns} WHERE name = ?", (*fields.values(), name))

    # -- firings ----------------------------------------------------------------------------
    def record(self, name: str, outcome: str, **fields: Any) -> int:
        """Record one firing (or a run of missed ones, with ``count``); returns its id."""
        assert outcome in OUTCOMES, outcome
        fields = {"at": time.time(), **fields}
        assert set(fields) <= set(FIRING_COLUMNS), fields
        keys = ["name", "outcome", *fields]
        with self.transaction() as conn:
            cursor = conn.execute(
                f"INSERT INTO firings ({', '.join(keys)}) VALUES ({', '.join('?' * len(keys))})",
                (name, outcome, *fields.values()),
            )
            return int(cursor.lastrowid or 0)

    def set_run(self, firing_id: int, run_id: str | None, status: str | None) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE firings SET run_id = ?, status = ? WHERE id = ?",
                (run_id, status, firing_id),
            )

    def firings(self, name: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The latest firings, newest first (of one schedule, or of all)."""
        if not self.path.exists():
            return []
        where, args = ("WHERE name = ?", (name,)) if name else ("", ())
        with self.transaction() as conn:
            found = conn.execute(
                f"SELECT * FROM firings {where} ORDER BY id DESC LIMIT ?", (*args, limit)
            ).fetchall()
        return [dict(r) for r in found]

    def last_started(self, name: str) -> dict[str, Any] | None:
        """The schedule's latest firing that started a run."""
        with self.transaction() as conn:
            found = conn.execute(
                "SELECT * FROM firings WHERE name = ? AND outcome = 'started' "
                "ORDER BY id DESC LIMIT 1",
                (name,),
            ).fetchone()
        return dict(found) if found else None


def _row(data: dict[str, Any]) -> ScheduleRow:
    error = data.get("error")
    try:
        spec = ScheduleSpec.from_stored(json.loads(data["spec"]))
    except Exception as exc:  # whatever is wrong with one row, the others are listed
        spec = None
        error = f"stored schedule cannot be read: {type(exc).__name__}: {exc}"
    return ScheduleRow(
        name=data["name"],
        spec=spec,
        paused=bool(data.get("paused")),
        next_due=data.get("next_due"),
        error=error,
        queued=bool(data.get("queued")),
        raw=data,
    )
