"""Whether a CPU twin runs on the calling thread or in numba's parallel region.

Each parallel twin has a serial twin compiled from the same inline body (numba cannot
switch ``parallel=True`` off per call, and one function compiled both ways would share a
cache entry). The serial twin is taken on one numba thread, where the parallel region is
pure cost, and for small work on any number of threads, where the region's start and
join cost more than the second thread saves.
"""

from __future__ import annotations

import numba

# Work, in values, at or under which the serial twin is faster on two threads. Each kernel
# counts its values plus a fixed cost per row or segment, as values (see its caller).
# Measured on cpu-2c, 2 threads (benchmarks/serial_crossover.py; RESULTS.md, "serial under
# a work size"): a parallel region costs 2-6 us, and serial won up to 4-8K values in one
# run, up to 16-65K in another; this is about where serial won in both.
SERIAL_WORK = 6144


def serial(work: int) -> bool:
    """Whether a twin with ``work`` values of work runs serially."""
    return work <= SERIAL_WORK or numba.get_num_threads() == 1
