"""``cluster ...`` words for the magic and the CLI; each action is one core call."""

from __future__ import annotations

import argparse
from typing import Any

from ..clusters import manager
from ..clusters.backends import backend_names
from ..clusters.spec import ClusterSpec
from ..errors import AiinfraError
from .words import Context, add_subcommands


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    cluster = subparsers.add_parser("cluster", help="start and control Dask clusters")
    actions = add_subcommands(cluster, "action")

    p = actions.add_parser("start", help="start a cluster (or attach to a scheduler)")
    p.add_argument("name", nargs="?", help="registry name (default: the backend's name)")
    p.add_argument("--backend", default="auto", help=f"auto | {' | '.join(backend_names())}")
    p.add_argument("--workers", help="number of workers (cuda: at most one per GPU)")
    p.add_argument("--threads", help="threads per worker")
    p.add_argument("--memory", help="memory limit per worker, e.g. 4GB, 0.5 or auto")
    p.add_argument("--gpus", help="cuda: all | N | 0,2 (indices or UUIDs; one index: '1,')")
    p.add_argument("--rmm-pool", dest="rmm_pool", help="cuda: RMM pool size per worker, e.g. 20GB")
    p.add_argument(
        "--device-memory-limit", dest="device_memory_limit", help="cuda: spill threshold"
    )
    p.add_argument("--protocol", help="cuda: tcp | ucx")
    p.add_argument("--adapt", help="adaptive scaling MIN:MAX")
    p.add_argument("--address", help="address backend: scheduler URL, e.g. tcp://host:8786")
    p.add_argument("--client-var", default="client", help="magic: variable to bind the Client to")
    p.add_argument("--force", action="store_true", help="cuda: allow GPUs this kernel's JAX uses")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=_start)

    p = actions.add_parser("list", help="list registered clusters")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=lambda a, c: _out(manager.list_clusters(), a))

    p = actions.add_parser("status", help="one cluster in detail")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=lambda a, c: _out(manager.status(a.name), a))

    p = actions.add_parser("scale", help="set the number of workers (ends adaptivity)")
    p.add_argument("name")
    p.add_argument("n")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=lambda a, c: _out(manager.scale(a.name, _count("n", a.n, 0)), a))

    p = actions.add_parser("adapt", help="scale between MIN and MAX workers with the load")
    p.add_argument("name")
    p.add_argument("minimum", metavar="MIN")
    p.add_argument("maximum", metavar="MAX")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_adapt)

    p = actions.add_parser("stop", help="stop a cluster, or all with --all")
    p.add_argument("name", nargs="?")
    p.add_argument("--all", action="store_true", dest="all_")
    p.set_defaults(run=_stop)

    p = actions.add_parser("connect", help="bind a Client to a registered cluster")
    p.add_argument("name")
    p.add_argument("--client-var", default="client")
    p.set_defaults(run=_connect)

    p = actions.add_parser("dashboard", help="the cluster's Dask dashboard link")
    p.add_argument("name")
    p.set_defaults(run=_dashboard)


def _count(field: str, value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise AiinfraError(f"{field}: got {value!r}; allowed: an integer >= {minimum}", field=field)
    return number


def _out(result: Any, args: argparse.Namespace) -> Any:
    return result.to_dict() if getattr(args, "json", False) else result


def _start(args: argparse.Namespace, ctx: Context) -> Any:
    options = {
        key: getattr(args, key)
        for key in ("name", "backend", "workers", "threads", "memory", "gpus", "rmm_pool",
                    "device_memory_limit", "protocol", "adapt", "address")
    }  # fmt: skip
    spec = ClusterSpec.from_options(options)
    if ctx.door == "magic":
        if not args.client_var.isidentifier():
            raise AiinfraError(f"client-var: got {args.client_var!r}; allowed: a Python identifier")
        info, notes = manager.start(spec, owner_kind="kernel", force=args.force)
        for note in notes:
            ctx.say(note)
        ctx.namespace[args.client_var] = manager.connect(info.name)
        ctx.say(f"cluster {info.name!r} running; Client bound to `{args.client_var}`")
    else:
        info, notes = manager.start_detached(spec, owner_kind="cli")
        for note in notes:
            ctx.say(note)
        ctx.say(
            f"cluster {info.name!r} running in the background; stop it with: aiinfra cluster stop {info.name}"
        )
    return _out(info, args)


def _adapt(args: argparse.Namespace, ctx: Context) -> Any:
    lo = _count("adapt", args.minimum, 0)
    hi = _count("adapt", args.maximum, 1)
    return _out(manager.adapt(args.name, lo, hi), args)


def _stop(args: argparse.Namespace, ctx: Context) -> None:
    if args.all_ and args.name:
        raise AiinfraError("stop: give a NAME or --all, not both")
    if args.all_:
        notes = manager.stop_all()
        ctx.say("\n".join(notes) if notes else "no clusters to stop")
        return None
    if not args.name:
        raise AiinfraError("name: required (or --all)", field="name")
    ctx.say(manager.stop(args.name))
    return None


def _connect(args: argparse.Namespace, ctx: Context) -> Any:
    if ctx.door != "magic":
        info = manager.status(args.name)
        return f"from Python: from distributed import Client; client = Client({info.scheduler_address!r})"
    if not args.client_var.isidentifier():
        raise AiinfraError(f"client-var: got {args.client_var!r}; allowed: a Python identifier")
    ctx.namespace[args.client_var] = manager.connect(args.name)
    ctx.say(f"Client for cluster {args.name!r} bound to `{args.client_var}`")
    return manager.status(args.name)


def _dashboard(args: argparse.Namespace, ctx: Context) -> Any:
    link = manager.dashboard(args.name)
    if ctx.door == "magic":
        from IPython.display import HTML

        return HTML(f'<a href="{link}" target="_blank">Dask dashboard of {args.name}: {link}</a>')
    return link
