"""``cluster ...`` words for the magic and the CLI; each action is one core call.

The flags of ``cluster start`` are generated from the backends' declared options
(one argument group per backend), so a backend plugin's options appear here,
in ``-h``, in REST and in the sidebar without any change to this module.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..checks import as_int
from ..clusters.backends import (
    ClusterBackend,
    Option,
    backend_names,
    get_backend,
    loadable_backends,
)
from ..clusters.info import dashboard_html, proxied_dashboard
from ..clusters.manager import ClusterManager, connect_address
from ..clusters.spec import COMMON_FIELDS, ClusterSpec
from ..errors import InputError
from .words import Context, WordsParser, add_subcommands

COMMON_HELP = {
    "workers": "number of workers",
    "threads": "threads per worker",
    "memory": "memory limit per worker, e.g. 4GB, 0.5 (a share of the machine) or auto",
    "adapt": "adaptive scaling MIN:MAX",
    "idle_timeout": "stop the cluster after this long with no work, e.g. 30m",
    "max_workers": "refuse to scale or adapt beyond this many workers",
    "max_gpu_hours": "stop the cluster once it has used this many GPU-hours",
    "waste_threshold": "GPU utilisation in %% under which held GPUs count as wasted [10]",
    "waste_window": "warn once held GPUs stay under the threshold this long, e.g. 15m [15m]",
    "env_check": "on|off: compare the scheduler's and workers' packages with this "
    "process's at start and connect [on]",
}


def add_cluster(cluster: WordsParser) -> None:
    """Fill ``cluster``: one action per core call; ``start``'s backend flags come late."""
    actions = add_subcommands(cluster, "action")

    p = actions.add_parser("start", help="start a cluster (or attach to a scheduler)")
    # Backend plugins are found through entry points and their modules imported: only
    # `cluster start` pays for that, not `cluster list`.
    p.defer(_add_start_options)
    p.set_defaults(run=_start)

    p = actions.add_parser("list", help="list registered clusters")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_list)

    p = actions.add_parser("status", help="one cluster in detail")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=lambda a, c: _out(ClusterManager().status(a.name), a))

    p = actions.add_parser("scale", help="set the number of workers (ends adaptivity)")
    p.add_argument("name")
    p.add_argument("n")
    p.add_argument("--json", action="store_true")
    p.set_defaults(
        run=lambda a, c: _out(ClusterManager().scale(a.name, as_int("n", a.n, minimum=0)), a)
    )

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

    p = actions.add_parser("history", help="ended clusters: why they ended, what they used")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_history)

    p = actions.add_parser("dashboard", help="the cluster's Dask dashboard link")
    p.add_argument("name")
    p.set_defaults(run=_dashboard)


def _add_start_options(p: WordsParser) -> None:
    p.add_argument("name", nargs="?", help="registry name (default: the backend's name)")
    p.add_argument("--backend", default="auto", help=f"auto | {' | '.join(backend_names())}")
    for key, text in COMMON_HELP.items():
        p.add_argument(_flag(key), dest=key, help=text)
    p.add_argument(
        "--stop-when-wasteful",
        dest="stop_when_wasteful",
        action="store_true",
        default=None,
        help="stop the cluster (as an idle timeout would) once the waste warning holds",
    )
    p.add_argument("--client-var", default="client", help="magic: variable to bind the Client to")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_backend_options(p, loadable_backends())


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_backend_options(
    parser: argparse.ArgumentParser, backends: list[type[ClusterBackend]]
) -> None:
    """One argument group per backend with the options it declares (shared ones once)."""
    owners: dict[str, list[str]] = {}
    for backend in backends:
        for option in backend.options:
            owners.setdefault(option.name, []).append(backend.name)
    placed: set[str] = set()
    for backend in backends:
        group = parser.add_argument_group(f"{backend.name} backend", backend.description or None)
        for option in backend.options:
            if option.name in placed or option.name in COMMON_FIELDS:
                continue
            placed.add(option.name)
            _add_option(group, option, owners[option.name])


