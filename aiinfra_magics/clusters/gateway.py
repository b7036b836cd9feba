"""``gateway``: clusters from a Dask Gateway (Kubernetes, YARN, HPC or local behind it).

Everything goes through the dask-gateway client: the gateway's own cluster
options (``--option KEY=VALUE``, ``--list-options``), scale, adapt and shutdown.
Any process can control a gateway cluster through the gateway's API, so the
owner's scheduler handler is not needed here; the scheduler itself is reached
through the gateway's TLS proxy for identity and cost figures.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from ..errors import AiinfraError, OperationError, field_error
from . import cost
from .gateway_store import AUTH_CHOICES

# dask-gateway's warning when a request passes the gateway's per-cluster limit.
CAP_PATTERN = re.compile(r"exceed resource limit of (\d+) workers")


def forget(obj: Any) -> None:
    """Close a dask_gateway ``Gateway`` (or ``GatewayCluster``'s) for good.

    dask-gateway 2026.3's ``Gateway.__del__`` closes a second time and raises on
    the stopped loop; raised inside garbage collection, that can land anywhere.
    Dropping the loop runner after our close makes ``__del__`` a no-op.
    """
    inner = getattr(obj, "gateway", None)
    if inner is not None and inner is not obj:
        forget(inner)
    if hasattr(obj, "_loop_runner"):
        with contextlib.suppress(Exception):
            obj.close()
        with contextlib.suppress(AttributeError):
            del obj._loop_runner


def make_auth(kind: str | None) -> Any:
    """A dask-gateway auth object; its kwargs come from dask's ``gateway.auth.kwargs``."""
    import dask.config
    from dask_gateway.auth import BasicAuth, JupyterHubAuth, get_auth

    if kind is None:
        return get_auth()  # dask config's gateway.auth.type, as the plain client does
    if kind not in AUTH_CHOICES:
        raise field_error("gateway-auth", kind, " | ".join(AUTH_CHOICES))
    kwargs = dict(dask.config.get("gateway.auth.kwargs", None) or {})
    if kind == "simple":
        return BasicAuth(username=kwargs.get("username"), password=kwargs.get("password"))
    if kind == "jupyterhub":
        token = os.environ.get("JUPYTERHUB_API_TOKEN")
        if not token:
            raise AiinfraError(
                "gateway-auth: jupyterhub needs JUPYTERHUB_API_TOKEN in the environment",
                field="gateway_auth",
            )
        return JupyterHubAuth(api_token=token)
    try:
        return get_auth("kerberos")
    except ImportError:
        raise AiinfraError(
            "gateway-auth: kerberos needs the pykerberos package (pip install pykerberos)",
            field="gateway_auth",
        ) from None


def defaults() -> dict[str, Any]:
    """Address, proxy and auth from dask's ``gateway`` config (what the plain client uses)."""
    import dask.config

    with contextlib.suppress(ImportError):
        import dask_gateway  # noqa: F401 - loads gateway.yaml into dask's config
    kind = dask.config.get("gateway.auth.type", None)
    return {
        "gateway_address": dask.config.get("gateway.address", None),
        "proxy_address": dask.config.get("gateway.proxy-address", None),
        "gateway_auth": {"basic": "simple"}.get(kind, kind)
        if kind in (*AUTH_CHOICES, "basic")
        else None,
    }


def connection(options: dict[str, Any]) -> dict[str, Any]:
    """Gateway address, proxy and auth kind for ``spec.options``, with dask-config defaults."""
    base = defaults()
    out = {key: options.get(key) or base[key] for key in base}
    if not out["gateway_address"]:
        raise AiinfraError(
            "gateway-address: required (or set gateway.address in dask's config)",
            field="gateway_address",
        )
    return out


@contextlib.contextmanager
def opened(
    address: str, proxy_address: str | None = None, auth: str | None = None
) -> Iterator[Any]:
    """A dask_gateway ``Gateway`` client, closed for good afterwards."""
    from dask_gateway import Gateway

    gateway = Gateway(address, proxy_address=proxy_address, auth=make_auth(auth))
    try:
        yield gateway
    except OSError as exc:  # aiohttp's connection errors are OSErrors
        raise OperationError(f"gateway {address}: unreachable ({exc})") from None
    finally:
        forget(gateway)


# --- the gateway's own cluster options --------------------------------------------------


def options_table(options: Any) -> list[dict[str, Any]]:
    """One row per option the gateway offers: name, label, type, default, allowed values."""
    rows = []
    for name, field in options._fields.items():
        kind = type(field).__name__.lower()
        if hasattr(field, "options"):
            allowed = " | ".join(str(o) for o in field.options)
        elif getattr(field, "min", None) is not None or getattr(field, "max", None) is not None:
            lo = "" if field.min is None else f"{field.min:g}"
            hi = "" if field.max is None else f"{field.max:g}"
            allowed = f"{lo}..{hi}"
        else:
            allowed = {"bool": "true | false", "mapping": "a JSON/YAML mapping"}.get(kind, "any")
        rows.append({
            "name": name, "label": field.label, "type": kind,
            "default": field.get(), "allowed": allowed,
        })  # fmt: skip
    return rows


def _convert(field: Any, text: str) -> Any:
    kind = type(field).__name__
    if kind == "Integer":
        return int(text)
    if kind == "Float":
        return float(text)
    if kind == "Bool":
        lowered = text.strip().lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"{text!r} is not true/false")
        return lowered in ("true", "1", "yes")
    if kind == "Mapping":
        import yaml

        return yaml.safe_load(text)
    return text


