"""How the slurm backend talks to SLURM and dask-jobqueue: the sbatch check, the cluster class.

``slurm.py`` turns options into ``SLURMCluster`` keyword arguments (pure rules);
this module does the talking: ``sbatch --test-only`` before anything starts, and
a ``SLURMCluster`` whose jobs note their ids (and sbatch's refusals) where every
process can read them (``slurm_queue``).

dask-jobqueue 0.9.0 sets a SIGINT handler (``sys.exit()``) when it is imported
(dask-jobqueue #696, fixed after 0.9.0 by #697): imported from a thread (the
jupyter server's executor) the import fails with ``ValueError: signal only
works in main thread``; imported in a kernel it turns the kernel's Interrupt
into ``SystemExit``. :func:`jobqueue` imports it without that handler.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import threading
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import OperationError
from .slurm_queue import note_submit_error, note_submitted, sbatch_error

SUBMIT_CHECK_TIMEOUT_S = 30.0
#: Adaptive rounds (1 s apart by default) a job must be surplus before it is cancelled.
ADAPT_WAIT_COUNT = 20
_IMPORT_LOCK = threading.Lock()


def jobqueue() -> ModuleType:
    """``dask_jobqueue``, imported without its import-time SIGINT handler (see above)."""
    if "dask_jobqueue" in sys.modules:
        return sys.modules["dask_jobqueue"]
    with _IMPORT_LOCK:
        original = signal.signal

        def keep_sigint(signalnum: Any, handler: Any) -> Any:
            if signalnum == signal.SIGINT:  # the import-time handler of dask_jobqueue.runner
                return signal.getsignal(signal.SIGINT)
            return original(signalnum, handler)

        signal.signal = keep_sigint
        try:
            import dask_jobqueue
        finally:
            signal.signal = original
    return dask_jobqueue


def submit_check(script: str) -> None:
    """Ask sbatch (``--test-only``: nothing is queued) whether it accepts ``script``."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh", prefix="aiinfra-check-") as handle:
        handle.write(script)
        handle.flush()
        try:
            proc = subprocess.run(
                ["sbatch", "--test-only", handle.name],
                capture_output=True,
                text=True,
                timeout=SUBMIT_CHECK_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise OperationError(
                f"sbatch --test-only did not answer within {SUBMIT_CHECK_TIMEOUT_S:g}s; "
                "is slurmctld reachable (SLURM_CONF)?"
            ) from None
    if proc.returncode != 0:
        why = sbatch_error(proc.stderr)
        field = _field_of(why)
        if "node configuration" in why.lower():
            why += " (no node in the partition has that many cores, that much memory or those GPUs)"
        raise OperationError(
            f"{field + ': ' if field else ''}sbatch rejects the job script: {why}", field=field
        )


def _field_of(message: str) -> str | None:
    """The option most likely at fault, so the door can point at it."""
    low = message.lower()
    for words, field in (
        (("partition",), "partition"),
        (("account", "association"), "account"),
        (("gres", "gpu"), "gpus_per_job"),
        (("memory",), "memory"),
        (("time limit",), "walltime"),
    ):
        if any(w in low for w in words):
            return field
    return None


@cache
def _cluster_class() -> type:
    jobqueue()
    from dask_jobqueue import SLURMCluster
    from dask_jobqueue.slurm import SLURMJob

    class AiinfraSLURMJob(SLURMJob):
        """Notes each job id (and each sbatch refusal) where every process can read it."""

        def __init__(self, *args: Any, jobs_path: str | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._jobs_path = jobs_path

        async def start(self) -> None:
            try:
                await super().start()
            except Exception as exc:
                if self._jobs_path:
                    note_submit_error(Path(self._jobs_path), sbatch_error(str(exc)))
                raise
            if self._jobs_path and self.job_id:
                note_submitted(Path(self._jobs_path), self.job_id)

    class AiinfraSLURMCluster(SLURMCluster):
        job_cls = AiinfraSLURMJob

        def adapt(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("wait_count", ADAPT_WAIT_COUNT)
            return super().adapt(*args, **kwargs)

    return AiinfraSLURMCluster


def AiinfraSLURMCluster(**kwargs: Any) -> Any:  # noqa: N802 - a class, built lazily
    """SLURMCluster that records its jobs; built on first use (dask_jobqueue imports slowly)."""
    return _cluster_class()(**kwargs)
