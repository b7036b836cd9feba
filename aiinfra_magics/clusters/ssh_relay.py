"""Owning an SSH cluster whose scheduler runs on a remote host.

Local, cuda and slurm clusters keep their scheduler in the owning process: other
processes scale and stop them through a handler on it, and the owner reads its cost
plugin directly. A scheduler started over SSH is a remote process, so here:

- a small scheduler plugin (pickled by value: the host needs no aiinfra) answers
  ``aiinfra_control`` by queueing the request for the owner, which long-polls for it,
  carries it out (only the owner holds the SSH sessions that start workers) and posts
  the outcome back; the caller gets that outcome, as from a local handler;
- the cost plugin is installed remotely (cost.install_remote), which also arms
  distributed's own idle timeout there;
- the owner's watcher learns that the cluster ended from the scheduler's SSH session
  (it exits with the scheduler) and keeps the last figures it read, so the history
  line of an idle-stopped cluster has them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
import uuid
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

from .rpc import CONTROL_OP, COST_OP, scheduler_call

logger = logging.getLogger(__name__)

TAKE_OP = "aiinfra_control_take"
DONE_OP = "aiinfra_control_done"
RELAY_NAME = "aiinfra-ssh-control"
#: How long a caller waits for the owner to carry out its request.
REPLY_TIMEOUT_S = 120.0
POLL_WAIT_S = 5.0


class ControlRelay(SchedulerPlugin):
    """On the remote scheduler: queue control requests for the owner and return its reply."""

    name = RELAY_NAME
    idempotent = True

    async def start(self, scheduler: Any) -> None:
        self.requests: asyncio.Queue = asyncio.Queue()
        self.waiting: dict[str, asyncio.Future] = {}
        scheduler.handlers[CONTROL_OP] = self.control
        scheduler.handlers[TAKE_OP] = self.take
        scheduler.handlers[DONE_OP] = self.done

    async def control(self, action: str = "", **kwargs: Any) -> dict[str, Any]:
        request_id = uuid.uuid4().hex
        reply = asyncio.get_running_loop().create_future()
        self.waiting[request_id] = reply
        await self.requests.put({"id": request_id, "action": action, "kwargs": kwargs})
        try:
            return await asyncio.wait_for(reply, REPLY_TIMEOUT_S)
        except asyncio.TimeoutError:
            return {"ok": False, "error": f"the owner did not answer within {REPLY_TIMEOUT_S:g}s"}
        finally:
            self.waiting.pop(request_id, None)

    async def take(self, wait: float = POLL_WAIT_S) -> dict[str, Any] | None:
        try:
            return await asyncio.wait_for(self.requests.get(), wait)
        except asyncio.TimeoutError:
            return None

    def done(self, request_id: str = "", outcome: dict[str, Any] | None = None) -> None:
        # "outcome", not "reply": distributed's rpc reserves that key of every message.
        future = self.waiting.get(request_id)
        if future is not None and not future.done():
            future.set_result(outcome or {"ok": True})


def _by_value() -> None:
    import cloudpickle

    module = sys.modules[__name__]
    if module.__name__ not in cloudpickle.list_registry_pickle_by_value():
        cloudpickle.register_pickle_by_value(module)


def install(address: str) -> None:
    """Add the relay to the remote scheduler at ``address``."""
    from distributed.protocol.pickle import dumps

    _by_value()
    scheduler_call(
        address,
        "register_scheduler_plugin",
        timeout=10,
        plugin=dumps(ControlRelay()),
        name=RELAY_NAME,
        idempotent=True,
    )


class Owner:
    """The owner's side: carries out relayed requests; tells the watcher when it ended."""

    def __init__(self, name: str, cluster: Any) -> None:
        self.name = name
        self.cluster = cluster
        self.address = cluster.scheduler_address
        self.last: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, name=f"aiinfra-ssh-relay-{name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        self.cluster.aiinfra_figures = self.figures
        self.cluster.aiinfra_ended = self.ended

    def stop(self) -> None:
        self._stop.set()

    def _serve(self) -> None:
        from . import host  # late: host owns the cluster and imports the backends

        while not self._stop.is_set() and not self._closing():
            try:
                request = scheduler_call(
                    self.address, TAKE_OP, timeout=POLL_WAIT_S + 10, wait=POLL_WAIT_S
                )
            except (OSError, TimeoutError):
                if self._stop.wait(1.0) or self._gone():
                    return
                continue
            except RuntimeError:  # the interpreter is exiting (the rpc pool is shut down)
                return
            if not request:
                continue
            action, kwargs = request["action"], request.get("kwargs") or {}
            reply: dict[str, Any] = {"ok": True}
            if action == "stop":  # closing waits on this scheduler: answer first
                threading.Thread(target=host.apply, args=(self.name, action), daemon=False).start()
            else:
                try:
                    host.apply(self.name, action, **kwargs)
                except Exception as exc:  # reported to the caller, who raises it there
                    reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            with contextlib.suppress(OSError, TimeoutError):
                scheduler_call(
                    self.address, DONE_OP, timeout=10, request_id=request["id"], outcome=reply
                )

    def _closing(self) -> bool:
        return getattr(getattr(self.cluster, "status", None), "name", "") in ("closing", "closed")

    def _gone(self) -> bool:
        return bool(getattr(self.cluster.scheduler, "exited", False))

    def figures(self, ended_at: float | None = None) -> dict[str, Any] | None:
        """The remote cost plugin's report; the last one read once the scheduler is gone."""
        if not self._gone():
            with contextlib.suppress(OSError, TimeoutError):
                report = scheduler_call(self.address, COST_OP, timeout=3)
                if isinstance(report, dict):
                    self.last = report
        return self.last

    def ended(self) -> tuple[str, float] | None:
        """(why, when) once the remote scheduler has exited; None while it runs."""
        if not self._gone():
            return None
        self.stop()
        report = self.last or {}
        timeout, since = report.get("idle_timeout"), report.get("idle_since")
        if timeout and since:
            return f"idle for {timeout:g}s (idle timeout)", since + timeout
        return "scheduler exited", time.time()
