"""The cost plugin counts what a real cluster's workers used, checked against the scheduler's
own worker join/leave events (not against sleeps or the test's clock)."""

from __future__ import annotations

import pytest
from distributed import Client, LocalCluster
from waiting import wait_for

from aiinfra_magics.clusters import cost, history
from aiinfra_magics.clusters.rpc import scheduler_call

MEMORY = 256 * 2**20
THREADS = 2


def worker_seconds_from_events(client: Client) -> float:
    """Sum over workers of (left - joined), from the scheduler's "all" event topic."""
    joined: dict[str, float] = {}
    total = 0.0
    for stamp, msg in client.get_events("all"):
        if msg.get("action") == "add-worker":
            joined[msg["worker"]] = stamp
        elif msg.get("action") == "remove-worker" and msg["worker"] in joined:
            total += stamp - joined.pop(msg["worker"])
    assert not joined, f"workers still in: {joined}"
    return total


@pytest.fixture
def costed_cluster():
    cluster = LocalCluster(
        n_workers=0,
        threads_per_worker=THREADS,
        memory_limit=MEMORY,
        processes=True,
        dashboard_address=":0",
        host="127.0.0.1",
        resources={"GPU": 1},  # the one mocked part: a GPU resource per worker
        scheduler_kwargs={"plugins": [cost.CostPlugin()]},
    )
    client = Client(cluster, set_as_default=False)
    yield cluster, client
    client.close()
    cluster.close()


def test_two_workers_for_a_known_time(costed_cluster):
    cluster, client = costed_cluster
    address = cluster.scheduler_address
    cluster.scale(2)
    client.wait_for_workers(2, timeout=120)
    assert client.submit(sum, [1, 2]).result() == 3
    # Let them run until the plugin itself reports 6 s of worker time (about 3 s of wall time).
    wait_for(
        lambda: scheduler_call(address, cost.COST_OP)["worker_hours"] * 3600 >= 6,
        what="6 worker-seconds",
    )
    live = scheduler_call(address, cost.COST_OP)  # any process can ask, over the scheduler's comm
    assert live["now"] == {
        "workers": 2,
        "cores": 2 * THREADS,
        "gpus": 2.0,
        "memory_gb": 2 * MEMORY / 1e9,
    }
    cluster.scale(0)
    wait_for(lambda: not cluster.scheduler.workers, what="workers to leave")

    report = scheduler_call(address, cost.COST_OP)
    expected = worker_seconds_from_events(client)
    assert expected >= 6
    worker_seconds = report["worker_hours"] * 3600
    assert abs(worker_seconds - expected) < 1.0, (worker_seconds, expected)
    assert report["core_hours"] == pytest.approx(report["worker_hours"] * THREADS)
    assert report["gpu_hours"] == pytest.approx(report["worker_hours"])
    assert report["memory_gb_hours"] == pytest.approx(report["worker_hours"] * MEMORY / 1e9)
    # Nothing runs now: the figures stay put.
    assert scheduler_call(address, cost.COST_OP)["worker_hours"] == report["worker_hours"]


def test_close_ends_open_stints_and_says_why():
    plugin = cost.CostPlugin()
    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        host="127.0.0.1",
        scheduler_kwargs={"plugins": [plugin]},
    ) as cluster:
        wait_for(lambda: plugin.report()["now"]["workers"] == 1, what="one worker")
        assert plugin.report()["ended"] is None
        assert cluster.scheduler.handlers[cost.COST_OP] == plugin.report
    report = plugin.report()
    assert report["ended"] is not None and report["now"]["workers"] == 0
    assert report["end_reason"] == "closed"
    assert report["worker_hours"] > 0
    assert plugin.report()["worker_hours"] == report["worker_hours"]  # frozen after the end


def test_installed_through_a_client_counts_workers_already_there():
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
            host="127.0.0.1",
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):  # fmt: skip
        client.wait_for_workers(2, timeout=120)
        cost.install(client)
        cost.install(client)  # idempotent: one plugin, not two
        report = scheduler_call(cluster.scheduler_address, cost.COST_OP)
        assert report["now"]["workers"] == 2 and report["now"]["gpus"] == 0
        assert list(cluster.scheduler.plugins).count(cost.PLUGIN_NAME) == 1


def test_history_is_private_and_survives_a_torn_line(tmp_path):
    history.append_history({"name": "a", "worker_hours": 1.5}, tmp_path)
    with open(history.history_path(tmp_path), "a") as handle:
        handle.write('{"name": "cut')  # a crash mid-write
    history.append_history({"name": "b", "worker_hours": 0.5}, tmp_path)
    assert [e["name"] for e in history.read_history(tmp_path)] == ["a", "b"]
    assert history.history_path(tmp_path).stat().st_mode & 0o777 == 0o600
