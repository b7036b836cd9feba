"""The embedded run's workers (local_pool.LocalPool): threads that answer as a Dask client."""

from __future__ import annotations

import threading

import pytest

from aiinfra_magics.pipelines import local_pool
from aiinfra_magics.pipelines.local_pool import LocalPool, LocalWorker, current_worker


def test_workers_are_described_as_a_threaded_localcluster_describes_its_own():
    from distributed import Client, LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        dashboard_address="127.0.0.1:0",
        scheduler_kwargs={"dashboard": False},
    ) as cluster, Client(cluster, set_as_default=False) as client:  # fmt: skip
        dask_workers = client.scheduler_info(n_workers=-1)["workers"].values()
        from distributed.system import MEMORY_LIMIT

    pool = LocalPool(2)
    try:
        ours = pool.scheduler_info(n_workers=-1)["workers"].values()
        for field in ("nthreads", "memory_limit", "resources"):
            assert [w[field] for w in ours] == [w[field] for w in dask_workers], field
        assert sorted(w["name"] for w in ours) == ["0", "1"]
        assert local_pool.memory_limit() == MEMORY_LIMIT
    finally:
        pool.close()


def test_tasks_run_on_every_worker_at_once_and_know_which_worker_they_are_on():
    pool = LocalPool(2)
    both_in = threading.Barrier(2, timeout=60)  # only two workers at once can pass it

    def task(label: str) -> tuple[str, str]:
        both_in.wait()
        return label, current_worker().address

    try:
        futures = [pool.submit(task, label, key=label) for label in ("a", "b")]
        results = dict(f.result(timeout=60) for f in futures)
        assert set(results.values()) == set(pool.scheduler_info()["workers"])
        assert {f.status for f in futures} == {"finished"} and futures[0].key == "a"
    finally:
        pool.close()
    with pytest.raises(ValueError):
        current_worker()  # this thread is no worker


def test_a_task_that_raises_reads_as_an_error_and_the_worker_goes_on():
    pool = LocalPool(1)
    try:
        bad = pool.submit(lambda: 1 / 0)
        good = pool.submit(lambda: "fine")
        assert good.result(timeout=60) == "fine"
        assert bad.status == "error" and isinstance(bad.exception(), ZeroDivisionError)
    finally:
        pool.close()


def test_events_reach_subscribers_until_they_unsubscribe():
    pool = LocalPool(1)
    seen: list = []
    try:
        pool.subscribe_topic("t", seen.append)
        pool.submit(lambda: current_worker().log_event("t", {"n": 1})).result(timeout=60)
        pool.unsubscribe_topic("t")
        pool.submit(lambda: current_worker().log_event("t", {"n": 2})).result(timeout=60)
    finally:
        pool.close()
    assert [msg for _, msg in seen] == [{"n": 1}]
    assert isinstance(seen[0][0], float)  # (time, msg), as Dask hands its handlers


def test_close_cancels_what_is_queued_lets_the_running_task_end_and_refuses_more():
    pool = LocalPool(1)
    release = threading.Event()
    started = threading.Event()

    def hold() -> str:
        started.set()
        release.wait(60)
        return "ended"

    running = pool.submit(hold)
    queued = pool.submit(lambda: "never")
    assert started.wait(60)
    pool.close(timeout=0.0)  # no wait: the running task is still held
    assert queued.cancelled() and queued.status == "cancelled"
    assert not running.done()
    release.set()
    assert running.result(timeout=60) == "ended"
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(lambda: None)


def test_run_calls_once_for_the_workers_that_share_this_process(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)  # no GPU given to this process
    pool = LocalPool(2)
    calls: list = []
    try:
        answer = pool.run(lambda x: calls.append(x) or len(calls), "topic")
    finally:
        pool.close()
    assert calls == ["topic"] and list(answer.values()) == [1]
    assert isinstance(pool.workers[0], LocalWorker) and not pool.workers[0].reports_gpu
