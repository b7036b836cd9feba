"""The retry rule (issue 25 item 15): only infrastructure failures run again, with backoff.

A step killed for outgrowing its memory is not retried, whatever ``retries`` says: the same
notebook on the same limit would be killed again, holding the worker meanwhile. A real
out-of-memory step with ``retries: 1`` is run by tests/pipelines/test_run.py.
"""

from __future__ import annotations

import pytest

from aiinfra_magics.pipelines import kinds


@pytest.mark.parametrize("kind", [kinds.DEAD_KERNEL, kinds.KERNEL_START, kinds.WORKER_LOST])
def test_infrastructure_failures_are_retried_up_to_retries(kind):
    assert kinds.retried(kind, attempts=1, retries=1)
    assert kinds.retried(kind, attempts=2, retries=2)
    assert not kinds.retried(kind, attempts=2, retries=1)  # the last allowed attempt failed
    assert not kinds.retried(kind, attempts=1, retries=0)


@pytest.mark.parametrize(
    "kind", [kinds.USER_ERROR, kinds.TIMEOUT, kinds.OUT_OF_MEMORY, kinds.NOT_SHARED, None]
)
def test_the_step_s_own_failures_are_never_retried(kind):
    assert not kinds.retried(kind, attempts=1, retries=3)


def test_backoff_doubles_from_half_a_second():
    assert [kinds.backoff(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
