"""Where a step ran, and whether every worker sees the pipeline folder.

On a batch cluster (SLURM) the workers run on compute nodes: the run record
names the host and the SLURM job of every step, and before the first step the
runner checks that each worker sees the pipeline folder. That check writes a
marker with a random token and has every worker read it back, so a folder of
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


def _look(folder: str, marker: str, token: str) -> dict[str, str | None]:
    """Run on each worker: can it read ``marker`` (in the pipeline folder) with our token?"""
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


def check_shared_folder(client: Client, folder: Path, scratch: Path) -> None:
    """Raise one line naming the first worker that cannot see ``folder``.

    ``scratch`` is a folder inside ``folder`` the runner owns (the run's folder);
    the marker is written there and removed afterwards.
    """
    token = secrets.token_hex(16)
    marker = scratch / MARKER
    fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    try:
        answers = client.run(_look, str(folder), str(marker), token)
    finally:
        marker.unlink(missing_ok=True)
    for address, seen in sorted(answers.items()):
        if seen["problem"]:
            job = f", SLURM job {seen['slurm_job_id']}" if seen.get("slurm_job_id") else ""
            raise OperationError(
                f"cluster: worker {address} (host {seen['host']}{job}) cannot see the pipeline "
                f"folder {folder} ({seen['problem']}); it must be on a filesystem that every "
                "node of the cluster shares",
                field="cluster",
            )
