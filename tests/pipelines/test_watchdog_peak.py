"""A step shorter than the watchdog's sampling interval still has a peak memory.

The watchdog samples the kernel's process tree every 0.1 s; a step that ends before the
first sample recorded a peak of 0 (the run view then showed no peak memory, and the
right-sizing had nothing to size from). ``stop`` takes a last sample.
"""

from __future__ import annotations

from aiinfra_magics.pipelines import kernel_pool


def test_a_watchdog_stopped_before_its_first_tick_has_the_kernels_memory(tmp_path):
    km = kernel_pool.start_kernel("python3", str(tmp_path))
    try:
        watchdog = kernel_pool.Watchdog(km, timeout=60, memory=None)
        watchdog.start()
        watchdog.stop()  # at once: the loop may not have sampled yet
        watchdog.join(timeout=30)
        # A Python kernel's tree holds at least a few MiB: a real reading, not the 0 it
        # started from.
        assert watchdog.peak_rss > 4 * 2**20
        assert watchdog.cpu_seconds >= 0.0
    finally:
        kernel_pool.shutdown(km)
