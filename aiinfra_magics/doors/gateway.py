"""``gateway add|list|remove|options``: register Dask Gateways whose clusters ``cluster list`` shows."""

from __future__ import annotations

import argparse
import html
from dataclasses import dataclass
from typing import Any

from ..clusters import gateway_client, gateway_store
from .words import Context, add_subcommands


@dataclass
class Table:
    """Rows of dicts shown as text, escaped HTML in notebooks, or JSON (``--json``)."""

    rows: list[dict[str, Any]]
    columns: tuple[str, ...]
    empty: str

    def to_dict(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.rows]

    def _cells(self) -> list[list[str]]:
        return [
            ["-" if r.get(c) is None else str(r.get(c)) for c in self.columns] for r in self.rows
        ]

    def __str__(self) -> str:
        if not self.rows:
            return self.empty
        cells = [list(self.columns), *self._cells()]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        return "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells
        )

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<em>{html.escape(self.empty)}</em>"
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>"
            for row in self._cells()
        )
        return f"<table class='aiinfra-table'><tr>{head}</tr>{body}</table>"


def add_gateway(parser: argparse.ArgumentParser) -> None:
    actions = add_subcommands(parser, "action")

    p = actions.add_parser("add", help="register a gateway under a name")
    p.add_argument("name")
    p.add_argument("url", help="the gateway's address, e.g. https://hub/services/dask-gateway")
    p.add_argument(
        "--proxy-address", dest="proxy_address", help="gateway://HOST:PORT if not the URL's"
    )
    p.add_argument("--auth", default="basic", help=" | ".join(gateway_store.AUTH_CHOICES))
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_add)

    p = actions.add_parser("list", help="registered gateways")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=lambda a, c: _out(_gateways(), a))

    p = actions.add_parser("remove", help="forget a gateway (its clusters keep running)")
    p.add_argument("name")
    p.set_defaults(run=_remove)

    p = actions.add_parser("options", help="the cluster options a registered gateway offers")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=lambda a, c: _out(options(gateway_store.get(a.name)), a))


def _out(result: Any, args: argparse.Namespace) -> Any:
    return result.to_dict() if getattr(args, "json", False) else result


def _gateways() -> Table:
    return Table(
        gateway_store.entries(),
        ("name", "address", "proxy_address", "auth"),
        "no gateways registered",
    )


def _add(args: argparse.Namespace, ctx: Context) -> Any:
    entry = gateway_store.add(args.name, args.url, args.proxy_address, args.auth)
    ctx.say(f"gateway {entry['name']!r} registered; its clusters appear in `cluster list`")
    return entry if args.json else None


def _remove(args: argparse.Namespace, ctx: Context) -> None:
    gateway_store.remove(args.name)
    ctx.say(f"gateway {args.name!r} removed; its clusters keep running there")


def options(connection: dict[str, Any]) -> Table:
    """What a gateway offers (``gateway options`` and ``cluster start --list-options``)."""
    address = connection.get("address") or connection.get("gateway_address")
    auth = connection.get("auth") or connection.get("gateway_auth")
    with gateway_client.opened(address, connection.get("proxy_address"), auth) as gw:
        rows = gateway_client.options_table(gw.cluster_options())
    return Table(
        rows, ("name", "type", "default", "allowed", "label"), "this gateway offers no options"
    )


def history_table() -> Table:
    """``cluster history``: ended clusters, newest last."""
    from ..clusters.history import read_history

    rows = []
    for item in read_history():
        used = item.get("cost") or {}
        rows.append({
            **item,
            "lived": f"{(item.get('ended') or 0) - (item.get('created') or 0):.0f}s",
            "worker_h": used.get("worker_hours"),
            "core_h": used.get("core_hours"),
            "gpu_h": used.get("gpu_hours"),
            "gb_h": used.get("memory_gb_hours"),
            "cpu_eff": _percent(used.get("cpu_efficiency")),
            "gpu_eff": _percent(used.get("gpu_efficiency")),
        })  # fmt: skip
    columns = (
        "name", "backend", "lived", "reason", "worker_h", "core_h", "gpu_h", "gb_h", "cpu_eff",
        "gpu_eff", "suggestion",
    )  # fmt: skip
    return Table(rows, columns, "no ended clusters recorded")


def _percent(value: float | None) -> str | None:
    """An efficiency (0-1) as ``42%``; None (not measured) stays empty."""
    return None if value is None else f"{value:.0%}"
