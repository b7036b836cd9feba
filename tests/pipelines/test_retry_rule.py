"""The retry rule (issue 25 item 15): only infrastructure failures run again, with backoff.

A step killed for outgrowing its memory is not retried, whatever ``retries`` says: the same
notebook on the same limit would be killed again, holding the worker meanwhile.
"""

from __future__ import annotations

import logging

import pytest

from aiinfra_magics.pipelines import kinds
from aiinfra_magics.pipelines.runner import run_pipeline


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


def test_a_step_out_of_memory_is_not_retried_even_with_retries(tmp_path, notebook, pipeline_file):
    from distributed import Client, LocalCluster

    notebook(
        tmp_path / "hog.ipynb",
        "upstream = {}\nproduct = []",
        # Grow past the limit, then hold the memory: the watchdog sees it whenever it samples.
        "import time\nblocks = [b'x' * (50 * 2**20) for _ in range(16)]\ntime.sleep(3600)",
    )
    path = pipeline_file(tmp_path, {"steps": {"hog": {"notebook": "hog.ipynb", "retries": 1}}})
    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            memory_limit="600MiB",
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as small,
    ):
        run = run_pipeline(path, client=small)
    step = run.steps["hog"]
    assert step["status"] == "failed" and step["kind"] == kinds.OUT_OF_MEMORY
    assert "dead kernel: out of memory" in step["error"]
    assert step["attempts"] == 1 and len(step["failures"]) == 1