def apply_options(options: Any, pairs: list[str]) -> None:
    """Set ``KEY=VALUE`` pairs on the gateway's ``Options``; one-line errors name the key."""
    offered = ", ".join(options._fields) or "none"
    for pair in pairs:
        key, sep, value = str(pair).partition("=")
        key = key.strip()
        if not sep or not key:
            raise field_error("option", pair, "KEY=VALUE")
        field = options._fields.get(key)
        if field is None:
            raise AiinfraError(
                f"option: this gateway has no option {key!r}; offered: {offered}", field="option"
            )
        try:
            field.set(_convert(field, value))
        except (TypeError, ValueError) as exc:
            allowed = next(r["allowed"] for r in options_table(options) if r["name"] == key)
            raise AiinfraError(
                f"option: {key}={value!r} refused ({exc}); allowed: {allowed}", field="option"
            ) from None


# --- scaling, capped or not --------------------------------------------------------------


def capped(call: Any, *args: Any, **kwargs: Any) -> str | None:
    """Run a scale/adapt call; return the gateway's message when its limit capped the request."""
    from dask_gateway.client import GatewayWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GatewayWarning)
        call(*args, **kwargs)
    for item in caught:
        if issubclass(item.category, GatewayWarning):
            return f"capped by the gateway: {item.message}"
    return None


def cap_of(note: str | None) -> int | None:
    match = CAP_PATTERN.search(note or "")
    return int(match.group(1)) if match else None


def cluster_id(scheduler_address: str) -> str:
    """The gateway's cluster name is the path of its ``gateway://proxy/NAME`` address."""
    return urlsplit(scheduler_address).path.strip("/")


class GatewayHandle:
    """A ``GatewayCluster`` with the Cluster methods host.py calls (close takes ``timeout``)."""

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster
        self.name = cluster.name
        self.scheduler_address = cluster.scheduler_address
        self.dashboard_link = cluster.dashboard_link
        self.notes: list[str] = []

    def scale(self, n: int) -> None:
        note = capped(self.cluster.scale, n)
        if note:
            self.notes.append(note)

    def adapt(self, minimum: int = 0, maximum: int | None = None, **_: Any) -> None:
        note = capped(self.cluster.adapt, minimum=minimum, maximum=maximum)
        if note:
            self.notes.append(note)

    def close(self, timeout: float | None = None) -> None:
        try:
            self.cluster.shutdown()
        finally:
            forget(self.cluster)

    def connection_args(self) -> dict[str, Any]:
        return self.cluster.security.get_connection_args("client")


