"""Registered Dask Gateways (``aiinfra gateway add NAME URL``) and the clusters found on them.

A registered gateway is asked for the user's clusters by ``cluster list``, so
clusters started elsewhere (a script, another lab, yesterday) show up too. No
secret is stored here: credentials come from dask's ``gateway.auth`` config or
the environment (``JUPYTERHUB_API_TOKEN``), as for the plain dask-gateway client.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..checks import as_name, matches
from ..errors import InputError, NotFoundError, OperationError, field_error
from ..paths import aiinfra_home, atomic_write_json

AUTH_CHOICES = ("simple", "jupyterhub", "kerberos")
# Whole-string patterns (checks.matches: fullmatch), as `$` alone accepts a trailing newline.
URL_PATTERN = re.compile(r"https?://[A-Za-z0-9_.\-\[\]:]+(/[A-Za-z0-9_.~/%-]*)?")
PROXY_PATTERN = re.compile(r"(gateway://|tls://)?[A-Za-z0-9_.\-\[\]]+:\d{1,5}")


def store_path() -> Path:
    return aiinfra_home() / "gateways.json"


def check_address(field: str, value: Any) -> str:
    if not matches(URL_PATTERN, value):
        raise field_error(
            field, value, "an http(s) URL like https://hub.example.org/services/dask-gateway"
        )
    return value.rstrip("/")


def check_proxy(field: str, value: Any) -> str:
    if not matches(PROXY_PATTERN, value):
        raise field_error(field, value, "gateway://HOST:PORT (or HOST:PORT)")
    return value if value.startswith(("gateway://", "tls://")) else f"gateway://{value}"


def check_auth(field: str, value: Any) -> str:
    if value not in AUTH_CHOICES:
        raise field_error(field, value, " | ".join(AUTH_CHOICES))
    return value


def load() -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(store_path().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(data: dict[str, dict[str, Any]]) -> None:
    atomic_write_json(store_path(), data)  # 0600, never half-written


def add(
    name: str, address: str, proxy_address: str | None = None, auth: str = "simple"
) -> dict[str, Any]:
    as_name("name", name)
    entry = {
        "name": name,
        "address": check_address("url", address),
        "proxy_address": check_proxy("proxy-address", proxy_address) if proxy_address else None,
        "auth": check_auth("auth", auth),
    }
    data = load()
    data[name] = entry
    _save(data)
    return entry


def get(name: str) -> dict[str, Any]:
    data = load()
    if name not in data:
        raise NotFoundError(
            f"name: no gateway named {name!r}; registered: {', '.join(sorted(data)) or 'none'}",
            field="name",
        )
    return data[name]


def remove(name: str) -> None:
    data = load()
    get(name)
    data.pop(name)
    _save(data)


def entries() -> list[dict[str, Any]]:
    return [load()[k] for k in sorted(load())]


# --- discovery: the user's clusters on registered gateways --------------------------------


def discovered_name(gateway_name: str, cluster_name: str) -> str:
    return f"{gateway_name}-{cluster_name[:8]}"


def found_record(entry: dict[str, Any], report: Any) -> dict[str, Any]:
    """A registry-like record for a cluster found on gateway ``entry``, read live."""
    from . import gateway_client

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
    from . import gateway_client

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
    from . import gateway_client

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

    from . import gateway_client

    with gateway_client.opened(
        entry["address"], entry.get("proxy_address"), entry.get("auth")
    ) as gw:
        report = gw.get_cluster(cluster)
    if report.scheduler_address is None:
        raise OperationError(
            f"gateway cluster {cluster}: {report.status.name.lower()}, no scheduler"
        )
    return Client(report.scheduler_address, security=report.security, set_as_default=True)
