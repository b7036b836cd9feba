"""Kinds of step failure, shared by the worker task and the runner, and the retry rule.

Only INFRA kinds are retried (with backoff): they say nothing about the user's code. A step
killed for outgrowing its memory is not: the same notebook on the same limit would only be
killed again, holding the worker meanwhile.
"""

USER_ERROR = "error"  # an exception in a cell, a missing product: not retried
TIMEOUT = "timeout"  # the step ran past its timeout: not retried
OUT_OF_MEMORY = "dead-kernel-memory"  # killed for outgrowing the memory limit: not retried
DEAD_KERNEL = "dead-kernel"  # the kernel died for another reason (killed, crashed)
KERNEL_START = "kernel-start"  # the kernel did not start (e.g. a port taken meanwhile)
WORKER_LOST = "worker-lost"  # the Dask worker went away mid-task
# The worker cannot read the run's folder marker: the whole run fails (placement.py).
NOT_SHARED = "folder-not-shared"
INFRA = frozenset({DEAD_KERNEL, KERNEL_START, WORKER_LOST})

BACKOFF_S = 0.5  # first retry delay; doubles with each attempt


def retried(kind: str | None, attempts: int, retries: int) -> bool:
    """Whether a step whose attempt number ``attempts`` failed with ``kind`` runs again."""
    return kind in INFRA and attempts <= retries


def backoff(attempts: int) -> float:
    """Seconds before the next attempt, after attempt number ``attempts`` failed."""
    return BACKOFF_S * 2 ** (attempts - 1)
