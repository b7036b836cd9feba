"""Reading the run records (``runs/*/run.json``) a pipeline folder holds, as the tests and
benchmarks that wait on runs do: a record being written is skipped, not an error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def run_records(folder: Path) -> dict[str, dict[str, Any]]:
    """Each run's record under ``folder/runs``, by its run folder's name (oldest name first)."""
    found = {}
    for path in sorted((Path(folder) / "runs").glob("*/run.json")):
        try:
            found[path.parent.name] = json.loads(path.read_text())
        except ValueError:
            continue  # being written
    return found


def runs_of(folder: Path, schedule: str) -> list[dict[str, Any]]:
    """The records of the runs that the schedule named ``schedule`` fired."""
    return [
        data
        for data in run_records(folder).values()
        if (data.get("trigger") or {}).get("schedule") == schedule
    ]


def stop_scheduler(home: Path) -> None:
    """Stop the scheduler service of AIINFRA_HOME ``home`` and wait until every run it fired
    has ended (a test's cleanup: nothing it started outlives it)."""
    import sqlite3

    from aiinfra_cli import aiinfra
    from waiting import wait_for

    from aiinfra_magics.pipelines.schedule_runs import process_alive

    aiinfra("scheduler", "stop", home=home, timeout=120)
    db = Path(home) / "scheduler" / "schedules.db"
    if db.exists():
        with sqlite3.connect(db) as conn:
            pids = conn.execute(
                "SELECT pid, pid_started FROM firings WHERE pid IS NOT NULL"
            ).fetchall()
        wait_for(
            lambda: not any(process_alive(p, s) for p, s in pids),
            timeout=180,
            what="the runs the schedules started to end",
        )
