"""``gateway``: clusters from a Dask Gateway (Kubernetes, YARN, HPC or local behind it).

Everything goes through the dask-gateway client: the gateway's own cluster
options (``--option KEY=VALUE``, ``--list-options``), scale, adapt and shutdown.
Any process can control a gateway cluster through the gateway's API, so the
owner's scheduler handler is not needed here; the scheduler itself is reached
through the gateway's TLS proxy for identity and cost figures.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError, field_error
from .backends import ClusterBackend, Launched, Option
from .gateway_client import (
    GatewayHandle,
    apply_options,
    cluster_id,
    connection,
    control,
    defaults,
    opened,
    options_table,
    scheduler_reports,
)
from .gateway_store import AUTH_ALIASES, AUTH_CHOICES, check_address, check_proxy
from .spec import ClusterSpec

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
            "basic (user/password from dask config gateway.auth.kwargs), jupyterhub "
            "(JUPYTERHUB_API_TOKEN) or kerberos, as dask-gateway names them "
            "(default: gateway.auth.type)",
            choices=AUTH_CHOICES,
            aliases=AUTH_ALIASES,
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
            cost.install_remote(
                handle.scheduler_address, handle.connection_args(), plugin_idle, spec=spec
            )
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
