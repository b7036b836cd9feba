"""Workers an SPMD cell expects but that are not there: one process each that never joins.

A JAX program over a TPU slice (or any fixed set of hosts) must run on every host of it;
running on the workers that happen to be present would silently make a smaller program.
An SSH cluster's owner keeps the workers it means to run in the scheduler's metadata
(``ssh_spawn.LAYOUT_KEY``, ``{name: host}``, kept up to date across scale and adapt),
so a cell expects one process per worker of that layout. A worker that is missing gets
its process id all the same and counts as a process that has not joined:

- it may still come: a nanny restarts a worker that died, under the same name, so the
  barrier waits ``--join-timeout`` for it as for any process and starts its process
  when it appears;
- meanwhile its host is probed from here with the start-time preflight (ssh_connect.py,
  bounded by a short timeout), so a cell that fails says why in the words ``cluster
  start`` would have used: connection refused, timed out, host key changed, no Python.

Other backends have no such layout: their cells keep one process per present worker.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: The probe never takes longer than this, nor than the join timeout (at least 1 s).
PROBE_MAX_S = 10.0
# "hosts: 10.0.0.3:22: unreachable (...)": the refusal's field goes, its words stay.
_FIELD = re.compile(r"^[a-z-]+: ")


def layout_of(client: Any, record: Mapping[str, Any] | None) -> dict[str, str] | None:
    """``{worker name: host}`` the cluster means to run, or None where it does not say."""
    if not record or record.get("backend") != "ssh":
        return None
    from ..clusters.ssh_spawn import LAYOUT_KEY

    try:
        layout = client.get_metadata(list(LAYOUT_KEY), default=None)
    except Exception:  # noqa: BLE001 - a scheduler that cannot say: today's behaviour
        return None
    if not isinstance(layout, dict):
        return None  # started before layouts were published
    return {str(name): str(host) for name, host in layout.items()}


def missing(layout: Mapping[str, str], workers: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, host) of each worker of ``layout`` that the scheduler does not have now."""
    present = {str(info.get("name")) for info in workers.values()}
    return sorted((name, host) for name, host in layout.items() if name not in present)


def _target(record: Mapping[str, Any], hosts: tuple[str, ...]) -> Any:
    """How this machine reaches ``hosts``, from the record's spec (paths only, no secrets)."""
    from ..clusters.spec import ClusterSpec
    from ..clusters.ssh import reach

    return reach(ClusterSpec.from_options(record.get("spec") or {}), hosts)


@dataclass
class Absent:
    """One expected worker that is not there, and its process."""

    pid: int
    name: str
    host: str
    why: str | None = None  # the probe's finding: None when the host can run a worker
    probed: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class Absentees:
    """The processes of a cell whose workers are missing: probed now, started if they come.

    ``start(pid, address)`` launches a process on a worker that appeared (the caller's
    ``client.submit``); it runs on the barrier's thread.
    """

    def __init__(
        self,
        absent: list[Absent],
        record: Mapping[str, Any] | None,
        join_timeout: float,
        start: Callable[[int, str], None],
    ) -> None:
        self.absent = {a.pid: a for a in absent}
        self.start = start
        self.timeout = max(1.0, min(PROBE_MAX_S, join_timeout))
        target = None
        if record is not None and absent:
            try:
                target = _target(record, tuple(dict.fromkeys(a.host for a in absent)))
            except Exception:  # noqa: BLE001 - a record we cannot read: no reason, still a miss
                target = None
        for a in absent:
            if target is None:
                a.done.set()
                continue
            # One probe per host, in the background: the barrier must keep polling meanwhile.
            threading.Thread(
                target=self._probe, args=(a, target), name="aiinfra-spmd-probe", daemon=True
            ).start()

    def _probe(self, absent: Absent, target: Any) -> None:
        from ..clusters.ssh_connect import why_not

        try:
            absent.why = why_not(absent.host, target, self.timeout)
            absent.probed = True
        finally:
            absent.done.set()

    def __contains__(self, pid: object) -> bool:
        return pid in self.absent

    def host(self, pid: int) -> str:
        return self.absent[pid].host

    def adopt(self, workers: Mapping[str, Any]) -> None:
        """Start the process of each missing worker that the scheduler now has."""
        by_name = {str(info.get("name")): address for address, info in workers.items()}
        for pid, absent in list(self.absent.items()):
            address = by_name.get(absent.name)
            if address is not None:
                del self.absent[pid]
                self.start(pid, address)

    def reason(self, pid: int) -> str:
        """``no worker there; ssh HOST:PORT: unreachable (Connection refused)`` and the like."""
        absent = self.absent[pid]
        absent.done.wait(self.timeout + 1.0)  # bounded: the probe itself is
        if not absent.probed:
            return "no worker there"
        if absent.why is None:
            return "no worker there; its host answers SSH (the worker exited or was stopped)"
        return f"no worker there; ssh {_FIELD.sub('', absent.why, count=1)}"
