"""``GET aiinfra/api/clusters/{name}/plots``: what a registered cluster's dashboard serves.

The upstream is a real HTTP server on 127.0.0.1 registered as an ``address`` cluster's
dashboard; it answers as a scheduler whose one worker has a GPU (the one thing that
cannot exist here), and with paths a hostile dashboard might list. The real scheduler's
list is checked in the browser (tests/browser/test_dashboard_plots.py).
"""

from __future__ import annotations

import json
import time

import pytest
import tornado.web

from aiinfra_magics.clusters.registry import Registry, this_process
from aiinfra_magics.server.plots import gpu_workers, served_plots

PLOTS = {
    "Individual Task Stream": "/individual-task-stream",
    "Individual Gpu Memory": "/individual-gpu-memory",
    "Individual Cluster Map": "/statics/individual-cluster-map.html",
    "Escape": "/../../etc/passwd",
    "Elsewhere": "//evil.example/x",
    "Absolute": "http://evil.example/x",
    "Not a path": 3,
}
# What distributed's identity says of a worker on a GPU machine (add_gpu_metrics).
GPU_WORKER = {"metrics": {"cpu": 1.0, "gpu": {"utilization": 3, "memory-used": 1}}, "gpu": {}}
CPU_WORKER = {"metrics": {"cpu": 1.0, "memory": 1}}


class _Dashboard(tornado.web.RequestHandler):
    def get(self, path: str) -> None:
        if path == "individual-plots.json":
            self.write(json.dumps(PLOTS))
        elif path == "json/identity.json":
            self.write(json.dumps({"workers": {"tcp://a": GPU_WORKER, "tcp://b": CPU_WORKER}}))
        else:
            self.send_error(404)


@pytest.fixture
def dashboard(jp_asyncio_loop):
    # Listen on the loop the server's requests run on (``run``): listening outside it put
    # the socket on whichever loop was current, which another test may have left behind
    # (seen under Python 3.12: the request hung 20 s, then the connection was reset).
    async def listen():
        return tornado.web.Application([(r"/(.*)", _Dashboard)]).listen(0, "127.0.0.1")

    server = jp_asyncio_loop.run_until_complete(listen())
    port = next(iter(server._sockets.values())).getsockname()[1]
    Registry().write(
        {
            "name": "gpu1",
            "backend": "address",
            "status": "running",
            "owner": {**this_process(), "kind": "external"},
            "created": time.time(),
            "scheduler_address": f"tcp://127.0.0.1:{port}",
            "dashboard_link": f"http://127.0.0.1:{port}/status",
            "gpus": [],
        }
    )
    yield port
    server.stop()


def test_the_plots_a_registered_dashboard_serves_and_its_gpu_workers(run, api, dashboard):
    code, body = run(api("GET", "clusters", "gpu1", "plots"))
    assert code == 200, body
    assert body == {
        "name": "gpu1",
        "plots": {
            "Individual Task Stream": "/individual-task-stream",
            "Individual Gpu Memory": "/individual-gpu-memory",
            "Individual Cluster Map": "/statics/individual-cluster-map.html",
        },
        "workers": 2,
        "gpu_workers": 1,
    }


def test_unregistered_names_and_dead_dashboards_are_refused(run, api, dashboard):
    code, body = run(api("GET", "clusters", "nope", "plots"))
    assert code == 404 and "nope" in body["message"], body
    # Its scheduler answers, its dashboard does not (nothing listens on port 9).
    Registry().write(
        {**Registry().read("gpu1"), "name": "gone", "dashboard_link": "http://127.0.0.1:9/status"}
    )
    code, body = run(api("GET", "clusters", "gone", "plots"))
    assert code == 502 and "did not list its plots" in body["message"], body


def test_a_worker_counts_as_gpu_only_with_distributed_s_gpu_entries():
    assert gpu_workers({"workers": {"a": CPU_WORKER, "b": CPU_WORKER}}) == (2, 0)
    assert gpu_workers(
        {"workers": {"a": GPU_WORKER, "b": {"metrics": {"gpu_utilization": 5}}}}
    ) == (2, 2)
    assert gpu_workers({"workers": {}}) == (0, 0)  # an adaptive cluster at zero workers
    assert gpu_workers(["not", "identity"]) == (0, 0)
    assert served_plots(["not", "a", "dict"]) == {}
