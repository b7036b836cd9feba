"""``pipeline run --resume`` and ``--from STEP``: which nodes run, which are kept.

- ``--resume``: the nodes the pipeline's last run did not finish (failed,
  interrupted, skipped because an upstream failed, new in the spec) run again
  with everything downstream of them, whatever the cache says. Nodes that
  finished (``ok`` or ``cached``) are kept as they are, even where the cache
  would now miss (an upstream product was touched), as long as their products
  are still there. The last run's parameter overrides apply again.
- ``--from STEP``: STEP (a step or an expanded name) and everything downstream
  run, whatever the cache says; the nodes before it do not run (their products
  must be there, as with ``--only``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AiinfraError, NotFoundError
from .dag import Node, downstream, select
from .record import RunRecord

FINISHED = ("ok", "cached")


@dataclass
class Plan:
    """The nodes a run selects, those it runs without the cache, and those it keeps."""

    selected: set[str]
    forced: set[str] = field(default_factory=set)
    kept: dict[str, dict[str, Any]] = field(default_factory=dict)  # node -> its last step record
    flag: str = "--only"  # the option that chose: named in skipped nodes and errors
    fields: dict[str, Any] = field(default_factory=dict)  # what run.json records of the choice


def last_run(folder: Path) -> RunRecord:
    """The run ``--resume`` continues (raises with field ``--resume`` when there is none)."""
    try:
        last = RunRecord.load(folder)
    except NotFoundError:
        raise AiinfraError(
            f"--resume: no run yet under {folder / 'runs'}; allowed: --resume after a run",
            field="--resume",
        ) from None
    if last.status == "running":
        raise AiinfraError(
            f"--resume: the last run {last.run_id} is still running; allowed: --resume after "
            "it ended (aiinfra pipeline cancel stops it)",
            field="--resume",
        )
    return last


def last_overrides(last: RunRecord) -> list[tuple[str | None, str, Any]]:
    """The ``-p`` overrides the last run applied, as ``params.collect`` gives them."""
    out = []
    for item in last.data.get("overrides") or []:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            out.append((item.get("step"), item["key"], item.get("value")))
    return out


def plan_resume(nodes: dict[str, Node], folder: Path, last: RunRecord) -> Plan:
    """Rerun what ``last`` did not finish and its downstream; keep what it finished."""
    unfinished: set[str] = set()
    kept: dict[str, dict[str, Any]] = {}
    for name, node in nodes.items():
        before = last.steps.get(name)
        status = before.get("status") if isinstance(before, dict) else None
        if status in FINISHED and all((folder / p).exists() for p in node.products):
            kept[name] = before  # type: ignore[assignment]
        elif status == "skipped" and str(before.get("reason", "")).startswith("not selected"):
            continue  # the last run did not choose it: neither does its resumption
        else:
            unfinished.add(name)
    rerun = downstream(nodes, unfinished)
    if not rerun:
        raise AiinfraError(
            f"--resume: the last run {last.run_id} finished every step it ran; allowed: "
            "--resume after a failed or interrupted run (--from STEP runs a step again)",
            field="--resume",
        )
    kept = {n: s for n, s in kept.items() if n not in rerun}
    return Plan(
        selected=rerun | set(kept),
        forced=rerun,
        kept=kept,
        flag="--resume",
        fields={"resumed_from": last.run_id},
    )


def plan_from(nodes: dict[str, Node], steps: str | list[str]) -> Plan:
    """STEP and its downstream, all run without the cache."""
    chosen = downstream(nodes, select(nodes, steps, False, flag="--from"))
    names = [steps] if isinstance(steps, str) else list(steps)
    return Plan(
        selected=chosen,
        forced=set(chosen),
        flag=f"--from {','.join(names)}",
        fields={"from": names},
    )
