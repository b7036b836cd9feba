"""The registry record by record: liveness rules, damaged records, names, reserve, prune
(gaps found by mutation testing, see docs/testing.md). Liveness uses real processes and a
real listening socket on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from aiinfra_magics.clusters.registry import (
    HOSTNAME,
    MAX_RECORD_BYTES,
    DamagedRecord,
    Registry,
    check_record,
    owner_alive,
    record_alive,
    this_process,
)
from aiinfra_magics.errors import AiinfraError, InputError


@pytest.fixture
def listening():
    """``tcp://127.0.0.1:PORT`` of a socket that accepts connections."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"tcp://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def closed():
    """``tcp://127.0.0.1:PORT`` where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


@pytest.fixture
def dead_owner():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return {"pid": proc.pid, "host": HOSTNAME, "started": time.time()}


def test_check_record_says_why():
    assert check_record("a", {"name": "a", "owner": None}) == {"name": "a", "owner": None}
    for data, why in [
        ([1], "not a JSON object but a list"),
        ({"name": "b"}, "its name field is 'b', not 'a'"),
        ({"name": "a", "owner": "me"}, "owner is a str, not a dict"),
        ({"name": "a", "spec": []}, "spec is a list, not a dict"),
        ({"name": "a", "scheduler_address": 5}, "scheduler_address is a int, not a str"),
    ]:
        with pytest.raises(DamagedRecord) as info:
            check_record("a", data)
        assert str(info.value) == why


def test_owner_alive(dead_owner):
    me = this_process()
    assert me["pid"] > 0 and me["host"] == HOSTNAME
    assert owner_alive(me) is True
    assert owner_alive({**me, "started": None}) is True
    assert owner_alive({**me, "started": me["started"] + 5}) is False  # a recycled pid
    assert owner_alive({**me, "started": me["started"] + 1.5}) is False
    assert owner_alive({**me, "started": me["started"] + 0.5}) is True  # 1 s tolerance
    assert owner_alive(dead_owner) is False
    assert owner_alive({**me, "host": "elsewhere"}) is None
    assert owner_alive({**me, "pid": None}) is None
    assert owner_alive(None) is None and owner_alive({}) is None


def test_record_alive(listening, closed, dead_owner):
    me = this_process()
    assert record_alive({}) is False
    external = {"owner": {"kind": "external"}}
    assert record_alive({**external, "scheduler_address": listening}) is True
    assert record_alive({**external, "scheduler_address": closed}) is False
    assert record_alive({**external, "scheduler_address": "inproc://x"}) is True  # can't tell
    assert record_alive(external) is True  # nothing to probe: kept
    # An external scheduler outlives the process that registered it.
    gone = {**dead_owner, "kind": "external"}
    assert record_alive({"owner": gone, "scheduler_address": listening}) is True
    assert record_alive({"owner": gone, "scheduler_address": closed}) is False
    assert record_alive({"owner": dead_owner, "scheduler_address": listening}) is False
    starting = {"status": "starting", "scheduler_address": closed}
    assert record_alive({**starting, "owner": me}) is True
    far = {**me, "host": "elsewhere"}
    assert record_alive({**starting, "owner": far, "created": time.time()}) is True
    assert record_alive({**starting, "owner": far, "created": time.time() - 700}) is False
    assert record_alive({**starting, "owner": far}) is False  # no start time: old
    assert record_alive({"owner": me, "scheduler_address": listening}) is True
    assert record_alive({"owner": me, "scheduler_address": closed}) is False
    assert record_alive({"owner": me, "scheduler_address": "inproc://x"}) is True
    assert record_alive({"owner": far, "scheduler_address": "inproc://x"}) is True
    assert record_alive({"scheduler_address": listening}) is True
    assert record_alive({"owner": me}) is True  # no address yet: its owner lives
    assert record_alive({"owner": dead_owner}) is False


def test_write_load_and_damage(aiinfra_home):
    reg = Registry()
    assert reg.root == aiinfra_home / "clusters" and reg.path("a") == reg.root / "a.json"
    with pytest.raises(InputError):
        reg.path("../a")
    assert reg.load("a") is None and reg.read("a") is None
    reg.write({"name": "a", "owner": None})
    assert reg.load("a") == {"name": "a", "owner": None}
    for raw, why in [
        (b"{", "not valid JSON (JSONDecodeError)"),
        (b"\xff\xfe", "not valid JSON (UnicodeDecodeError)"),
        (b" " * (MAX_RECORD_BYTES + 1), f"larger than {MAX_RECORD_BYTES} bytes"),
        (json.dumps({"name": "x"}).encode(), "its name field is 'x', not 'a'"),
    ]:
        reg.path("a").write_bytes(raw)
        with pytest.raises(DamagedRecord) as info:
            reg.load("a")
        assert str(info.value) == why
        assert reg.read("a") is None
    reg.path("a").write_bytes(b" " * MAX_RECORD_BYTES + b"")  # exactly the limit: parsed
    with pytest.raises(DamagedRecord, match="not valid JSON"):
        reg.load("a")
    reg.path("a").unlink()
    reg.path("a").mkdir()  # unreadable as a file
    with pytest.raises(DamagedRecord, match="unreadable"):
        reg.load("a")
    reg.path("a").rmdir()


def test_names_scan_remove_update(aiinfra_home):
    reg = Registry(aiinfra_home / "other")
    assert reg.root == aiinfra_home / "other"
    reg.write({"name": "b"})
    reg.write({"name": "a"})
    (reg.root / "bad.json").write_text("[]")
    (reg.root / "not a name.json").write_text("{}")
    (reg.root / "c.txt").write_text("{}")
    assert reg.names() == ["a", "b", "bad"]
    records, damaged = reg.scan()
    assert records == [{"name": "a"}, {"name": "b"}]
    assert damaged == {"bad": "not a JSON object but a list"}
    assert reg.records() == records
    assert reg.update("a", status="running") == {"name": "a", "status": "running"}
    assert reg.load("a") == {"name": "a", "status": "running"}
    assert reg.update("missing", status="x") is None and reg.load("missing") is None
    reg.remove("b")
    reg.remove("b")  # already gone: fine
    assert reg.names() == ["a", "bad"]


def test_reserve_free_name_and_prune(aiinfra_home, listening, closed, dead_owner):
    reg = Registry()
    me = this_process()
    reg.reserve({"name": "a", "owner": me, "scheduler_address": listening})
    assert reg.load("a")["status"] == "starting"
    with pytest.raises(AiinfraError) as info:
        reg.reserve({"name": "a", "owner": me})
    assert info.value.field == "name" and str(info.value) == (
        "name: 'a' is already in use by a running cluster; choose another name or stop it first"
    )
    reg.write({"name": "dead", "owner": dead_owner, "scheduler_address": closed})
    reg.reserve({"name": "dead", "owner": me, "scheduler_address": listening})  # reclaimed
    assert reg.load("dead")["owner"] == me

    assert reg.free_name("new") == "new"
    assert reg.free_name("a") == "a-2"
    reg.write({"name": "a-2", "owner": me, "scheduler_address": listening})
    assert reg.free_name("a") == "a-3"
    reg.path("a-3").write_text("[]")  # damaged: its name is not free either
    assert reg.free_name("a") == "a-4"
    reg.write({"name": "gone", "owner": dead_owner, "scheduler_address": closed})
    assert reg.free_name("gone") == "gone"

    assert reg.prune() == ["gone"]
    assert sorted(reg.names()) == ["a", "a-2", "a-3", "dead"]
    assert reg.prune() == []
