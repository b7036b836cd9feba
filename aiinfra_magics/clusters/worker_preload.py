"""Preloaded into every worker process of a cluster this machine hosts.

JupyterLab's Kernel > Interrupt signals the kernel's whole process group, and
worker processes started by a cluster in that kernel are in it: each would die
of the SIGINT and leave the cluster with no workers. Moving the worker into a
process group of its own keeps the interrupt for the kernel alone; the worker
still ends with its cluster (the nanny terminates it by pid) and, if the kernel
is killed outright, through ``death_timeout``.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any


def dask_setup(worker: Any = None) -> None:
    with contextlib.suppress(OSError):  # already a group leader: nothing to do
        os.setpgid(0, 0)
