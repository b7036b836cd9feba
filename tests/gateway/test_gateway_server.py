"""The gateway fixture itself: a plain dask-gateway client can use it, and it stops cleanly."""

from __future__ import annotations

import psutil
from gateway_server import forget, start_gateway


def test_plain_client_cluster_computes(gateway):
    gw = gateway.client()
    try:
        options = gw.cluster_options()
        assert options.worker_cores == 1
        cluster = gw.new_cluster(options)
        try:
            cluster.scale(1)
            with cluster.get_client(set_as_default=False) as client:
                assert client.submit(sum, [1, 2, 3]).result(timeout=120) == 6
        finally:
            cluster.shutdown()
            forget(cluster)
        assert gw.list_clusters() == []
    finally:
        forget(gw)


def test_stop_leaves_nothing_running(tmp_path):
    server = start_gateway(tmp_path / "gw")
    try:
        gw = server.client()
        cluster = gw.new_cluster()  # left running on purpose: stopping the server must end it
        cluster.scale(1)
        with cluster.get_client(set_as_default=False) as client:
            client.wait_for_workers(1, timeout=120)
        tree = psutil.Process(server.process.pid).children(recursive=True)
        assert len(tree) >= 3  # proxy, scheduler, worker
        listening = [
            c.laddr
            for p in [psutil.Process(server.process.pid), *tree]
            for c in p.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
        assert listening and {addr.ip for addr in listening} == {"127.0.0.1"}, listening
        cluster.close(shutdown=False)
        forget(cluster)
        forget(gw)
    finally:
        server.stop()
    _, alive = psutil.wait_procs(tree, timeout=30)
    assert alive == []