def _add_option(group: Any, option: Option, owners: list[str]) -> None:
    shared = f" ({', '.join(owners)})" if len(owners) > 1 else ""
    default = f" [default: {option.default}]" if option.default not in (None, False) else ""
    text = f"{option.help}{shared}{default}".replace("%", "%%")
    if option.type == "boolean":
        group.add_argument(
            option.flag, dest=option.name, action="store_true", default=None, help=text
        )
    elif option.type == "list":
        group.add_argument(
            option.flag,
            dest=option.name,
            action="append",
            metavar=option.metavar or "VALUE",
            help=text,
        )
    else:
        choices = "|".join(option.choices) if option.choices else None
        group.add_argument(
            option.flag, dest=option.name, metavar=option.metavar or choices, help=text
        )


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """The flat option dict of a start command: what REST bodies hold too."""
    skip = {"command", "action", "run", "client_var", "json"}
    return {k: v for k, v in vars(args).items() if k not in skip and v is not None}


def _out(result: Any, args: argparse.Namespace) -> Any:
    return result.to_dict() if getattr(args, "json", False) else result


def _start(args: argparse.Namespace, ctx: Context) -> Any:
    spec = ClusterSpec.from_options(_options(args))
    if spec.backend != "auto":  # e.g. slurm --dry-run: show the job script, start nothing
        preview = get_backend(spec.backend).dry_run(spec.with_changes(name=spec.name or "NAME"))
        if preview is not None:
            ctx.show(preview)  # the result itself: stdout in the CLI
            return None
    manager = ClusterManager()
    if ctx.door == "magic":
        if not args.client_var.isidentifier():
            raise InputError(
                f"client-var: got {args.client_var!r}; allowed: a Python identifier",
                field="client_var",
            )
        started = manager.start(spec, owner_kind="kernel")
        _notes(started.notes, ctx)
        name = started.info.name
        ctx.namespace[args.client_var] = (
            manager.connect(name)  # through the gateway's TLS proxy
            if started.info.backend == "gateway"
            else connect_address(started.scheduler_address, name)
        )
        ctx.done(f"cluster {name!r} running; Client bound to `{args.client_var}`")
    else:
        started = manager.start_detached(spec, owner_kind="cli")
        _notes(started.notes, ctx)
        name = started.info.name
        ctx.done(
            f"cluster {name!r} running in the background; stop it with: aiinfra cluster stop {name}"
        )
    return _out(started.info, args)


def _notes(notes: list[str], ctx: Context) -> None:
    """Which backend ``auto`` chose is news, not a warning: once, on stdout with the outcome.
    Anything else (a real warning) stays on stderr."""
    for note in notes:
        (ctx.done if note.startswith("auto:") else ctx.say)(note)


def _list(args: argparse.Namespace, ctx: Context) -> Any:
    clusters = ClusterManager().list_clusters()
    if args.json:
        for problem in clusters.problems:
            ctx.say(problem)
        return clusters.to_dict()
    return clusters


def _adapt(args: argparse.Namespace, ctx: Context) -> Any:
    lo = as_int("adapt", args.minimum, minimum=0)
    hi = as_int("adapt", args.maximum, minimum=1)
    return _out(ClusterManager().adapt(args.name, lo, hi), args)


def _stop(args: argparse.Namespace, ctx: Context) -> None:
    if args.all_ and args.name:
        raise InputError("stop: give a NAME or --all, not both", field="name")
    manager = ClusterManager()
    if args.all_:
        notes = manager.stop_all()
        ctx.done("\n".join(notes) if notes else "no clusters to stop")
        return None
    if not args.name:
        raise InputError("name: required (or --all)", field="name")
    ctx.done(manager.stop(args.name))
    return None


def _connect(args: argparse.Namespace, ctx: Context) -> Any:
    manager = ClusterManager()
    if ctx.door != "magic":
        info = manager.status(args.name)
        return f"from Python: from distributed import Client; client = Client({info.scheduler_address!r})"
    if not args.client_var.isidentifier():
        raise InputError(
            f"client-var: got {args.client_var!r}; allowed: a Python identifier", field="client_var"
        )
    ctx.namespace[args.client_var] = manager.connect(args.name)
    for line in manager.env_drift:
        ctx.say(line)
    ctx.done(f"Client for cluster {args.name!r} bound to `{args.client_var}`")
    return manager.status(args.name)


def _history(args: argparse.Namespace, ctx: Context) -> Any:
    from .gateway import history_table

    return _out(history_table(), args)


def _dashboard(args: argparse.Namespace, ctx: Context) -> Any:
    link = ClusterManager().dashboard(args.name)
    if ctx.door == "magic":
        from IPython.display import HTML

        proxied = proxied_dashboard(args.name, link)
        return HTML(
            dashboard_html(args.name, link, f"Dask dashboard of {args.name}: {proxied or link}")
        )
    return link
