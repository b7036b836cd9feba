"""The SLURM queue as aiinfra shows it: which jobs a cluster submitted, and their state.

The process that owns a SLURM cluster writes the ids of the jobs it submits (and
any submission sbatch refused) to ``<registry>/slurm/<name>.json``; any process
(``cluster status`` from the CLI, the REST server, the sidebar) reads that file
and asks ``squeue`` about those ids. ``squeue -o`` is used rather than
``squeue --json``: its fields have kept their meaning across SLURM releases,
while the JSON layout changes with every data_parser version.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from ..paths import atomic_write_text, private_dir
from .registry import registry_dir

#: Kept in the file: enough to show the recent history of an adaptive cluster.
MAX_JOBS = 200
MAX_ERRORS = 20
SQUEUE_TIMEOUT_S = 15.0
#: squeue format: id, state, reason, time left, nodes, name (``|`` never occurs in these).
SQUEUE_FORMAT = "%i|%T|%r|%L|%N|%j"
#: Finished states worth showing; COMPLETED and CANCELLED are dask's own doing.
SHOWN_FINISHED = {"FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}

_LOCK = threading.Lock()


def jobs_file(name: str, root: Path | None = None) -> Path:
    return private_dir((root or registry_dir()) / "slurm") / f"{name}.json"


def read_jobs(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"job_ids": [], "errors": []}
    if not isinstance(data, dict):
        return {"job_ids": [], "errors": []}
    return {
        "job_ids": [str(j) for j in data.get("job_ids", []) if str(j).isdigit()],
        "errors": [e for e in data.get("errors", []) if isinstance(e, dict)],
    }


def note_submitted(path: Path, job_id: str) -> None:
    with _LOCK:
        data = read_jobs(path)
        data["job_ids"] = [*data["job_ids"], str(job_id)][-MAX_JOBS:]
        atomic_write_text(path, json.dumps(data))


def note_submit_error(path: Path, error: str) -> None:
    with _LOCK:
        data = read_jobs(path)
        data["errors"] = [*data["errors"], {"time": time.time(), "error": error}][-MAX_ERRORS:]
        atomic_write_text(path, json.dumps(data))


def sbatch_error(output: str) -> str:
    """The one line that says why sbatch refused, from dask-jobqueue's multi-line RuntimeError."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        low = line.lower()
        if "error" in low or "failure" in low:
            if not low.startswith(("command exited", "exit code")):
                return line.removeprefix("sbatch: error: ")
    return lines[-1] if lines else "sbatch failed"


def parse_squeue(output: str) -> list[dict[str, Any]]:
    """Rows of ``squeue -h -o SQUEUE_FORMAT`` as dicts."""
    jobs = []
    for line in output.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 6:
            continue
        job_id, state, reason, left, nodes, name = parts
        jobs.append({
            "job_id": job_id,
            "state": state,
            "reason": None if reason in ("None", "") else reason,
            "time_left": None if left in ("INVALID", "NOT_SET", "UNLIMITED", "") else left,
            "node": nodes or None,
            "name": name,
        })  # fmt: skip
    return jobs


#: Job ids per squeue call: a few thousand keep the argument far under Linux's 128 KiB limit
#: on one argv string (MAX_ARG_STRLEN), while 200 clusters' worth of ids still take a few calls.
IDS_PER_CALL = 2000
#: squeue's words when it is asked about one job id it no longer knows (SLURM 22.05: exit 1).
UNKNOWN_JOB = "invalid job id specified"
_WANTED_STATES = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", *SHOWN_FINISHED}


def _squeue(args: list[str], env: dict[str, str] | None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", SQUEUE_FORMAT, *args],
        capture_output=True,
        text=True,
        timeout=SQUEUE_TIMEOUT_S,
        env=env,
    )


def _failed(proc: subprocess.CompletedProcess) -> RuntimeError:
    return RuntimeError(sbatch_error(proc.stderr) or f"squeue exited {proc.returncode}")


def _ask(ids: list[str], env: dict[str, str] | None) -> list[dict[str, Any]]:
    """squeue's rows for ``ids`` (one call; this user's jobs only), forgotten ids left out.

    ``-u`` (our own uid: every id here was submitted by this user) lets slurmctld filter
    by user before it answers; ``-j`` then keeps only ``ids``. Asked about a single id it
    no longer knows, squeue fails with "Invalid job id specified"; that id is simply gone.
    Some releases fail the same way when only some of several ids are unknown: then this
    user's jobs are asked for and filtered here, so the known ids are not lost.
    """
    me = ["-u", str(os.getuid())]
    proc = _squeue([*me, "-j", ",".join(ids)], env)
    if proc.returncode != 0 and UNKNOWN_JOB in proc.stderr.lower():
        if len(ids) == 1:
            return []
        proc = _squeue(me, env)
    if proc.returncode != 0:
        raise _failed(proc)
    return parse_squeue(proc.stdout)


def queue_states(
    job_ids: list[str], env: dict[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """What squeue says about ``job_ids`` (pending/running, and recent failures), by job id.

    Never the whole queue: only these ids, in as few squeue calls as the argument length
    allows (one for every SLURM cluster of a listing, at any real size). Ids squeue no
    longer knows are left out.
    """
    ids = sorted(set(job_ids), key=int)
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), IDS_PER_CALL):
        chunk = ids[start : start + IDS_PER_CALL]
        wanted = set(chunk)
        for job in _ask(chunk, env):
            if job["job_id"] in wanted and job["state"] in _WANTED_STATES:
                found[job["job_id"]] = job
    return found


def summarise(jobs: list[dict[str, Any]]) -> str:
    """``2 running, 1 pending (Resources)`` for the one-line views."""
    counts: dict[str, int] = {}
    reasons: dict[str, set[str]] = {}
    for job in jobs:
        state = job["state"].lower()
        counts[state] = counts.get(state, 0) + 1
        if job.get("reason") and state == "pending":
            reasons.setdefault(state, set()).add(job["reason"])
    parts = []
    for state, count in counts.items():
        why = f" ({', '.join(sorted(reasons[state]))})" if state in reasons else ""
        parts.append(f"{count} {state}{why}")
    return ", ".join(parts) or "no jobs"
