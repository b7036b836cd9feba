"""Kinds of step failure, shared by the worker task and the runner.

Only INFRA kinds are retried (with backoff): they say nothing about the user's code.
"""

USER_ERROR = "error"  # an exception in a cell, a missing product: not retried
TIMEOUT = "timeout"  # the step ran past its timeout: not retried
OUT_OF_MEMORY = "dead-kernel-memory"  # killed for outgrowing the memory limit: not retried
DEAD_KERNEL = "dead-kernel"  # the kernel died for another reason (killed, crashed)
KERNEL_START = "kernel-start"  # the kernel did not start (e.g. a port taken meanwhile)
WORKER_LOST = "worker-lost"  # the Dask worker went away mid-task
INFRA = frozenset({DEAD_KERNEL, KERNEL_START, WORKER_LOST})
