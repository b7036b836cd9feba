"""A long registry lists in about one round of probes (issue 14 item 1), or none.

Records whose living owner publishes their state are shown from the record: no probe,
no scheduler call (issue 24 aim 5). The rest: each distinct scheduler address is probed
once and each scheduler asked for its identity once, all concurrently, however many
records point at it; dead records are removed in one pass. Counted, not timed (timings
are in benchmarks/listing.py and benchmarks/lab.py).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from aiinfra_magics.clusters import registry as registry_module
from aiinfra_magics.clusters import rpc
from aiinfra_magics.clusters.manager import ClusterManager
from aiinfra_magics.clusters.registry import Registry, this_process
from aiinfra_magics.clusters.spec import ClusterSpec

RECORDS = 40


@pytest.fixture
def counted(monkeypatch):
    """Count the probes and identity calls the listing makes (the real ones still run)."""
    calls = {"probe": [], "identity": []}
    probe, identities = rpc.tcp_reachable, rpc.observe_many  # identity and cost, one connection

    def counting_probe(address, *args, **kwargs):
        calls["probe"].append(address)
        return probe(address, *args, **kwargs)

    def counting_identities(addresses, *args, **kwargs):
        calls["identity"].extend(addresses)
        return identities(addresses, *args, **kwargs)

    monkeypatch.setattr(registry_module, "tcp_reachable", counting_probe)
    monkeypatch.setattr(
        "aiinfra_magics.clusters.manager.observe_many", counting_identities, raising=False
    )
    return calls


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_published_records_cost_no_probe_and_no_scheduler_call(aiinfra_home, counted):
    manager = ClusterManager()
    manager.start(
        ClusterSpec.from_options({"name": "real", "backend": "local", "workers": 1, "threads": 1})
    )
    try:
        record = manager.registry.read("real")
        for i in range(RECORDS - 1):
            manager.registry.write({**record, "name": f"copy{i}"})
        counted["probe"].clear()
        listed = manager.list_clusters().to_dict()
        assert len(listed) == RECORDS
        assert {c["workers"] for c in listed} == {1} and {c["status"] for c in listed} == {
            "running"
        }
        # This process owns them and published lately: nothing is asked of the scheduler.
        assert counted["probe"] == [] and counted["identity"] == []
    finally:
        for i in range(RECORDS - 1):
            manager.registry.remove(f"copy{i}")
        manager.stop("real")


def test_unpublished_records_of_one_scheduler_cost_one_probe_and_one_identity(
    aiinfra_home, counted
):
    manager = ClusterManager()
    manager.start(
        ClusterSpec.from_options({"name": "real", "backend": "local", "workers": 1, "threads": 1})
    )
    try:
        record = manager.registry.read("real")
        # Registered as external schedulers (`--backend address`): nobody here publishes them.
        external = {k: v for k, v in record.items() if k != "observed"}
        external["owner"] = {**record["owner"], "kind": "external"}
        for i in range(RECORDS):
            manager.registry.write({**external, "name": f"ext{i}", "backend": "address"})
        counted["probe"].clear()
        listed = [c for c in manager.list_clusters().to_dict() if c["name"].startswith("ext")]
        assert len(listed) == RECORDS
        assert {c["workers"] for c in listed} == {1} and {c["status"] for c in listed} == {
            "running"
        }
        assert counted["probe"] == [record["scheduler_address"]]
        assert counted["identity"] == [record["scheduler_address"]]
    finally:
        for i in range(RECORDS):
            manager.registry.remove(f"ext{i}")
        manager.stop("real")


def test_dead_records_are_probed_once_each_and_removed_in_one_pass(aiinfra_home, counted):
    registry = Registry()
    me = {**this_process(), "kind": "kernel"}
    addresses = set()
    for i in range(RECORDS):
        address = f"tcp://127.0.0.1:{_closed_port()}"
        addresses.add(address)
        registry.write(
            {"name": f"dead{i}", "backend": "local", "status": "running", "owner": me,
             "created": time.time(), "scheduler_address": address}
        )  # fmt: skip
    assert ClusterManager(registry).list_clusters().to_dict() == []
    assert registry.names() == []
    assert sorted(counted["probe"]) == sorted(addresses)  # no second probe under the lock
    assert counted["identity"] == []


#: What an empty listing must not load: the core lists records, it does not need Dask for none.
HEAVY = ("distributed", "dask", "tornado", "papermill", "nbformat", "jsonschema", "pyarrow")


def test_an_empty_registry_lists_without_importing_dask(aiinfra_home):
    # A fresh process: this test process has long imported everything.
    code = (
        "import sys\n"
        "from aiinfra_magics.clusters.manager import ClusterManager\n"
        "listed = ClusterManager().list_clusters()\n"
        "assert listed.to_dict() == [], listed\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr
