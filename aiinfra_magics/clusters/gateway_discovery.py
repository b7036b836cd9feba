"""The user's clusters on registered gateways: found, named and connected to.

Apart from the store (gateway_store: which gateways are registered) because it needs
the gateway client, which itself reads the store's auth names: one direction only.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError, OperationError
from . import gateway_client
from .gateway_store import entries


def discovered_name(gateway_name: str, cluster_name: str) -> str:
    return f"{gateway_name}-{cluster_name[:8]}"


def found_record(entry: dict[str, Any], report: Any) -> dict[str, Any]:
    """A registry-like record for a cluster found on gateway ``entry``, read live."""
    identity, figures = gateway_client.scheduler_reports(report, timeout=3)
    return {
        "name": discovered_name(entry["name"], report.name),
        "backend": "gateway",
        "status": "running" if report.status.name == "RUNNING" else report.status.name.lower(),
        "scheduler_address": report.scheduler_address,
        "dashboard_link": report.dashboard_link,
        "owner": {"kind": "gateway", "gateway": entry["name"], "cluster": report.name},
        "created": report.start_time.timestamp(),
        "gpus": [],
        "adapt": None,
        "identity": identity,
        "cost": figures,
    }


def discover(known_ids: set[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Records for clusters on registered gateways that our registry does not hold.

    Returns (records, notes); a gateway that does not answer gives a note, not an error.
    """
    records, notes = [], []
    for entry in entries():
        try:
            with gateway_client.opened(
                entry["address"], entry["proxy_address"], entry["auth"]
            ) as gw:
                reports = gw.list_clusters()
        except (InputError, OperationError, OSError) as exc:
            notes.append(f"gateway {entry['name']}: {exc}")
            continue
        records += [found_record(entry, r) for r in reports if r.name not in known_ids]
    return records, notes


def find(name: str) -> dict[str, Any] | None:
    """The record of a discovered cluster by its shown name (``GATEWAY-ID8``), or None."""
    for entry in entries():
        prefix = f"{entry['name']}-"
        if not name.startswith(prefix):
            continue
        with gateway_client.opened(entry["address"], entry["proxy_address"], entry["auth"]) as gw:
            for report in gw.list_clusters():
                if discovered_name(entry["name"], report.name) == name:
                    return found_record(entry, report)
    return None


def connect_client(entry: dict[str, Any], cluster: str) -> Any:
    """A distributed Client of a gateway cluster, through the gateway's TLS proxy."""
    from distributed import Client

    with gateway_client.opened(
        entry["address"], entry.get("proxy_address"), entry.get("auth")
    ) as gw:
        report = gw.get_cluster(cluster)
    if report.scheduler_address is None:
        raise OperationError(
            f"gateway cluster {cluster}: {report.status.name.lower()}, no scheduler"
        )
    return Client(report.scheduler_address, security=report.security, set_as_default=True)