def scheduler_reports(report: Any, timeout: float = 5.0) -> tuple[dict | None, dict | None]:
    """(identity, cost) of a gateway cluster's scheduler, through the gateway's TLS proxy."""
    from .rpc import scheduler_call

    if report.scheduler_address is None or report.security is None:
        return None, None
    args = report.security.get_connection_args("client")
    try:
        identity = scheduler_call(
            report.scheduler_address, "identity", timeout=timeout, connection_args=args
        )
    except (OSError, TimeoutError):
        return None, None
    figures = None
    with contextlib.suppress(OSError, TimeoutError):
        figures = scheduler_call(
            report.scheduler_address, cost.COST_OP, timeout=timeout, connection_args=args
        )
    if not isinstance(figures, dict):  # started without aiinfra: count from now on
        with contextlib.suppress(OSError, TimeoutError):
            cost.install_remote(report.scheduler_address, args)
    return identity, figures if isinstance(figures, dict) else None


# --- discovery: the user's clusters on registered gateways --------------------------------


def discovered_name(gateway_name: str, cluster_name: str) -> str:
    return f"{gateway_name}-{cluster_name[:8]}"


def discover(known_ids: set[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Records for clusters on registered gateways that our registry does not hold.

    Returns (records, notes); a gateway that does not answer gives a note, not an error.
    Each record carries ``identity`` and ``cost`` read live through the gateway's proxy.
    """
    from . import gateway_store

    records, notes = [], []
    for entry in gateway_store.entries():
        try:
            with opened(entry["address"], entry["proxy_address"], entry["auth"]) as gw:
                reports = gw.list_clusters()
        except (AiinfraError, OperationError, OSError) as exc:
            notes.append(f"gateway {entry['name']}: {exc}")
            continue
        for report in reports:
            if report.name in known_ids:
                continue
            identity, figures = scheduler_reports(report, timeout=3)
            records.append({
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
            })  # fmt: skip
    return records, notes


def find_discovered(name: str) -> tuple[dict[str, Any], str] | None:
    """(registered gateway entry, gateway cluster name) for a discovered cluster's name."""
    from . import gateway_store

    for entry in gateway_store.entries():
        prefix = f"{entry['name']}-"
        if not name.startswith(prefix):
            continue
        short = name[len(prefix) :]
        with opened(entry["address"], entry["proxy_address"], entry["auth"]) as gw:
            for report in gw.list_clusters():
                if report.name.startswith(short):
                    return entry, report.name
    return None


def control(entry: dict[str, Any], cluster: str, action: str, **kwargs: Any) -> str | None:
    """Scale, adapt or stop a gateway cluster from any process; return the cap note if any."""
    with opened(entry["address"], entry.get("proxy_address"), entry.get("auth")) as gw:
        if action == "scale":
            return capped(gw.scale_cluster, cluster, int(kwargs["n"]))
        if action == "adapt":
            return capped(
                gw.adapt_cluster, cluster, minimum=kwargs["minimum"], maximum=kwargs["maximum"]
            )
        if action == "stop":
            gw.stop_cluster(cluster)
            return None
    raise ValueError(f"unknown action {action!r}")


def connect_client(entry: dict[str, Any], cluster: str) -> Any:
    """A distributed Client of a gateway cluster (leaves the cluster running when closed)."""
    from dask_gateway import GatewayCluster

    handle = GatewayCluster.from_name(
        cluster,
        address=entry["address"],
        proxy_address=entry.get("proxy_address"),
        auth=make_auth(entry.get("auth")),
        shutdown_on_close=False,
    )
    return handle.get_client(set_as_default=True)
