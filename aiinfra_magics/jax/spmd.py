"""``%%aiinfra spmd``: one cell run as a multi-process JAX program on Dask workers.

Each worker of the cluster runs one process of the program. Process ids follow
the sorted worker addresses; process 0 (the first worker) hosts JAX's
coordinator on a port it picked itself. Where the cluster says which workers it
means to run (an SSH cluster: every host of it), a missing one is a process all
the same, the last ids, that fails the start barrier unless it comes
(spmd_absent.py): a program over a slice never silently runs on fewer hosts.

Why a fresh subprocess per cell (``spmd_child``) instead of running the cell in
the worker: JAX joins a distributed program once per process and before its
backend starts, so a second cell in the same worker would fail; a subprocess
gets its own clean JAX, can be killed without harming the worker or other
users' tasks on a shared cluster, and needs no worker restart (which would
wipe everything else the cluster holds). The cost is one interpreter start and
``import jax`` per process and cell, about a second.

Output lines travel as Dask events (``Worker.log_event``) and the notebook
prints them live, prefixed by process id. When one process fails, the others
are stopped (their process groups are terminated) and its traceback is shown.
"""

from __future__ import annotations

import logging
import pickle
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Container, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..checks import as_int
from ..errors import AiinfraError, OperationError, field_error
from .spmd_barrier import DEFAULT_JOIN_TIMEOUT_S, release, tell, wait_joined

_POLL_S = 0.05
_WORKER_CHECK_S = 1.0
_STOP_WAIT_S = 10.0


@dataclass(frozen=True)
class SpmdOptions:
    cluster: str | None = None
    processes: int | None = None
    platform: str = "auto"
    cpu_devices: int = 1
    timeout: float | None = None
    #: Seconds every process has to check in at the start barrier (spmd_barrier.py).
    join_timeout: float = DEFAULT_JOIN_TIMEOUT_S

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> SpmdOptions:
        o = {k: v for k, v in options.items() if v is not None}
        if "cluster" in o and "processes" in o:
            raise AiinfraError(
                "processes: give --cluster NAME or --processes N, not both", field="processes"
            )
        processes = None
        if "processes" in o:
            processes = as_int("processes", o["processes"], minimum=1)
        platform = str(o.get("platform", "auto")).lower()
        if platform not in ("auto", "cpu", "gpu", "tpu"):
            raise field_error("platform", o["platform"], "auto, cpu, gpu, tpu")
        timeout = _seconds("timeout", o["timeout"]) if "timeout" in o else None
        join = o.get("join_timeout", DEFAULT_JOIN_TIMEOUT_S)
        return cls(
            cluster=o.get("cluster"),
            processes=processes,
            platform=platform,
            cpu_devices=as_int("cpu_devices", o.get("cpu_devices", 1), minimum=1),
            timeout=timeout,
            join_timeout=_seconds("join-timeout", join),
        )


