"""Words: ``pipeline schedule add|list|pause|resume|remove|run|history`` and ``scheduler ...``.

Thin: parse, call the core in ``pipelines/schedules.py`` and ``pipelines/scheduler_service``,
return a result (a table or a line; JSON with ``--json``). Nothing heavy is imported
until a word runs.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from .run_control import RAW_HELP, add_param_options
from .words import Context, add_subcommands

SCHEDULE_HELP = "fire the pipeline (or one notebook) on a cron or an interval, with no one present"


class Lines(str):
    """A text result (the CLI prints it, the magic shows it as it is)."""

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


def add_schedule(parser: argparse.ArgumentParser) -> None:
    """``pipeline schedule ...`` (filled only when the parse reaches it)."""
    parser.defer(_fill_schedule)  # type: ignore[attr-defined]


def _fill_schedule(schedule: argparse.ArgumentParser) -> None:
    actions = add_subcommands(schedule, "schedule_action")
    add = actions.add_parser("add", help="add a schedule (starts the scheduler service)")
    add.add_argument("path", metavar="PATH", help="a pipeline.yaml, or one notebook (.ipynb)")
    add.add_argument("--name", required=True, help="the schedule's name")
    when = add.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", metavar="EXPR", help="a 5-field cron expression, e.g. '0 2 * * *'")
    when.add_argument("--every", metavar="DURATION", help="an interval: 90s, 30m, 2h, 1d")
    add.add_argument(
        "--tz", metavar="ZONE", help="the cron's time zone (default UTC), e.g. Europe/Berlin"
    )
    add_param_options(
        add,
        "a parameter, typed as papermill's -p types it (KEY or STEP.KEY)",
        sources={
            "raw": RAW_HELP,
            "yaml_params": "parameters as a YAML mapping",
            "param_files": "parameters from a YAML file (read at each run)",
        },
    )
    add.add_argument(
        "--cluster",
        metavar="NAME",
        help="a registered cluster (default: the run's own worker threads)",
    )
    add.add_argument(
        "--overlap",
        default="skip",
        metavar="skip|queue|allow",
        help="when the previous run is still going: skip (default), queue one, allow",
    )
    add.add_argument(
        "--notify",
        action="append",
        default=[],
        metavar="TARGET",
        help="webhook:URL or email:ADDRESS, told when a run ends (repeat)",
    )
    add.add_argument(
        "--force",
        action="store_true",
        help="run every step each time, ignoring the cache (always so for a notebook)",
    )
    add.add_argument("--json", action="store_true", help="print the schedule as JSON")
    add.set_defaults(run=_add)  # fmt: skip

    listing = actions.add_parser("list", help="every schedule: next run, last run, state")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=_list)

    for word, text in (
        ("pause", "stop firing (runs going on are left alone)"),
        ("resume", "fire again"),
        ("remove", "forget the schedule (its runs go on)"),
        ("run", "fire now (under the schedule's overlap rule)"),
    ):
        one = actions.add_parser(word, help=text)
        one.add_argument("name", metavar="NAME")
        one.add_argument("--json", action="store_true", help="print JSON")
        one.set_defaults(run=_one, word=word)

    history = actions.add_parser("history", help="the schedule's firings: started, skipped, missed")
    history.add_argument("name", metavar="NAME")
    history.add_argument("--limit", type=int, default=20, metavar="N")
    history.add_argument("--json", action="store_true", help="print JSON")
    history.set_defaults(run=_history)


def add_scheduler(parser: argparse.ArgumentParser) -> None:
    """``scheduler start|stop|status|install``."""
    actions = add_subcommands(parser, "scheduler_action")
    for word, text in (
        ("start", "start the scheduler service for this AIINFRA_HOME"),
        ("stop", "stop it (runs go on; it stays stopped until started)"),
        ("status", "is it running, which schedules, where it logs"),
    ):
        one = actions.add_parser(word, help=text)
        one.add_argument("--json", action="store_true", help="print JSON")
        one.set_defaults(run=_service, word=word)
    install = actions.add_parser("install", help="print a systemd user unit that runs it")
    install.add_argument("--write", action="store_true", help="write it to ~/.config/systemd/user/")
    install.set_defaults(run=_install)


def _add(args: argparse.Namespace, ctx: Context) -> Any:
    from ..pipelines import schedules

    options = {
        key: getattr(args, key)
        for key in ("path", "name", "cron", "tz", "every", "params", "raw", "yaml_params",
                    "param_files", "cluster", "overlap", "notify", "force")
    }  # fmt: skip
    shown = schedules.add(options)
    if args.json:
        return shown
    ctx.done(
        f"schedule {shown['name']!r} added ({_trigger(shown)}); next run {_local(shown['next_run'])}"
    )
    return None


def _list(args: argparse.Namespace, ctx: Context) -> Any:
    from ..pipelines import schedules

    shown = schedules.list_schedules()
    return shown if args.json else Lines(_table(shown))


def _one(args: argparse.Namespace, ctx: Context) -> Any:
    from ..pipelines import schedules

    action = {"pause": schedules.pause, "resume": schedules.resume,
              "remove": schedules.remove, "run": schedules.run_now}[args.word]  # fmt: skip
    shown = action(args.name)
    if args.json:
        return shown
    if args.word == "run" and shown["outcome"] == "queued":
        ctx.done(f"schedule {args.name!r}: {shown['reason']}")
    elif args.word == "run":
        ctx.done(f"schedule {args.name!r}: run started (pid {shown['pid']}, log {shown['log']})")
    elif args.word == "remove":
        ctx.done(f"schedule {args.name!r} removed")
    else:
        ctx.done(f"schedule {args.name!r} {args.word}d; next run {_local(shown['next_run'])}")
    return None


def _history(args: argparse.Namespace, ctx: Context) -> Any:
    from ..pipelines import schedules

    found = schedules.firings(args.name, limit=max(1, args.limit))
    if args.json:
        return found
    rows = [["AT", "OUTCOME", "RUN", "STATUS", "REASON"]]
    for f in found:
        count = f" x{f['count']}" if (f.get("count") or 1) > 1 else ""
        rows.append([_local(f["at"]), f["outcome"] + count, f.get("run_id") or "",
                     f.get("status") or "", f.get("reason") or ""])  # fmt: skip
    return Lines(_columns(rows))


def _service(args: argparse.Namespace, ctx: Context) -> Any:
    from ..paths import aiinfra_home
    from ..pipelines import scheduler_service

    home = aiinfra_home()
    if args.word == "start":
        info = scheduler_service.start(home)
    elif args.word == "stop":
        info = scheduler_service.stop(home)
    else:
        info = scheduler_service.status(home)
    if args.json:
        return info
    state = (
        f"running (pid {info['pid']}, since {_local(info['since'])})"
        if info["running"]
        else "not running"
    )
    lines = [f"scheduler: {state}; {info['schedules']} schedule(s), {info['paused']} paused; "
             f"AIINFRA_HOME={info['home']}; log {info['log']}"]  # fmt: skip
    lines += [f"  broken: {b['name']}: {b['error']}" for b in info["broken"]]
    return Lines("\n".join(lines))


def _install(args: argparse.Namespace, ctx: Context) -> Any:
    from ..paths import aiinfra_home
    from ..pipelines import scheduler_service

    info = scheduler_service.install_unit(aiinfra_home(), write=args.write)
    if info["written"]:
        ctx.done(f"wrote {info['path']}; then: {info['next']}")
        return None
    return Lines(f"# {info['path']}\n{info['unit']}")


def _trigger(shown: dict[str, Any]) -> str:
    trig = shown.get("trigger") or {}
    if "cron" in trig:
        return f"cron '{trig['cron']}' {trig['tz']}"
    return f"every {trig.get('every')}" if trig else "?"


def _local(iso: str | None) -> str:
    """An ISO time in this machine's zone, to the second (or '-')."""
    if not iso:
        return "-"
    moment = datetime.fromisoformat(iso).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z")


def _table(shown: list[dict[str, Any]]) -> str:
    if not shown:
        return "no schedules (add one: aiinfra pipeline schedule add PATH --name NAME --every 1h)"
    rows = [["NAME", "TRIGGER", "NEXT RUN", "STATE", "LAST RUN", "NOTE"]]
    for s in shown:
        last = s.get("last_run") or {}
        state = "broken" if s.get("error") else ("paused" if s["paused"] else "active")
        firing = s.get("last_firing") or {}
        note = s.get("error") or (
            f"{firing['outcome']}: {firing.get('reason') or ''}"
            if firing and firing["outcome"] != "started" else ""
        )  # fmt: skip
        run = f"{last.get('status')} {last.get('run_id') or ''}".strip() if last else "-"
        rows.append([s["name"], _trigger(s), _local(s.get("next_run")), state, run, note])
    return _columns(rows)


def _columns(rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths)) + "  " + str(r[-1]) for r in rows
    ).rstrip()
