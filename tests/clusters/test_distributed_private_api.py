"""The private distributed name aiinfra relies on (issue 25 item 13): distributed offers no
public way to list a process's Clients, so ``host._close_clients`` reads
``distributed.client._global_clients``. These tests fail loudly, naming it, on the
distributed release that removes or changes it."""

from __future__ import annotations

from collections.abc import MutableMapping

from distributed import Client, LocalCluster

from aiinfra_magics.clusters import host


def test_distributed_private_global_clients_still_exists():
    import distributed.client

    found = getattr(distributed.client, "_global_clients", None)
    assert isinstance(found, MutableMapping), (
        "distributed.client._global_clients is gone or changed: "
        "aiinfra_magics/clusters/host.py _close_clients needs another way to find Clients"
    )


def test_close_clients_closes_this_process_client_of_that_cluster():
    with LocalCluster(
        n_workers=0, processes=False, protocol="tcp://", host="127.0.0.1", dashboard_address=None
    ) as cluster:
        client = Client(cluster, set_as_default=True)
        try:
            import distributed.client

            assert client in distributed.client._global_clients.values(), (
                "distributed.client._global_clients no longer holds the default Client: "
                "aiinfra_magics/clusters/host.py _close_clients finds nothing"
            )
            host._close_clients("tcp://127.0.0.1:1")  # another cluster's: left alone
            assert client.status == "running"
            host._close_clients(cluster.scheduler_address)
            assert client.status == "closed"
        finally:
            client.close()