def _seconds(field: str, value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise field_error(field, value, "seconds, a positive number") from None
    if not seconds > 0 or seconds == float("inf"):
        raise field_error(field, value, "seconds, a positive number")
    return seconds


def _only_cluster(say: Callable[[str], None]) -> str:
    from ..clusters.manager import ClusterManager

    names = [info.name for info in ClusterManager().list_clusters()]
    if len(names) == 1:
        say(f"spmd: using cluster {names[0]!r}")
        return names[0]
    known = f" (clusters: {', '.join(names)})" if names else ""
    raise AiinfraError(f"cluster: give --cluster NAME{known} or --processes N", field="cluster")


@contextmanager
def _client(
    options: SpmdOptions, say: Callable[[str], None]
) -> Iterator[tuple[Any, dict[str, Any] | None]]:
    """A client for the named cluster (and its registry record), or for a temporary
    LocalCluster closed afterwards (no record)."""
    if options.processes is None:
        from ..clusters.manager import ClusterManager

        manager = ClusterManager()
        name = options.cluster or _only_cluster(say)
        client = manager.connect(name)
        try:
            yield client, manager.record(name)
        finally:
            client.close()
        return
    from distributed import Client, LocalCluster

    # One thread per worker: each process of the program needs exactly one slot.
    with (
        LocalCluster(
            n_workers=options.processes,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        client.wait_for_workers(options.processes, timeout=120)
        yield client, None


class _Lines:
    """Output lines arriving as Dask events; printed by the notebook's thread, prefixed."""

    def __init__(self) -> None:
        self.queue: deque[dict[str, Any]] = deque()  # appended on the client's event loop
        self.seen: set[tuple[int, int]] = set()
        self.count: dict[int, int] = {}
        #: Per process: what its worker reported at the start barrier (started, joined, facts).
        self.states: dict[int, dict[str, Any]] = {}

    def handler(self, event: tuple[float, dict[str, Any]]) -> None:
        self.queue.append(event[1])

    def flush(self) -> None:
        while self.queue:
            msg = self.queue.popleft()
            if "state" in msg:
                self.states.setdefault(msg["p"], {}).update(msg["state"])
                continue
            key = (msg["p"], msg["n"])
            if key in self.seen:
                continue
            self.seen.add(key)
            self.count[msg["p"]] = self.count.get(msg["p"], 0) + 1
            print(f"[p{msg['p']}] {msg['line']}", file=sys.stdout, flush=True)

    def complete(self, expected: dict[int, int]) -> bool:
        return all(self.count.get(p, 0) >= n for p, n in expected.items())


def _outcome(future: Any) -> dict[str, Any]:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - a worker died or the task could not run
        return {
            "ok": False,
            "error": f"worker failed: {type(exc).__name__}: {exc}",
            "traceback": None,
            "lines": 0,
        }


def _value(outcome: dict[str, Any]) -> Any:
    if outcome.get("value") is not None:
        try:
            return pickle.loads(outcome["value"])
        except Exception:  # noqa: BLE001 - a class the notebook cannot import: show the repr
            pass
    return outcome.get("repr")


def run_on_client(
    client: Any,
    code: str,
    options: SpmdOptions,
    say: Callable[[str], None] = lambda text: print(text, file=sys.stderr),
    variables: dict[str, str] | None = None,
    record: Mapping[str, Any] | None = None,
) -> list[Any]:
    """Run ``code`` on every worker of ``client``'s cluster; see :func:`run_cell`.

    ``record``: the cluster's registry record. Where it names a backend that says which
    workers it means to run (ssh), a worker missing from that is still a process of the
    program, one that never joins unless its worker comes back (spmd_absent.py).
    """
    from . import spmd_worker
    from .spmd_absent import Absent, Absentees, layout_of, missing

    info = client.scheduler_info(n_workers=-1)["workers"]
    if not info:
        raise OperationError("spmd: the cluster has no workers")
    layout = layout_of(client, record)
    gone = missing(layout, info) if layout else []
    # Missing workers take the last process ids: process 0 hosts JAX's coordinator and must
    # be a worker that is there.
    workers = sorted(info) + [""] * len(gone)
    run_id = uuid.uuid4().hex[:12]
    topic = f"aiinfra-spmd-{run_id}"
    lines = _Lines()
    client.subscribe_topic(topic, lines.handler)
    futures: list[Any] = [None] * len(workers)
    # A worker that gets its task later than this (a host that hung, then woke) leaves it.
    join_deadline = time.time() + options.join_timeout + _STOP_WAIT_S

    def start(pid: int, address: str) -> None:
        job = {
            "run_id": run_id,
            "topic": topic,
            "code": code,
            "process_id": pid,
            "num_processes": len(workers),
            "platform": options.platform,  # asked for; decided at the barrier
            "cpu_devices": options.cpu_devices,
            "init_timeout": int(min(options.timeout or 300, 300)),
            "join_deadline": join_deadline,
            "variables": variables or {},  # the notebook's, pickled (spmd_vars.pack)
        }
        workers[pid] = address
        futures[pid] = client.submit(
            spmd_worker._worker_task,
            job,
            key=f"aiinfra-spmd-{run_id}-{pid}",
            workers=[address],
            allow_other_workers=False,
            pure=False,
        )

    first_absent = len(info)
    absent = Absentees(
        [Absent(first_absent + i, name, host) for i, (name, host) in enumerate(gone)],
        record,
        options.join_timeout,
        start,
    )
    for pid, address in enumerate(sorted(info)):
        start(pid, address)
    try:
        try:
            wait_joined(
                client,
                futures,
                workers,
                lines.states,
                lines.flush,
                options.join_timeout,
                _outcome,
                absent if gone else None,
            )
            release(client, workers, lines.states, run_id, options.platform, say)
            outcomes, stop_reason = _wait(client, futures, workers, run_id, options, lines)
        except BaseException:  # the barrier failed, or an interrupt: nothing stays running
            _stop_all(client, futures, run_id, workers)
            raise
        _drain(client, topic, lines, {p: o.get("lines", 0) for p, o in outcomes.items()})
    finally:
        client.unsubscribe_topic(topic)
    return _report(outcomes, stop_reason)


def _stop_all(client: Any, futures: list[Any], run_id: str, workers: list[str]) -> None:
    """Kill every process of the run and wait (bounded) for their tasks to return."""
    from distributed import wait

    from . import spmd_worker

    started = [f for f in futures if f is not None]  # a missing worker's process never was
    try:
        tell(client, [w for w in workers if w], spmd_worker.stop_soon, run_id)
        wait(started, timeout=_STOP_WAIT_S)
    except Exception:  # noqa: BLE001 - a task stuck on a vanished worker: cancel it below
        pass
    client.cancel([f for f in started if not f.done()])


def _wait(
    client: Any,
    futures: list[Any],
    workers: list[str],
    run_id: str,
    options: SpmdOptions,
    lines: _Lines,
) -> tuple[dict[int, dict[str, Any]], str | None]:
    """Print output while the processes run; stop them all at the first failure or the timeout."""
    outcomes: dict[int, dict[str, Any]] = {}
    stop_reason: str | None = None
    start = time.monotonic()
    next_check = start + _WORKER_CHECK_S
    while len(outcomes) < len(futures):
        lines.flush()
        for pid, future in enumerate(futures):
            if pid not in outcomes and future.done():
                outcomes[pid] = _outcome(future)
                if not outcomes[pid]["ok"] and stop_reason is None:
                    stop_reason = f"process {pid} failed"
        now = time.monotonic()
        if now > next_check and stop_reason is None:
            # A task pinned to a worker that died never runs again (its restart has a new
            # address): notice the loss instead of waiting for ever.
            alive = set(client.scheduler_info(n_workers=-1)["workers"])
            for pid, address in enumerate(workers):
                if pid not in outcomes and address not in alive:
                    outcomes[pid] = {"ok": False, "error": f"worker {address} left the cluster"}
                    stop_reason = stop_reason or f"process {pid} failed"
            next_check = now + _WORKER_CHECK_S
        if options.timeout and stop_reason is None and now - start > options.timeout:
            stop_reason = f"timed out after {options.timeout:g} s"
        if stop_reason is not None and len(outcomes) < len(futures):
            _stop_all(client, futures, run_id, workers)
            for pid, future in enumerate(futures):
                if pid not in outcomes:
                    done = future.done() and future.status == "finished"
                    outcomes[pid] = (
                        _outcome(future)
                        if done
                        else {"ok": False, "stopped": True, "error": "stopped"}
                    )
        time.sleep(_POLL_S)
    return outcomes, stop_reason


def _drain(client: Any, topic: str, lines: _Lines, expected: dict[int, int]) -> None:
    """Print lines still in flight; fall back to the scheduler's event log for any missed."""
    deadline = time.monotonic() + 2.0
    while not lines.complete(expected) and time.monotonic() < deadline:
        lines.flush()
        time.sleep(_POLL_S)
    if not lines.complete(expected):
        for event in client.get_events(topic):
            lines.handler(event)
        lines.queue = deque(sorted(lines.queue, key=lambda m: (m["p"], m["n"])))
    lines.flush()


def _report(outcomes: dict[int, dict[str, Any]], stop_reason: str | None) -> list[Any]:
    failed = [
        p for p in sorted(outcomes) if not outcomes[p]["ok"] and not outcomes[p].get("stopped")
    ]
    for pid in failed:
        text = outcomes[pid].get("traceback") or outcomes[pid]["error"]
        for line in text.rstrip().splitlines():
            print(f"[p{pid}] {line}", file=sys.stderr)
    if failed:
        first = outcomes[failed[0]]
        others = len(outcomes) - len(failed)
        stopped = f"; {others} other process(es) stopped" if others else ""
        raise OperationError(f"spmd: process {failed[0]} failed: {first['error']}{stopped}")
    if stop_reason is not None:
        raise OperationError(f"spmd: {stop_reason}; every process was stopped")
    return [_value(outcomes[p]) for p in sorted(outcomes)]


def run_cell(
    code: str,
    options: SpmdOptions,
    say: Callable[[str], None] = lambda text: print(text, file=sys.stderr),
    namespace: Mapping[str, Any] | None = None,
    hidden: Container[str] = (),
) -> list[Any]:
    """Run ``code`` as one multi-process JAX program; the last expression per process, by id.

    Variables of ``namespace`` (the notebook's) that the cell reads are sent to every
    process; ``hidden`` names (IPython's own) never are.
    """
    from .spmd_vars import pack

    try:
        compile(code, "<spmd cell>", "exec")
    except SyntaxError as exc:
        raise AiinfraError(
            f"cell: syntax error on line {exc.lineno}: {exc.msg}", field="cell"
        ) from None
    variables = pack(code, namespace, hidden) if namespace else {}  # before any cluster work
    with _client(options, say) as (client, record):
        return run_on_client(client, code, options, say, variables, record)
