"""REST latency of the aiinfra server extension against jupyter-server's own ``GET api/status``.

Starts a real ``jupyter server`` with the extension, registers N real local
clusters through ``POST aiinfra/api/clusters`` (one worker each), then times
``GET aiinfra/api/clusters``, ``GET aiinfra/api/devices`` and ``GET aiinfra/api/metrics/gpu``
interleaved with ``GET api/status`` over one keep-alive connection, so every
route sees the same machine load. Finally it measures the server's CPU use
with 5 clients polling the GPU metrics once a second, against the same server idle.

    python benchmarks/rest.py [--clusters 10] [--requests 400]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

TOKEN = "aiinfra-bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Client:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.headers = {"Authorization": f"token {TOKEN}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body)
        self.conn.request(method, "/" + path, body=data, headers=self.headers)
        resp = self.conn.getresponse()
        return resp.status, resp.read()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--poll-seconds", type=float, default=20.0)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="aiinfra-rest-bench-"))
    (tmp / "root").mkdir()
    port = free_port()
    env = {**os.environ, "AIINFRA_HOME": str(tmp / "home"), "JUPYTER_RUNTIME_DIR": str(tmp / "rt")}
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed at the end
    server = subprocess.Popen(
        [
            sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", "--ip=127.0.0.1",
            f"--port={port}", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={tmp / 'root'}",
            "--ServerApp.jpserver_extensions=aiinfra_magics=True", "--ServerApp.log_level=WARN",
        ],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                client = Client(port)
                client.call("GET", "api/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

        started = time.perf_counter()
        for i in range(args.clusters):
            code, body = client.call(
                "POST", "aiinfra/api/clusters",
                {"name": f"bench{i}", "backend": "local", "workers": 1, "threads": 1},
            )  # fmt: skip
            assert code == 201, body
        print(f"registered {args.clusters} clusters in {time.perf_counter() - started:.1f}s")
        code, body = client.call("GET", "aiinfra/api/clusters")
        listed = json.loads(body)["clusters"]
        assert len(listed) == args.clusters and all(c["workers"] == 1 for c in listed), listed

        routes = {
            "GET api/status (jupyter-server)": "api/status",
            "GET aiinfra/api/clusters": "aiinfra/api/clusters",
            "GET aiinfra/api/devices": "aiinfra/api/devices",
            "GET aiinfra/api/metrics/gpu": "aiinfra/api/metrics/gpu",
        }
        times: dict[str, list[float]] = {name: [] for name in routes}
        for path in routes.values():  # warm-up: first calls fill the caches
            client.call("GET", path)
        for _ in range(args.requests):
            for name, path in routes.items():
                t0 = time.perf_counter()
                code, _ = client.call("GET", path)
                times[name].append((time.perf_counter() - t0) * 1000)
                assert code == 200, (path, code)

        base = times["GET api/status (jupyter-server)"]
        print(
            f"\n{args.requests} requests per route, interleaved; {args.clusters} clusters registered"
        )
        print(f"{'route':<34} {'p50 ms':>8} {'p99 ms':>8} {'p99 / status':>13}")
        for name, values in times.items():
            print(
                f"{name:<34} {statistics.median(values):8.2f} {percentile(values, 99):8.2f} "
                f"{percentile(values, 99) / percentile(base, 99):13.2f}"
            )

        proc = psutil.Process(server.pid)

        def cpu_over(seconds: float) -> float:
            before = proc.cpu_times()
            time.sleep(seconds)
            after = proc.cpu_times()
            return 100 * ((after.user - before.user) + (after.system - before.system)) / seconds

        idle = cpu_over(args.poll_seconds)
        stop = threading.Event()

        def poller() -> None:
            own = Client(port)
            while not stop.is_set():
                own.call("GET", "aiinfra/api/metrics/gpu")
                stop.wait(1.0)

        threads = [threading.Thread(target=poller, daemon=True) for _ in range(5)]
        for t in threads:
            t.start()
        busy = cpu_over(args.poll_seconds)
        stop.set()
        for t in threads:
            t.join()
        code, body = client.call("GET", "aiinfra/api/metrics/gpu")
        sample = json.loads(body)
        print(
            f"\nserver CPU, {args.poll_seconds:g}s windows: idle {idle:.2f}% | 5 clients polling "
            f"metrics/gpu at 1 Hz {busy:.2f}% (GPUs sampled: {len(sample['gpus'])}; "
            f"reason: {sample['reason']})"
        )

        for i in range(args.clusters):
            client.call("DELETE", f"aiinfra/api/clusters/bench{i}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
