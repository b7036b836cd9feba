"""The dask-gateway client as aiinfra uses it: auth, connections, the gateway's own cluster
options, scaling that a gateway limit may cap, and a handle that any process can control.

``gateway.py`` builds the backend on these; ``gateway_store.py`` (registered gateways and
discovery) and the ``gateway`` words use them directly.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from ..errors import AiinfraError, OperationError, field_error
from . import history
from .gateway_store import AUTH_ALIASES, AUTH_CHOICES
from .rpc import observe

# dask-gateway's warning when a request passes the gateway's per-cluster limit.
CAP_PATTERN = re.compile(r"exceed resource limit of (\d+) workers")


def forget(obj: Any) -> None:
    """Close a dask_gateway ``Gateway`` (or ``GatewayCluster``'s) for good.

    dask-gateway 2026.3's ``Gateway.__del__`` closes a second time and raises on
    the stopped loop; raised inside garbage collection, that can land anywhere.
    Dropping the loop runner after our close makes ``__del__`` a no-op.
    """
    if hasattr(obj, "_loop_runner") or hasattr(obj, "gateway"):
        with contextlib.suppress(Exception):
            obj.close()  # a GatewayCluster closes its own Gateway here
    inner = getattr(obj, "gateway", None)
    if inner is not None and inner is not obj:
        forget(inner)
    with contextlib.suppress(AttributeError):
        del obj._loop_runner


def make_auth(kind: str | None) -> Any:
    """A dask-gateway auth object; its kwargs come from dask's ``gateway.auth.kwargs``."""
    import dask.config
    from dask_gateway.auth import BasicAuth, JupyterHubAuth, get_auth

    if kind is None:
        return get_auth()  # dask config's gateway.auth.type, as the plain client does
    kind = AUTH_ALIASES.get(kind, kind)
    if kind not in AUTH_CHOICES:
        raise field_error("gateway-auth", kind, " | ".join(AUTH_CHOICES))
    kwargs = dict(dask.config.get("gateway.auth.kwargs", None) or {})
    if kind == "basic":
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
        "gateway_auth": AUTH_ALIASES.get(kind, kind)
        if kind in (*AUTH_CHOICES, *AUTH_ALIASES)
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

    # What the owner's watcher (idle.py) asks: figures kept fresh, and whether it ended.
    last_figures: dict[str, Any] | None = None
    idle_timeout: float | None = None

    def aiinfra_figures(self, ended_at: float | None = None) -> dict[str, Any] | None:
        """The cost report now; after the end, the last one carried on to ``ended_at``."""

        if ended_at is None:
            with contextlib.suppress(OSError, TimeoutError):
                _, figures = observe(self.scheduler_address, 5.0, self.connection_args())
                if figures is not None:
                    self.last_figures = figures
            return self.last_figures
        return history.carried_to(self.last_figures, ended_at)

    def aiinfra_ended(self) -> tuple[str, float] | None:
        """(why, when) once the gateway no longer runs this cluster; None while it does."""
        report = self.cluster.gateway.get_cluster(self.name)
        if report.status.name in ("PENDING", "RUNNING"):
            return None
        when = report.stop_time.timestamp() if report.stop_time else time.time()
        figures = self.last_figures or {}
        idle_since = figures.get("idle_since")
        if self.idle_timeout and idle_since and when - idle_since >= 0.9 * self.idle_timeout:
            return f"idle for {self.idle_timeout:g}s (idle timeout)", when
        return f"ended on the gateway ({report.status.name.lower()})", when


def scheduler_reports(report: Any, timeout: float = 5.0) -> tuple[dict | None, dict | None]:
    """(identity, cost) of a gateway cluster's scheduler, through the gateway's TLS proxy.

    A cluster started without aiinfra gets the cost plugin on first sight (counted from then).
    """
    from . import cost  # late: imports distributed

    if report.scheduler_address is None or report.security is None:
        return None, None
    args = report.security.get_connection_args("client")
    try:
        identity, figures = observe(report.scheduler_address, timeout, args)
    except (OSError, TimeoutError):
        return None, None
    if figures is None:
        with contextlib.suppress(OSError, TimeoutError):
            cost.install_remote(report.scheduler_address, args)
    return identity, figures


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
