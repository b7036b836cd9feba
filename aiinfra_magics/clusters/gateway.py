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
import time
import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from ..errors import AiinfraError, InputError, OperationError, field_error
from . import history
from .backends import ClusterBackend, Launched, Option
from .gateway_store import AUTH_CHOICES, check_address, check_proxy
from .rpc import observe
from .spec import ClusterSpec

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


# --- the backend ----------------------------------------------------------------------------


def _check_pairs(pairs: tuple[str, ...]) -> tuple[str, ...]:
    for pair in pairs:
        key, sep, _ = pair.partition("=")
        if not sep or not key.strip():
            raise field_error("option", pair, "KEY=VALUE (see --list-options)")
    return pairs


class GatewayBackend(ClusterBackend):
    name = "gateway"
    description = "a cluster from a Dask Gateway (its Kubernetes, YARN, HPC or local backend)"
    options = (
        Option(
            "gateway_address",
            "the gateway's URL (default: dask config gateway.address)",
            check=lambda v: check_address("gateway-address", v),
        ),
        Option(
            "proxy_address",
            "the gateway's scheduler proxy gateway://HOST:PORT (default: gateway.proxy-address)",
            check=lambda v: check_proxy("proxy-address", v),
        ),
        Option(
            "gateway_auth",
            "simple (user/password from dask config gateway.auth.kwargs), jupyterhub "
            "(JUPYTERHUB_API_TOKEN) or kerberos (default: gateway.auth.type)",
            choices=AUTH_CHOICES,
        ),
        Option(
            "option",
            "one of the gateway's own cluster options, KEY=VALUE (repeat the flag)",
            type="list",
            check=_check_pairs,
            metavar="KEY=VALUE",
        ),
        Option(
            "list_options",
            "show what this gateway offers (defaults, allowed values) and start nothing",
            type="boolean",
            default=False,
        ),
    )

    def unavailable(self) -> str | None:
        import importlib.util

        if importlib.util.find_spec("dask_gateway") is None:
            return "dask-gateway is not installed (pip install 'aiinfra[gateway]')"
        return None

    def validate(self, spec: ClusterSpec) -> None:
        for key, offered in (("threads", "worker_cores"), ("memory", "worker_memory")):
            if getattr(spec, key) is not None:
                raise InputError(
                    f"{key}: the gateway sizes workers with its own options; use e.g. "
                    f"--option {offered}=... (see --list-options)",
                    field=key,
                )

    def check(self, spec: ClusterSpec) -> None:
        super().check(spec)
        connection(spec.options)

    def describe(self) -> dict[str, Any]:
        described = super().describe()
        if self.unavailable() is None:  # show the defaults dask's config gives here
            found = defaults()
            for option in described["options"]:
                if found.get(option["name"]) is not None:
                    option["default"] = found[option["name"]]
        return described

    def dry_run(self, spec: ClusterSpec) -> str | None:
        """``--list-options``: what this gateway offers, with defaults and allowed values."""
        if not spec.option("list_options"):
            return None
        conn = connection(spec.options)
        with opened(conn["gateway_address"], conn["proxy_address"], conn["gateway_auth"]) as gw:
            rows = options_table(gw.cluster_options())
        if not rows:
            return "this gateway offers no options"
        columns = ("name", "type", "default", "allowed", "label")
        cells = [list(columns), *([str(r[c]) for c in columns] for r in rows)]
        widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
        return "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells
        )

    def launch(self, spec: ClusterSpec, *, death_timeout: float) -> Launched:
        from . import cost  # late: imports distributed

        if spec.option("list_options"):
            raise InputError(
                "list-options: lists the gateway's options and starts nothing; leave it out to start",
                field="list_options",
            )
        conn = connection(spec.options)
        notes: list[str] = []
        with opened(conn["gateway_address"], conn["proxy_address"], conn["gateway_auth"]) as gw:
            options = gw.cluster_options()
            apply_options(options, list(spec.option("option") or ()))
            plugin_idle = None
            if spec.idle_timeout and "idle_timeout" in options._fields:
                apply_options(options, [f"idle_timeout={spec.idle_timeout:g}"])
            elif spec.idle_timeout:
                plugin_idle = spec.idle_timeout
                notes.append(
                    "idle-timeout: this gateway offers no idle_timeout option; "
                    "the scheduler's own idle check will stop the cluster"
                )
            cluster = gw.new_cluster(options, shutdown_on_close=True)
        handle = GatewayHandle(cluster)
        handle.idle_timeout = spec.idle_timeout
        try:
            cost.install_remote(handle.scheduler_address, handle.connection_args(), plugin_idle)
            if spec.workers:
                handle.scale(spec.workers)
        except BaseException:
            handle.close()
            raise
        return Launched(
            handle.scheduler_address,
            handle.dashboard_link,
            cluster=handle,
            notes=[*notes, *handle.notes],
        )

    def control(self, record: dict[str, Any], action: str, **kwargs: Any) -> str | None:
        """Scale, adapt, stop through the gateway's API (any process); the cap note if capped."""
        return control(*where(record), action, **kwargs)

    def observe(self, record: dict[str, Any], timeout: float) -> tuple[dict | None, dict | None]:
        entry, name = where(record)
        with opened(entry["address"], entry["proxy_address"], entry["auth"]) as gw:
            report = gw.get_cluster(name)
        return scheduler_reports(report, timeout)


def where(record: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(gateway entry, gateway cluster name) of a record: ours (from its spec) or discovered."""
    owner = record.get("owner") or {}
    if owner.get("kind") == "gateway":
        from .gateway_store import get

        return get(owner["gateway"]), owner["cluster"]
    conn = connection(record.get("spec") or {})
    entry = {
        "address": conn["gateway_address"],
        "proxy_address": conn["proxy_address"],
        "auth": conn["gateway_auth"],
    }
    return entry, cluster_id(record["scheduler_address"])
