"""Endings a run must survive: SIGTERM (what a server shutdown sends) and SIGHUP.

Python's default for both is to die on the spot, leaving run.json saying
``running`` forever. While a run is in progress they raise RunTerminated instead,
so the runner's cleanup runs: kernels stopped, every step put in a final state.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CAUGHT = (signal.SIGTERM, signal.SIGHUP)


class RunTerminated(KeyboardInterrupt):
    """The run's process was asked to stop by a signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def terminate_raises() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into RunTerminated in this block (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        if not raised.is_set():  # once: a second signal must not break the cleanup
            raised.set()
            raise RunTerminated(signum)

    previous = {s: signal.signal(s, handler) for s in CAUGHT}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
