"""Waiting on conditions, never on the clock: the one helper every test shares."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 120.0,
    what: str = "condition",
    interval: float = 0.1,
) -> T:
    """Return the first truthy value of ``predicate()``; fail after ``timeout`` seconds.

    Deadlines are generous on purpose: they only bound a failure on a loaded machine.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s")
