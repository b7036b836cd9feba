"""What a cluster's owner publishes into its registry record, and how a listing reads it.

The owner (this test process here: a kernel, a CLI daemon or the server elsewhere) writes
the scheduler's figures into the record every few seconds and soon after its workers
change; `cluster list` shows them without asking the scheduler (issue 24 aim 5). An owner
gone quiet makes a cluster `unknown`, a dead one `lost`, never `running`. Every write to a
record is a read-modify-write under the registry's lock, so concurrent writers from other
processes lose nothing (issue 25 item 18). Real local clusters, real processes.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from waiting import wait_for

from aiinfra_magics.clusters import history, host
from aiinfra_magics.clusters.info import format_bytes, published_to_dict
from aiinfra_magics.clusters.local import LocalBackend
from aiinfra_magics.clusters.manager import ClusterManager
from aiinfra_magics.clusters.registry import HOSTNAME, STALE_AFTER_S, Registry
from aiinfra_magics.clusters.spec import ClusterSpec

ONE = {"backend": "local", "workers": 1, "threads": 1}


@pytest.fixture
def live():
    """A ClusterManager and a running 1-worker local cluster named ``live`` it owns."""
    manager = ClusterManager()
    manager.start(ClusterSpec.from_options({"name": "live", **ONE}))
    try:
        yield manager
    finally:
        manager.stop("live")


def _listed(manager: ClusterManager) -> dict[str, dict]:
    return {c["name"]: c for c in manager.list_clusters().to_dict()}


def test_the_owner_publishes_its_workers_as_they_change(live):
    record = live.registry.read("live")
    assert record["observed"]["answered"] is True and record["observed"]["workers"] == 1
    live.scale("live", 2)
    wait_for(
        lambda: live.registry.read("live")["observed"]["workers"] == 2, 60, "2 workers published"
    )
    shown, asked = _listed(live)["live"], live.status("live").to_dict()
    assert shown["status"] == "running" == asked["status"]
    for key in ("workers", "threads", "memory", "adapt", "scheduler_address", "dashboard_link"):
        assert shown[key] == asked[key], key
    assert shown["cost"]["workers_now"] == 2
    # The heartbeat goes on while nothing changes.
    seen = live.registry.read("live")["heartbeat"]
    wait_for(lambda: live.registry.read("live")["heartbeat"] > seen, 60, "a new heartbeat")


STATUS = (
    "from aiinfra_magics.clusters.manager import ClusterManager; ClusterManager().status('copy')"
)


def test_a_live_look_from_another_process_updates_what_the_listing_shows(live):
    record = live.registry.read("live")
    # A record no keeper rewrites, whose figures are behind the scheduler's: 0 workers.
    behind = {**record["observed"], "workers": 0, "threads": 0, "at": time.time() - 5}
    live.registry.write({**record, "name": "copy", "observed": behind})
    try:
        assert _listed(live)["copy"]["workers"] == 0
        subprocess.run([sys.executable, "-c", STATUS], check=True, timeout=120)
        refreshed = live.registry.read("copy")
        assert refreshed["observed"]["workers"] == 1 and refreshed["observed"]["at"] > behind["at"]
        assert refreshed["heartbeat"] == record["heartbeat"]  # the owner's alone
        assert _listed(live)["copy"]["workers"] == 1
    finally:
        live.registry.remove("copy")


def test_an_owner_gone_quiet_makes_the_cluster_unknown_never_running(live):
    record = live.registry.read("live")
    live.registry.write({**record, "name": "quiet", "heartbeat": time.time() - STALE_AFTER_S - 60})
    try:
        shown = _listed(live)["quiet"]
        assert shown["status"] == "unknown"
        assert "no word from its owner" in shown["notes"][0]
        # `cluster status` asks the scheduler itself, which answers.
        assert live.status("quiet").status == "running"
    finally:
        live.registry.remove("quiet")


def test_a_published_record_whose_owner_died_is_lost_and_said_so(live):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record = live.registry.read("live")
    owner = {"pid": dead.pid, "host": HOSTNAME, "kind": "cli", "started": time.time()}
    live.registry.write({**record, "name": "orphan", "owner": owner})  # heartbeat still fresh
    listing = live.list_clusters()
    assert [c.name for c in listing] == ["live"]
    assert any("'orphan': lost" in p and f"pid {dead.pid}" in p for p in listing.problems)
    assert live.registry.read("orphan") is None
    ended = [e for e in history.read_history() if e.get("name") == "orphan"]
    assert [e.get("reason") for e in ended] == ["lost"], ended


def test_published_figures_are_shown_as_published():
    now = time.time()
    record = {
        "name": "x", "backend": "slurm", "status": "running", "owner": {"pid": 1},
        "scheduler_address": "tcp://127.0.0.1:1", "adapt": "0:4", "heartbeat": now - 1,
        "observed": {"at": now - 5, "answered": True, "workers": 3, "threads": 6,
                     "memory": 3 * 2**30, "cost": None},
    }  # fmt: skip
    shown = published_to_dict(record, now)
    assert (shown["status"], shown["workers"], shown["threads"]) == ("running", 3, 6)
    assert shown["memory"] == 3 * 2**30 and shown["observed_at"] == now - 5
    silent = {**record, "observed": {**record["observed"], "answered": False}}
    assert published_to_dict(silent, now)["status"] == "unreachable"
    assert published_to_dict(record, now + STALE_AFTER_S + 1)["status"] == "unknown"
    starting = {**record, "status": "starting"}
    assert published_to_dict(starting, now + STALE_AFTER_S + 1)["status"] == "starting"


def test_format_bytes_writes_what_dask_writes():
    from dask.utils import format_bytes as dasks

    for n in (0, 1, 900, 1023, 1234, 12345678, 1234567890, 1234567890000, 2**50 * 3, 2**62):
        assert format_bytes(n) == dasks(n), n


# -- every registry write under the lock ---------------------------------------------------

UPDATE = "from aiinfra_magics.clusters.registry import Registry; Registry({root!r}).update({name!r}, stop_requested=12.5)"  # noqa: E501


class UpdatedWhileStarting(LocalBackend):
    """A real local cluster; while it starts, another process writes to its record."""

    def launch(self, spec, *, death_timeout):
        launched = super().launch(spec, death_timeout=death_timeout)
        code = UPDATE.format(root=str(Registry().root), name=spec.name)
        subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
        return launched


def test_an_update_from_another_process_during_a_start_is_kept(monkeypatch):
    monkeypatch.setattr(host, "get_backend", lambda name: UpdatedWhileStarting())
    manager = ClusterManager()
    manager.start(ClusterSpec.from_options({"name": "racing", **ONE}))
    try:
        record = manager.registry.read("racing")
        assert record["status"] == "running" and record["stop_requested"] == 12.5
        # ... and the owner's heartbeats keep it too.
        seen = record["heartbeat"]
        wait_for(lambda: manager.registry.read("racing")["heartbeat"] > seen, 60, "a heartbeat")
        assert manager.registry.read("racing")["stop_requested"] == 12.5
    finally:
        manager.stop("racing")


INCREMENTS = 150
INCREMENT = """
import sys
from aiinfra_magics.clusters.registry import Registry
registry = Registry(sys.argv[1])
for _ in range({n}):
    with registry.lock():  # another process's read-modify-write, as update() does
        record = registry.read("live")
        record["count"] = record.get("count", 0) + 1
        registry.write(record)
"""


def test_publishing_never_loses_another_processs_update(live):
    entry = host.hosted("live")
    stop = threading.Event()
    published = []

    def publish_fast() -> None:  # the keeper's write, far more often than every 2 s
        while not stop.is_set():
            host._publish(entry)
            published.append(1)

    thread = threading.Thread(target=publish_fast)
    thread.start()
    try:
        wait_for(lambda: published, 60, "a first publication")
        code = INCREMENT.format(n=INCREMENTS)
        subprocess.run(
            [sys.executable, "-c", code, str(live.registry.root)], check=True, timeout=300
        )
    finally:
        stop.set()
        thread.join(60)
    assert len(published) > 1
    assert live.registry.read("live")["count"] == INCREMENTS


def test_a_stopped_cluster_is_not_written_back():
    manager = ClusterManager()
    manager.start(ClusterSpec.from_options({"name": "brief", **ONE}))
    entry = host.hosted("brief")
    manager.stop("brief")
    host._publish(entry)  # a keeper tick that raced the stop
    assert manager.registry.read("brief") is None and manager.registry.names() == []
