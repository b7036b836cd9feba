"""The processes of an SSH cluster: distributed's SSH scheduler and workers, started safely.

Built on ``distributed.deploy.ssh`` (the ``Scheduler``/``Worker`` process classes behind
``SSHCluster``) and a ``SpecCluster``; what changes, each for a known trap:

- Nothing but a fixed bootstrap is on the remote command line. distributed writes the whole
  dask config (``DASK_INTERNAL_INHERIT_CONFIG``) and the worker spec into argv, which every
  user of the host reads in ``ps``; here they travel as one JSON line on the session's stdin.
- The session's stdin stays open for the process's life: when the owner goes (a kernel
  SIGKILLed, a lost network) sshd closes it and the bootstrap ends the process, then its
  whole process group, so no worker outlives its cluster by more than a grace period.
- The remote stderr is drained for the process's life (distributed stops reading once the
  worker has started: the SSH window then fills and a chatty worker blocks on a log line);
  its last lines are kept to explain a process that died.
- Each worker binds the address it was reached at, and the scheduler its host's
  (``SSHCluster`` binds the machine's default interface).
- Scaling places each new worker on the least loaded host; a GPU host runs
  ``dask cuda worker``, one process per GPU.

The command lines are built by pure functions (``worker_command``, ``scheduler_command``),
tested without a GPU or a network.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shlex
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import dask
from distributed.core import Status
from distributed.deploy import ssh as dssh
from distributed.deploy.spec import ProcessInterface, SpecCluster

logger = logging.getLogger(__name__)

#: Seconds the bootstrap waits, once its session is gone, for a graceful close before it
#: kills its whole process group (the nanny's worker process included).
ORPHAN_GRACE_S = 10.0
STDERR_KEPT = 40
#: Scheduler metadata where the owner keeps the workers it means to run, ``{name: host}``
#: (``Client.get_metadata``): any client can tell a worker that is gone from one never asked
#: for (``%%aiinfra spmd`` runs one process per worker meant to be there). Names and hosts only.
LAYOUT_KEY = ("aiinfra", "ssh-workers")
LAYOUT_SEND_S = 5.0

# The remote bootstrap (``python -c BOOT``): reads the payload line, watches stdin, runs the
# module as ``python -m`` would. Fixed text: no value of ours is on the command line.
BOOT = (
    "import json,os,runpy,signal,sys,threading,time\n"
    "d=json.loads(sys.stdin.readline())\n"
    'os.environ.update(d["env"])\n'
    "def w():\n"
    "    while os.read(0,65536):pass\n"
    "    os.kill(os.getpid(),signal.SIGTERM)\n"
    '    time.sleep(d["grace"])\n'
    "    os.killpg(0,signal.SIGKILL)\n"
    "threading.Thread(target=w,daemon=True).start()\n"
    'sys.argv=[d["module"]]+d["args"]\n'
    'runpy.run_module(d["module"],run_name="__main__",alter_sys=True)\n'
)


def remote_command(python: str) -> str:
    """The shell command run on a host: the python, ``-c`` and the fixed bootstrap."""
    return f"exec {shlex.quote(python)} -c {shlex.quote(BOOT)}"


@dataclass(frozen=True)
class Command:
    """One remote process: ``python -m module args`` with ``env``, sent on stdin."""

    module: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def payload(self) -> str:
        env = {"DASK_INTERNAL_INHERIT_CONFIG": dask.config.serialize(dask.config.global_config)}
        env.update(self.env)
        return json.dumps(
            {"module": self.module, "args": self.args, "env": env, "grace": ORPHAN_GRACE_S}
        )

    @property
    def shown(self) -> str:
        """As a user would type it (for notes and tests)."""
        words = {
            "distributed.cli.dask_worker": ["dask", "worker"],
            "distributed.cli.dask_scheduler": ["dask", "scheduler"],
            "dask": ["dask"],
        }.get(self.module, ["python", "-m", self.module]) + self.args
        return " ".join(shlex.quote(w) for w in words)


def worker_command(
    scheduler: str,
    name: str,
    host: str,
    threads: int,
    memory: str,
    death_timeout: float,
    gpu: str | None = None,
    gpus_on_host: int = 0,
) -> Command:
    """``dask worker`` for a CPU worker; ``dask cuda worker`` pinned to ``gpu`` for a GPU one.

    A GPU worker sees every GPU of its host, its own first (dask-cuda's own rotation), so
    ``CUDA_VISIBLE_DEVICES`` names its device and NCCL can still reach the others.
    """
    common = [
        scheduler,
        "--name", name,
        "--host", host,
        "--nthreads", str(threads),
        "--memory-limit", memory,
        "--death-timeout", f"{death_timeout:g}s",
        "--no-dashboard",
    ]  # fmt: skip
    if gpu is None:
        return Command("distributed.cli.dask_worker", common)
    index = int(gpu)
    order = (
        [str((index + i) % gpus_on_host) for i in range(gpus_on_host)] if gpus_on_host else [gpu]
    )
    return Command(
        "dask",
        ["cuda", "worker", *common],
        {"CUDA_VISIBLE_DEVICES": ",".join(order), "XLA_PYTHON_CLIENT_PREALLOCATE": "false"},
    )


def scheduler_command(host: str) -> Command:
    """``dask scheduler`` bound to ``host`` on free ports (the dashboard too)."""
    bracketed = f"[{host}]" if ":" in host else host
    return Command(
        "distributed.cli.dask_scheduler",
        ["--host", host, "--port", "0", "--dashboard-address", f"{bracketed}:0"],
    )


class _Remote:
    """What the scheduler and worker classes share: start one command, drain its stderr."""

    command: Command
    ready_marker: str
    host: str
    connect_options: dict[str, Any]
    python: str

    async def _launch(self) -> str:
        """Start the command; return the stderr line that says it is ready."""
        from .ssh_connect import asyncssh

        self.stderr_tail: deque[str] = deque(maxlen=STDERR_KEPT)
        self.connection = await asyncssh().connect(self.host, **self.connect_options)
        self.proc = await self.connection.create_process(remote_command(self.python))
        self.proc.stdin.write(self.command.payload() + "\n")  # stdin stays open: see BOOT
        while True:
            line = await self.proc.stderr.readline()
            if not line:
                tail = " | ".join(list(self.stderr_tail)[-3:]) or "no output"
                raise RuntimeError(f"{self.host}: {self.command.shown} exited: {tail}")
            self.stderr_tail.append(line.rstrip())
            if self.ready_marker in line:
                self._drain = asyncio.ensure_future(self._drain_stderr())
                return line

    async def _drain_stderr(self) -> None:
        with contextlib.suppress(Exception):
            while True:
                line = await self.proc.stderr.readline()
                if not line:
                    break
                self.stderr_tail.append(line.rstrip())

    async def _stop(self) -> None:
        drain = getattr(self, "_drain", None)
        if drain is not None:
            drain.cancel()
        if getattr(self, "proc", None) is not None:
            with contextlib.suppress(Exception):
                self.proc.stdin.write_eof()  # the bootstrap's cue to close gracefully
        if getattr(self, "connection", None) is not None:
            self.connection.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.connection.wait_closed(), 5)


class RemoteWorker(_Remote, dssh.Worker):
    """One ``dask worker`` (or ``dask cuda worker``) on one host, over one SSH session."""

    ready_marker = "Start worker at"

    def __init__(
        self,
        scheduler: str,
        *,
        name: str,
        address: str,
        connect_options: dict[str, Any],
        remote_python: str,
        threads: int,
        memory: str,
        death_timeout: float,
        gpu: str | None = None,
        gpus_on_host: int = 0,
    ) -> None:
        super().__init__(
            scheduler, address, connect_options, {}, remote_python=remote_python, name=name
        )
        self.host, self.python = address, remote_python
        self.gpu = gpu
        self.command = worker_command(
            scheduler, name, address, threads, memory, death_timeout, gpu, gpus_on_host
        )

    async def start(self) -> None:
        await self._launch()
        # Not dssh.Process.start/close: they signal the process over the channel (at close
        # and from a finalizer); here closing the session is the signal (see BOOT).
        await ProcessInterface.start(self)

    async def close(self) -> None:
        await self._stop()
        await ProcessInterface.close(self)


class RemoteScheduler(_Remote, dssh.Scheduler):
    """``dask scheduler`` on the first host, over one SSH session."""

    ready_marker = "Scheduler at:"

    def __init__(self, *, address: str, connect_options: dict[str, Any], remote_python: str):
        super().__init__(address, connect_options, {}, remote_python=remote_python)
        self.host, self.python = address, remote_python
        self.command = scheduler_command(address)

    async def start(self) -> None:
        line = await self._launch()
        self.address = line.split("Scheduler at:")[1].strip()
        await ProcessInterface.start(self)

    async def close(self) -> None:
        await self._stop()
        await ProcessInterface.close(self)

    @property
    def exited(self) -> bool:
        proc = getattr(self, "proc", None)
        return proc is not None and proc.exit_status is not None


@dataclass
class HostSlots:
    """One worker host: where its workers go and which GPUs they hold."""

    host: str
    threads: int
    memory: str
    gpus: int = 0  # 0: a CPU host


class SshSpecCluster(SpecCluster):
    """A SpecCluster of SSH processes that scales by placing workers on the least loaded host."""

    def __init__(
        self,
        slots: list[HostSlots],
        n_workers: int,
        connect_options: dict[str, Any],
        remote_python: str,
        death_timeout: float,
        scheduler: dict[str, Any],
        **kwargs: Any,
    ) -> None:
        self.slots = slots
        self._connect_options = connect_options
        self._python = remote_python
        self._death_timeout = death_timeout
        self._placed: dict[str, tuple[str, str | None]] = {}  # worker name -> (host, gpu)
        workers: dict[str, Any] = {}
        for _ in range(n_workers):
            workers.update(self._next_spec(workers))
        # ``worker`` (new_spec) only needs to be truthy for scale/adapt; new_worker_spec decides.
        super().__init__(workers, scheduler, worker={"placed": True}, **kwargs)

    def _next_spec(self, taken: dict[str, Any]) -> dict[str, Any]:
        """The spec of one more worker, on the host with the fewest (a free GPU on GPU hosts)."""
        load = {s.host: 0 for s in self.slots}
        used: dict[str, set[str]] = {s.host: set() for s in self.slots}
        for name in taken:
            host, gpu = self._placed[name]
            load[host] += 1
            if gpu is not None:
                used[host].add(gpu)
        free = [s for s in self.slots if not s.gpus or len(used[s.host]) < s.gpus]
        if not free:
            total = sum(s.gpus for s in self.slots)
            raise ValueError(f"every GPU of the hosts is taken ({total}): one worker per GPU")
        slot = min(free, key=lambda s: load[s.host])
        gpu = None
        if slot.gpus:
            gpu = next(str(i) for i in range(slot.gpus) if str(i) not in used[slot.host])
        index = 0
        while f"{slot.host}-{index}" in taken or f"{slot.host}-{index}" in self._placed:
            index += 1
        name = f"{slot.host}-{index}"
        self._placed[name] = (slot.host, gpu)
        options = {
            "name": name,
            "address": slot.host,
            "connect_options": self._connect_options,
            "remote_python": self._python,
            "threads": slot.threads,
            "memory": slot.memory,
            "death_timeout": self._death_timeout,
            "gpu": gpu,
            "gpus_on_host": slot.gpus,
        }
        return {name: {"cls": RemoteWorker, "options": options}}

    def layout(self) -> dict[str, str]:
        """The workers this cluster means to run now, by name: their hosts."""
        return {
            name: self._placed.get(name, (spec["options"]["address"], None))[0]
            for name, spec in self.worker_spec.items()
        }

    async def _correct_state_internal(self) -> None:
        # On every change of the spec (start, scale, adapt), published where any client reads
        # it: the registry keeps only the spec asked for at start, not a later scale. Before
        # the change, so that no worker is retired while the layout still names it; after
        # it, for a change made meanwhile.
        await self._publish_layout()
        try:
            await super()._correct_state_internal()
        finally:
            await self._publish_layout()

    async def _publish_layout(self) -> None:
        comm = getattr(self, "scheduler_comm", None)
        # Closing: the scheduler goes next; a call to a gone one would hold up the close.
        if comm is None or self.status in (Status.closing, Status.closed):
            return
        try:
            await asyncio.wait_for(
                comm.set_metadata(keys=list(LAYOUT_KEY), value=self.layout()), LAYOUT_SEND_S
            )
        except Exception:  # noqa: BLE001 - a closing scheduler: nobody will read it
            logger.debug("could not publish the worker layout", exc_info=True)

    def new_worker_spec(self) -> dict[str, Any]:
        # Names freed by a scale-down may be reused: forget placements no spec holds.
        self._placed = {n: p for n, p in self._placed.items() if n in self.worker_spec}
        return self._next_spec(self.worker_spec)

    def sessions(self) -> dict[str, list[dict[str, Any]]]:
        """Per host, each worker's SSH session: running, or exited with its last lines."""
        found: dict[str, list[dict[str, Any]]] = {s.host: [] for s in self.slots}
        for name, worker in list(self.workers.items()):
            where = self._placed.get(name, (getattr(worker, "host", "?"), None))[0]
            proc = getattr(worker, "proc", None)
            gone = proc is not None and proc.exit_status is not None
            entry: dict[str, Any] = {"name": name, "session": "exited" if gone else "running"}
            if gone:
                entry["last_output"] = list(getattr(worker, "stderr_tail", []))[-3:]
            found.setdefault(where, []).append(entry)
        return found
