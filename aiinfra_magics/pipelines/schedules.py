"""Schedules: the one core every door calls (``aiinfra pipeline schedule``, REST, the lab).

``add`` checks every field (``schedule_spec.build_spec``), stores the schedule
(``schedule_store``) and makes sure the per-user service (``scheduler_service``) runs;
``pause``/``resume``/``remove`` change the store and wake the service; ``run_now`` fires
at once under the schedule's overlap rule (``schedule_runs.fire``). What each returns is
the schedule's view, the same dict ``list --json`` and ``GET aiinfra/api/schedules`` give.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import OperationError
from ..paths import aiinfra_home
from . import scheduler_service
from .notify import redact
from .schedule_runs import fire, log_tail, run_of
from .schedule_spec import build_spec, remove_notebook_spec
from .schedule_store import ScheduleRow, ScheduleStore


def _home(home: Path | None) -> Path:
    return home if home is not None else aiinfra_home()


def _iso(stamp: float | None, zone: Any = None) -> str | None:
    if stamp is None:
        return None
    moment = datetime.fromtimestamp(stamp, tz=timezone.utc)
    return moment.astimezone(zone).isoformat() if zone is not None else moment.isoformat()


def view(row: ScheduleRow, store: ScheduleStore) -> dict[str, Any]:
    """A schedule as every door shows it.

    ``name``, ``path``, ``trigger`` (``{cron, tz}`` or ``{every, seconds}``), ``next_run``
    (ISO 8601 in the schedule's zone; None while paused), ``paused``, ``last_run``
    (``run_id``, ``status``, when, why; None before the first), ``last_firing`` (the latest
    firing of any outcome: started, skipped, missed, queued, failed, with its reason),
    ``overlap``, ``cluster``, ``notify``, ``queued`` and ``error`` (why it is broken).
    """
    spec = row.spec
    out: dict[str, Any] = {
        "name": row.name,
        "path": spec.path if spec else None,
        "trigger": spec.trigger.to_dict() if spec else None,
        "next_run": None,
        "paused": row.paused,
        "last_run": None,
        "last_firing": None,
        "overlap": spec.overlap if spec else None,
        "cluster": spec.cluster if spec else None,
        # A webhook URL is a secret (its path is the key): shown by scheme and host only.
        "notify": [redact(t) for t in spec.notify] if spec else [],
        "params": _params_view(spec) if spec else {},
        "queued": row.queued,
        "error": row.error,
    }
    if spec is not None and not row.paused and row.next_due is not None:
        out["next_run"] = _iso(row.next_due, spec.trigger.zone)
    elif spec is not None and not row.paused:
        out["next_run"] = _iso(
            spec.trigger.next_after(datetime.now(timezone.utc)).timestamp(), spec.trigger.zone
        )
    recent = store.firings(row.name, limit=1)
    if recent:
        f = recent[0]
        out["last_firing"] = {
            "outcome": f["outcome"],
            "at": _iso(f["at"]),
            "scheduled_for": _iso(f.get("scheduled_for")),
            "count": f.get("count") or 1,
            "reason": f.get("reason"),
        }
    started = store.last_started(row.name)
    if started is not None:
        run_id, status = run_of(started)
        if run_id != started.get("run_id") or status != started.get("status"):
            store.set_run(started["id"], run_id, status)
        out["last_run"] = {
            "run_id": run_id,
            "status": status,
            "started": _iso(started["at"]),
            "reason": started.get("reason"),
            "log": started.get("log"),
        }
        if status == "failed" and run_id is None:  # ended before a run began: say why
            out["last_run"]["error"] = log_tail(started.get("log"))
    return out


def _params_view(spec: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for flag, items in (("-p", spec.params), ("-r", spec.raw), ("-y", spec.yaml_params)):
        if items:
            out[flag] = list(items)
    if spec.param_files:
        out["-f"] = list(spec.param_files)
    if spec.values:
        out["values"] = spec.values
    return out


def add(
    options: dict[str, Any], home: Path | None = None, start_service: bool = True
) -> dict[str, Any]:
    """Check and store a new schedule, and make sure the scheduler service runs.

    ``options`` by the CLI's names: ``name``, ``path``, ``cron`` + ``tz`` or ``every``,
    ``params``/``raw``/``yaml_params``/``param_files`` (``-p``/``-r``/``-y``/``-f``),
    ``values`` (typed JSON parameters), ``cluster``, ``overlap``, ``notify``, ``force``.

    Raises:
        InputError: a field is not allowed (named), or the name is taken; nothing is stored.
        OperationError: stored, but the service did not start.
    """
    home = _home(home)
    now = time.time()
    spec = build_spec(options, now=now)
    store = ScheduleStore(home)
    next_due = spec.trigger.next_after(datetime.fromtimestamp(now, tz=timezone.utc)).timestamp()
    store.add(spec, next_due)
    if start_service:
        scheduler_service.start(home)
        scheduler_service.poke(home)
    return view(store.get(spec.name), store)


def list_schedules(home: Path | None = None) -> list[dict[str, Any]]:
    """Every schedule's view, by name (broken ones too, with their error)."""
    store = ScheduleStore(_home(home))
    return [view(row, store) for row in store.rows()]


def get(name: str, home: Path | None = None) -> dict[str, Any]:
    """One schedule's view.

    Raises:
        NotFoundError: no schedule of that name.
    """
    store = ScheduleStore(_home(home))
    return view(store.get(name), store)


def pause(name: str, home: Path | None = None) -> dict[str, Any]:
    """Stop firing (runs already going go on).

    Raises:
        NotFoundError: no schedule of that name.
    """
    home = _home(home)
    store = ScheduleStore(home)
    store.get(name)
    store.update(name, paused=1)
    scheduler_service.poke(home)
    return view(store.get(name), store)


def resume(name: str, home: Path | None = None) -> dict[str, Any]:
    """Fire again from the next due time; firings while paused are recorded as skipped.

    Raises:
        NotFoundError: no schedule of that name.
    """
    home = _home(home)
    store = ScheduleStore(home)
    row = store.get(name)
    if row.paused and row.spec is not None:
        now = datetime.now(timezone.utc)
        due = row.next_due
        trigger = row.spec.trigger
        if due is not None and due <= now.timestamp():
            first = datetime.fromtimestamp(due, tz=timezone.utc)
            skipped = [first] + trigger.firings_between(first, now, scheduler_service.COUNT_LIMIT)
            store.record(
                name,
                "skipped",
                scheduled_for=skipped[0].timestamp(),
                until=skipped[-1].timestamp(),
                count=len(skipped),
                reason=f"{len(skipped)} firing(s) while the schedule was paused",
            )
        store.update(name, paused=0, next_due=trigger.next_after(now).timestamp())
    else:
        store.update(name, paused=0)
    if scheduler_service.running(home) or scheduler_service.revive(home):
        scheduler_service.poke(home)
    return view(store.get(name), store)


def remove(name: str, home: Path | None = None) -> dict[str, Any]:
    """Forget a schedule (a notebook's one-step spec goes with it); its runs go on.

    Raises:
        NotFoundError: no schedule of that name.
    """
    home = _home(home)
    store = ScheduleStore(home)
    row = store.get(name)
    shown = view(row, store)
    store.remove(name)
    if row.spec is not None:
        remove_notebook_spec(row.spec)
    scheduler_service.poke(home)
    return {**shown, "removed": True}


def run_now(name: str, home: Path | None = None) -> dict[str, Any]:
    """Fire the schedule now, under its overlap rule; returns the firing.

    Raises:
        NotFoundError: no schedule of that name.
        OperationError: the schedule is broken, or its run could not start or was skipped.
    """
    home = _home(home)
    store = ScheduleStore(home)
    row = store.get(name)
    if row.spec is None:
        raise OperationError(f"schedule {name} is broken: {row.error}")
    firing = fire(store, row, scheduled_for=None, why="run now", home=home)
    if firing["outcome"] in ("skipped", "failed"):
        raise OperationError(f"schedule {name}: {firing['outcome']}: {firing['reason']}")
    scheduler_service.poke(home)
    return firing


def firings(name: str, limit: int = 50, home: Path | None = None) -> list[dict[str, Any]]:
    """The schedule's latest firings, newest first, with ISO times.

    Raises:
        NotFoundError: no schedule of that name.
    """
    store = ScheduleStore(_home(home))
    store.get(name)
    out = []
    for f in store.firings(name, limit):
        if f["outcome"] == "started":
            run_id, status = run_of(f)
            f = {**f, "run_id": run_id, "status": status}
        for key in ("at", "scheduled_for", "until", "pid_started"):
            if key != "pid_started":
                f[key] = _iso(f.get(key))
        f.pop("pid_started", None)
        out.append(f)
    return out
