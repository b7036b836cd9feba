"""Contracts of the registry and of cluster names, and adapt changing real worker counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from aiinfra_magics.clusters.registry import Registry
from aiinfra_magics.clusters.spec import ClusterSpec
from aiinfra_magics.errors import AiinfraError

# A record big enough that an in-place write takes many write() calls.
BIG = {"name": "big", "backend": "local", "status": "running", "notes": ["x" * 200] * 2000}


def until(condition, what: str, timeout: float = 120.0):
    """Poll ``condition`` until it returns a truthy value; generous deadline for a loaded machine."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_registry_write_replaces_the_file_never_rewrites_it(aiinfra_home):
    """Each write is a new file renamed into place: a reader holding the old file keeps a whole record."""
    registry = Registry()
    registry.write({**BIG, "version": 0})
    path = registry.path("big")
    for version in range(1, 6):
        before = os.stat(path).st_ino
        with open(path) as held:  # a reader that opened the record just before the write
            registry.write({**BIG, "version": version})
            assert json.loads(held.read())["version"] == version - 1
        assert os.stat(path).st_ino != before
        assert json.loads(path.read_text())["version"] == version
    assert not list(registry.root.glob(".tmp-*"))


WRITER_AUDITED = textwrap.dedent(
    """
    import json, sys
    from aiinfra_magics.clusters.registry import Registry
    reg = Registry()
    target = str(reg.path("big"))
    opened = []
    def hook(event, args):
        # Any open of the record itself for writing means an in-place write.
        if event == "open" and str(args[0]) == target and (args[1] or "r") != "r":
            opened.append(args[1])
        if event == "open" and str(args[0]) == target and isinstance(args[2], int) and args[2] & 3:
            opened.append(args[2])
    sys.addaudithook(hook)
    record = {"name": "big", "backend": "local", "notes": ["x" * 200] * 2000}
    for i in range(20):
        reg.write({**record, "version": i})
    print(json.dumps(opened))
    """
)


def test_registry_write_never_opens_the_record_for_writing(aiinfra_home):
    proc = subprocess.run(
        [sys.executable, "-c", WRITER_AUDITED],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
    assert json.loads(Registry().path("big").read_text())["version"] == 19


READER = textwrap.dedent(
    """
    import json, pathlib, sys
    path, ready, stop = map(pathlib.Path, sys.argv[1:4])
    reads = bad = 0
    while not stop.exists():
        try:
            text = path.read_text()
        except FileNotFoundError:
            bad += 1
            continue
        try:
            json.loads(text)
        except ValueError:
            bad += 1
        reads += 1
        if reads == 200:
            ready.write_text("1")
    print(json.dumps({"reads": reads, "bad": bad}))
    """
)


def test_concurrent_reader_never_sees_a_partial_record(aiinfra_home, tmp_path):
    registry = Registry()
    registry.write({**BIG, "version": -1})
    ready, stop = tmp_path / "ready", tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(registry.path("big")), str(ready), str(stop)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        version = 0
        # Keep rewriting until the reader has read 200 times while the writes went on.
        while not ready.exists() or version < 50:
            registry.write({**BIG, "version": version})
            version += 1
            assert reader.poll() is None
            assert version < 1_000_000
    finally:
        stop.write_text("1")
        out, _ = reader.communicate(timeout=120)
    seen = json.loads(out)
    assert seen["reads"] >= 200 and seen["bad"] == 0


@pytest.mark.parametrize(
    "name", ["ok\n", "a/b", "..", "../x", "a\0b", "a b", "", "/abs", "x" * 64, "A"]
)
def test_cluster_name_is_one_safe_file_name(name):
    with pytest.raises(AiinfraError) as err:
        ClusterSpec.from_options({"name": name})
    assert err.value.field == "name"


def test_safe_cluster_names_are_accepted():
    for name in ("a", "ok", "gpu-2", "my_cluster", "x" * 63):
        assert ClusterSpec.from_options({"name": name}).name == name


def _workers(client) -> int:
    return len(client.scheduler_info()["workers"])


def _blocker():
    """A task that waits for a file; nested so cloudpickle ships it by value to the workers."""

    def block_on(flag: str, index: int) -> int:
        import pathlib
        import time as _time

        while not pathlib.Path(flag).exists():
            _time.sleep(0.05)
        return index

    return block_on


def test_adapt_changes_the_number_of_workers(ip, tmp_path):
    """`cluster adapt` makes Dask add workers under load and retire them when idle."""
    ip.run_line_magic("aiinfra", "cluster start elastic --backend local --workers 1 --threads 1")
    client = ip.user_ns["client"]
    assert _workers(client) == 1
    ip.run_line_magic("aiinfra", "cluster adapt elastic 1 2")
    flag = str(tmp_path / "release")
    # Many queued tasks: Dask's adaptive target exceeds the maximum, so it asks for 2 workers.
    futures = [client.submit(_blocker(), flag, i, pure=False) for i in range(40)]
    until(lambda: _workers(client) == 2, "adapt to add a second worker")
    (tmp_path / "release").write_text("1")
    assert sorted(client.gather(futures)) == list(range(40))
    del futures  # results held in worker memory would keep a worker from retiring
    until(lambda: _workers(client) == 1, "adapt to retire the idle worker")


def test_start_with_adapt_follows_the_load(ip, tmp_path):
    info = ip.run_line_magic(
        "aiinfra", "cluster start lazy --backend local --threads 1 --adapt 0:2"
    )
    assert info.adapt == "0:2"
    client = ip.user_ns["client"]
    until(lambda: _workers(client) == 0, "adapt to the minimum of 0 workers")
    flag = str(tmp_path / "release")
    futures = [client.submit(_blocker(), flag, i, pure=False) for i in range(40)]
    until(lambda: _workers(client) == 2, "adapt to start workers for queued tasks")
    (tmp_path / "release").write_text("1")
    client.gather(futures)
    del futures  # results held in worker memory would keep a worker from retiring
    until(lambda: _workers(client) == 0, "adapt to retire every idle worker")
