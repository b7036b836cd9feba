"""Where a step ran, and whether every worker sees the pipeline folder.

On a batch cluster (SLURM) the workers run on compute nodes: the run record
names the host and the SLURM job of every step, and each worker is checked to see
the pipeline folder before it runs a step of the run (workers that join later
included). That check writes a marker with a random token in the run's folder
and has the worker read it back, so a folder of
the same name on a node's own disk (the usual mistake: ``/tmp`` or a local
scratch path) is caught as surely as a missing one; otherwise the steps would
run and write their products where the login node never sees them.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import OperationError

if TYPE_CHECKING:
    from distributed import Client

#: Result fields of a step that the run record keeps (see ``where``).
FIELDS = ("host", "slurm_job_id", "slurm_node")
MARKER = ".aiinfra-shared-check"


def where() -> dict[str, str]:
    """This process's host and, inside a SLURM job, the job id and node (from SLURM's env)."""
    found = {"host": socket.gethostname()}
    job = os.environ.get("SLURM_JOB_ID")
    if job:
        found["slurm_job_id"] = job
        found["slurm_node"] = os.environ.get("SLURMD_NODENAME") or found["host"]
    return found


def fields(result: dict[str, Any]) -> dict[str, Any]:
    """The placement fields of a step's result, for its run-record entry."""
    return {k: result[k] for k in FIELDS if result.get(k)}


def look(folder: str, marker: str, token: str) -> dict[str, str | None]:
    """Run on a worker: can it read ``marker`` (in the pipeline folder) with our token?"""
    seen = where()
    try:
        text = Path(marker).read_text()
    except OSError as exc:
        problem = exc.strerror or type(exc).__name__
        if not os.path.isdir(folder):
            problem = "no such folder there"
    else:
        problem = None if text == token else "a different folder of that name"
    return {**seen, "problem": problem}


def not_shared(address: str, seen: dict[str, Any], folder: str | Path) -> str:
    """The one line that stops a run when worker ``address`` cannot see ``folder``."""
    job = f", SLURM job {seen['slurm_job_id']}" if seen.get("slurm_job_id") else ""
    return (
        f"cluster: worker {address} (host {seen['host']}{job}) cannot see the pipeline "
        f"folder {folder} ({seen['problem']}); it must be on a filesystem that every "
        "node of the cluster shares"
    )


class SharedCheck:
    """The marker of one run, kept from the cluster's opening to the run's end.

    The workers present at the start are checked at once (``check_now``: the run stops
    before any step runs); every step task also carries ``task_field`` and its worker
    reads the marker before the step starts (``connect._run_node``), because workers can
    join after the start: an adaptive cluster at 0 workers has none to check up front.
    Every step rather than a worker's first: one small read, and no per-worker memory
    that a restarted worker at the same address would wrongly inherit.

    ``scratch`` is a folder inside ``folder`` the runner owns (the run's folder).
    """

    def __init__(self, folder: Path, scratch: Path) -> None:
        self.folder = folder
        self.token = secrets.token_hex(16)
        self.marker = scratch / MARKER
        fd = os.open(self.marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.token)

    def task_field(self) -> dict[str, str]:
        return {"folder": str(self.folder), "marker": str(self.marker), "token": self.token}

    def check_now(self, client: Client) -> None:
        """Raise one line naming the first worker present now that cannot see the folder."""
        answers = client.run(look, str(self.folder), str(self.marker), self.token)
        for address, seen in sorted(answers.items()):
            if seen["problem"]:
                raise OperationError(not_shared(address, seen, self.folder), field="cluster")

    def close(self) -> None:
        self.marker.unlink(missing_ok=True)
