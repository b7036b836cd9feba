"""Cluster starts through the server are bounded, and reads never wait behind them.

A real jupyter server process with a backend installed as a third party would
(an ``aiinfra.backends`` entry point) whose check, run in each cluster daemon,
announces itself and then waits for a file the test creates. So starts are held
in flight exactly as long as the test wants, with no timing assumptions.
"""

from __future__ import annotations

import json
import os
import textwrap
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from waiting import wait_for

from aiinfra_magics.server.state import CORE_THREADS

# As many held starts as the pool that serves reads has threads: were starts run
# on that pool, no read could be answered while they are held.
LIMIT = CORE_THREADS
GATED_MODULE = textwrap.dedent(
    """
    import os, time
    from pathlib import Path

    from aiinfra_magics.clusters.local import LocalBackend
    from aiinfra_magics.errors import OperationError


    class GatedBackend(LocalBackend):
        name = "gated"
        description = "a test backend whose start waits for the test's go-ahead"

        def check(self, spec):
            gate = Path(os.environ["AIINFRA_TEST_GATE"])
            (gate / f"started-{spec.name}").write_text("")
            while not (gate / "release").exists():  # the test decides when starts end
                time.sleep(0.05)
            raise OperationError(f"cluster {spec.name!r}: released by the test")
    """
)


def _install(folder: Path) -> str:
    folder.mkdir(parents=True)
    (folder / "aiinfra_gated.py").write_text(GATED_MODULE)
    dist = folder / "aiinfra_gated-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: aiinfra-gated\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[aiinfra.backends]\ngated = aiinfra_gated:GatedBackend\n"
    )
    return os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)


def _request(
    server, method: str, path: str, body: dict | None = None, timeout: float = 600
) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        server.url + path, data=data, method=method,
        headers={"Authorization": f"token {server.token}", "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        # Held starts answer only once released: no client-side clock may end them first.
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def test_starts_beyond_the_bound_are_429_and_reads_answer_while_starts_are_held(
    tmp_path, monkeypatch, live_server_factory
):
    gate = tmp_path / "gate"
    gate.mkdir()
    config = tmp_path / "config"
    config.mkdir()
    (config / "jupyter_server_config.json").write_text(
        json.dumps({"AiinfraServerApp": {"max_cluster_starts": LIMIT}})
    )
    monkeypatch.setenv("PYTHONPATH", _install(tmp_path / "plugin"))
    monkeypatch.setenv("AIINFRA_TEST_GATE", str(gate))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config))
    server = live_server_factory()

    def start(name: str, timeout: float = 600) -> tuple[int, dict]:
        body = {"name": name, "backend": "gated", "workers": 1, "threads": 1}
        return _request(server, "POST", "aiinfra/api/clusters", body, timeout)

    pool = ThreadPoolExecutor(max_workers=LIMIT)
    try:
        held = [pool.submit(start, f"held{i}") for i in range(LIMIT)]
        # Both starts are in flight: each daemon has reached the gate.
        # A generous bound: a loaded 2-core machine starts daemons slowly.
        wait_for(
            lambda: len(list(gate.glob("started-*"))) == LIMIT or any(f.done() for f in held),
            300,
            f"{LIMIT} starts waiting at the gate",
        )
        assert not any(f.done() for f in held), [f.result() for f in held if f.done()]

        # One more, while the bound is reached (unbounded, it would wait at the gate:
        # the timeout turns that into a failure, it measures nothing).
        code, reply = start("extra", timeout=120)
        assert code == 429, reply
        assert f"at most {LIMIT}" in reply["message"] and "\n" not in reply["message"]
        assert not (gate / "started-extra").exists()  # refused before any daemon started

        # Reads answer while the starts are still held. On a pool shared with the starts
        # they could not (every thread is held): the timeout only turns that hang into
        # a failure instead of waiting forever; it measures nothing.
        code, reply = _request(server, "GET", "aiinfra/api/clusters/held0", timeout=120)
        assert code == 404, reply
        code, reply = _request(server, "GET", "aiinfra/api/pipelines/runs", timeout=120)
        assert code == 200 and reply["available"] is True
        code, reply = _request(server, "GET", "aiinfra/api/backends", timeout=120)
        assert code == 200
        assert not any(f.done() for f in held)
    finally:
        (gate / "release").write_text("")
        results = [f.result() for f in held]
        pool.shutdown()
    assert [code for code, _ in results] == [409] * LIMIT, results

    # Once they ended, a start is accepted again (it reaches the gate, which is open).
    code, reply = start("after")
    assert code == 409 and "released by the test" in reply["message"], reply
