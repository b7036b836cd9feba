"""Kernels on a worker: collision-free ports, a warm pool, and a watchdog.

Runs inside Dask worker processes. A step gets a fresh kernel unless it asks for
``kernel_reuse`` (then a warm kernel of its own run, reset and verified between steps:
see reuse.py); the pool starts the *next* kernel while the current step runs, so
start-up (most of a small notebook's cost) overlaps with useful work.
"""

from __future__ import annotations

import asyncio
import atexit
import fcntl
import json
import os
import signal
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import psutil
from jupyter_client.client import KernelClient
from jupyter_client.manager import AsyncKernelManager

from ..errors import OperationError

T = TypeVar("T")
PORT_HOLD_S = 60.0  # a kernel binds its ports well within this after launch

_lock = threading.Lock()
# Keyed by (run, owner, kernel name, cwd); the owner is the Dask worker, so workers that
# share a process (threads) each keep their own warm kernels, and the run, so one run's
# drain never stops the kernels another run (on the same registered cluster) waits for.
_pool: dict[tuple[str, str, str, str], list[Future]] = {}
_starter = ThreadPoolExecutor(max_workers=2, thread_name_prefix="aiinfra-kernel-start")


#: Tries to find ``count`` free ports the ledger does not hold before giving up.
MAX_PORT_TRIES = 2000
MAX_LEDGER_BYTES = 4 << 20


def _ledger_path() -> Path:
    """``<tmp>/aiinfra-<uid>/kernel-ports.json``: in a directory only this user owns.

    The ledger is shared by every process of the user on this machine (whatever their
    AIINFRA_HOME), so it lives in the temp dir; a directory another user made, or a
    link in its place, is refused rather than followed.
    """
    folder = Path(tempfile.gettempdir()) / f"aiinfra-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise OperationError(
            f"kernel ports: {folder} is not a private directory of this user; remove it"
        )
    return folder / "kernel-ports.json"


def reserve_ports(ip: str, count: int = 5) -> list[int]:
    """Free ports no other kernel launch on this machine is about to take.

    jupyter_client picks ports by binding and releasing them, so two worker
    processes launching kernels at once can pick the same port (its own cache
    only protects one process). A small ledger shared by all processes under an
    advisory file lock closes that window.

    Raises:
        OperationError: the ledger is not a private regular file, or no free port
            was found in ``MAX_PORT_TRIES`` tries.
    """
    path = _ledger_path()
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:  # ELOOP: a link where the ledger should be
        raise OperationError(
            f"kernel ports: cannot open the ledger {path} ({exc.strerror})"
        ) from None
    with os.fdopen(fd, "r+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            fh.seek(0)
            try:
                held = {int(k): v for k, v in json.loads(fh.read(MAX_LEDGER_BYTES) or "{}").items()}
            except (ValueError, AttributeError):
                held = {}  # damaged: every kernel binds its own ports anyway
            now = time.time()
            held = {p: t for p, t in held.items() if isinstance(t, (int, float)) and t > now}
            ports: list[int] = []
            for _ in range(MAX_PORT_TRIES):
                if len(ports) == count:
                    break
                with socket.socket() as sock:
                    sock.bind((ip, 0))
                    port = sock.getsockname()[1]
                if port not in held and port not in ports:
                    ports.append(port)
            if len(ports) < count:
                raise OperationError(
                    f"kernel ports: no {count} free ports on {ip} in {MAX_PORT_TRIES} tries "
                    f"({len(held)} held by the ledger {path})"
                )
            for port in ports:
                held[port] = now + PORT_HOLD_S
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps(held))
            fh.flush()  # before unlocking, or the next process reads the old ledger
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    return ports


def kernel_dirs() -> list[str]:
    """Where jupyter_client looks for kernelspecs, worked out without importing IPython.

    Its default list ends with IPython's own kernels folder, found through
    ``IPython.paths``, which imports the whole of IPython in the runner (0.1-0.2 s, on
    the way to every run's first step). The same folders: Jupyter's, then
    ``$IPYTHONDIR/kernels`` (``~/.ipython/kernels`` by default), as IPython names it.
    """
    from jupyter_core.paths import jupyter_path

    ipython_dir = os.environ.get("IPYTHONDIR") or os.path.join(os.path.expanduser("~"), ".ipython")
    return [*jupyter_path("kernels"), os.path.join(ipython_dir, "kernels")]


def start_kernel(kernel_name: str, cwd: str) -> AsyncKernelManager:
    """Launch a kernel in ``cwd`` (passed to the process, never os.chdir) and wait until ready."""
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager(kernel_dirs=kernel_dirs())
    km = AsyncKernelManager(kernel_name=kernel_name, kernel_spec_manager=specs)
    km.cache_ports = False
    km.shell_port, km.iopub_port, km.stdin_port, km.hb_port, km.control_port = reserve_ports(km.ip)

    # The kernel's own output (start-up warnings, a crash's last words) goes to an
    # unlinked append-only file rather than the worker's terminal: a dead kernel's
    # report quotes it, and it vanishes with its last holder even if the worker dies.
    log, path = tempfile.mkstemp(prefix="aiinfra-kernel-", suffix=".log")
    os.unlink(path)
    fcntl.fcntl(log, fcntl.F_SETFL, fcntl.fcntl(log, fcntl.F_GETFL) | os.O_APPEND)
    km.aiinfra_log = log  # type: ignore[attr-defined]

    # As nbclient (papermill) does: no history file, so parallel kernels never share one.
    extra = ["--HistoryManager.hist_file=:memory:"] if km.ipykernel else []

    async def launch() -> None:
        await km.start_kernel(cwd=cwd, stdout=log, stderr=log, extra_arguments=extra)
        kc = km.client()
        kc.start_channels()
        try:
            await wait_ready(kc, timeout=60)
        finally:
            kc.stop_channels()

    try:
        _run(launch)
    except BaseException as exc:
        tail = log_tail(km)
        shutdown(km)
        if tail:
            raise RuntimeError(f"{exc} (kernel log: {tail})") from exc
        raise
    return km


async def wait_ready(kc: KernelClient, timeout: float = 60) -> None:
    """Return once the kernel answers on shell and ``kc``'s IOPub socket is connected.

    What jupyter_client's ``wait_for_ready`` establishes, without its fixed waits: it
    gives IOPub 0.2 s after each kernel_info reply (a new SUB socket misses what the
    kernel publishes before the subscription lands, and then it asks again) and then
    flushes IOPub until 0.2 s of silence. Every step paid both, twice (at the warm start
    and again in nbclient's client): 0.2-0.4 s a step, a 100-step grid's largest cost.
    Here the wait ends at the ``idle`` status of our own latest request, which proves
    the connection and leaves none of our requests' messages queued on IOPub; the
    patience for it grows while the machine is slow.

    Raises:
        RuntimeError: the kernel died, or did not answer within ``timeout`` seconds
            (jupyter_client's messages).
    """
    from queue import Empty

    deadline = time.monotonic() + timeout
    patience = 0.02
    while True:
        msg_id = kc.kernel_info()
        reply = None
        try:
            while reply is None:  # replies to earlier tries are skipped
                msg = await kc.shell_channel.get_msg(timeout=1)  # type: ignore[misc]
                if msg["parent_header"].get("msg_id") == msg_id:
                    reply = msg
            until = time.monotonic() + patience
            heard = False
            while True:
                left = until - time.monotonic()
                if left <= 0:
                    # A kernel that says nothing of its status still passes after 0.2 s if
                    # IOPub spoke at all: jupyter_client's own test of the connection.
                    if heard and patience >= 0.2:
                        break
                    raise Empty
                msg = await kc.iopub_channel.get_msg(timeout=left)  # type: ignore[misc]
                heard = True
                if (
                    msg["msg_type"] == "status"
                    and msg["parent_header"].get("msg_id") == msg_id
                    and msg["content"].get("execution_state") == "idle"
                ):
                    break
            kc._handle_kernel_info_reply(reply)  # protocol adaptation, as jupyter_client
            return
        except Empty:
            patience = min(2 * patience, 1.0)
        if not await kc._async_is_alive():  # type: ignore[attr-defined]
            raise RuntimeError("Kernel died before replying to kernel_info")
        if time.monotonic() > deadline:
            raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")


def log_tail(km: AsyncKernelManager, lines: int = 3) -> str:
    """The last meaningful lines the kernel process wrote, for error messages."""
    try:
        fd = km.aiinfra_log  # type: ignore[attr-defined]
        size = os.fstat(fd).st_size
        # pread leaves the shared file offset alone (the kernel may still write to it).
        text = os.pread(fd, 16384, max(0, size - 16384)).decode(errors="replace")
    except (AttributeError, OSError):
        return ""
    keep = [ln.strip() for ln in text.splitlines() if ln.strip() and "without encryption" not in ln]
    return " | ".join(keep[-lines:])


def _run(make_coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running loop.

    ``client.run`` calls functions on the worker's event loop thread, where
    asyncio.run is refused; there the coroutine runs on a helper thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coro())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make_coro())).result()


def kernel_pid(km: AsyncKernelManager) -> int | None:
    process = getattr(km.provisioner, "process", None)
    return getattr(process, "pid", None)


def shutdown(km: AsyncKernelManager) -> None:
    """Kill a kernel we own; quiet if it is already gone."""

    async def stop() -> None:
        if km.has_kernel:
            await km.shutdown_kernel(now=True)

    try:
        _run(stop)
    except Exception:  # e.g. at interpreter exit: kill it and drop its connection file
        _kill(km)
        Path(km.connection_file).unlink(missing_ok=True)
    log = getattr(km, "aiinfra_log", None)
    if log is not None:
        km.aiinfra_log = None  # type: ignore[attr-defined]
        try:
            os.close(log)
        except OSError:
            pass


def acquire(
    kernel_name: str, cwd: str, owner: str = "", also: str | None = None, run: str = ""
) -> AsyncKernelManager:
    """A ready kernel: a warm one started earlier if there is one, else a new one.

    ``also`` names a second owner whose warm kernels may be taken when ``owner`` has
    none: the runner's own, started in this process before its pool was up (the
    embedded pool's workers are threads of the runner's process). Only kernels
    warmed for ``run`` are taken.
    """
    while True:
        with _lock:
            future = None
            for key in (owner, also) if also else (owner,):
                queue = _pool.get((run, key, kernel_name, cwd)) or []
                if queue:
                    future = queue.pop(0)
                    break
        if future is None:
            km = start_kernel(kernel_name, cwd)
            km.aiinfra_warm = False  # type: ignore[attr-defined]
            return km
        try:
            km = future.result()
        except Exception:
            continue  # that warm start failed (e.g. a port race); try the next or start anew
        if _run(km.is_alive):
            km.aiinfra_warm = True  # type: ignore[attr-defined]
            return km
        shutdown(km)


def warm(kernel_name: str, cwd: str, count: int, owner: str = "", run: str = "") -> None:
    """Keep ``count`` kernels starting or ready for the next steps of ``run`` on ``owner``."""
    with _lock:
        queue = _pool.setdefault((run, owner, kernel_name, cwd), [])
        while len(queue) < count:
            queue.append(_starter.submit(start_kernel, kernel_name, cwd))


def drain(owner: str | None = None, run: str | None = None) -> int:
    """Shut down the warm kernels of ``owner`` and ``run`` (None: any); returns how many."""
    with _lock:
        keys = [
            k for k in _pool if (owner is None or k[1] == owner) and (run is None or k[0] == run)
        ]
        futures = [f for k in keys for f in _pool.pop(k)]
    for future in futures:
        try:
            shutdown(future.result(timeout=90))
        except Exception:
            pass
    return len(futures)


atexit.register(drain)

# Kernels running a step right now, by run (the progress topic), so an interrupted run
# can stop its steps instead of leaving them to finish unobserved.
_busy: dict[str, set[AsyncKernelManager]] = {}


def mark_busy(run: str, km: AsyncKernelManager, busy: bool) -> None:
    with _lock:
        if busy:
            _busy.setdefault(run, set()).add(km)
        else:
            _busy.get(run, set()).discard(km)


def stop_run(run: str) -> int:
    """Kill the kernels of ``run``'s running steps; returns how many."""
    with _lock:
        kms = list(_busy.pop(run, set()))
    for km in kms:
        _kill(km)
    return len(kms)


def _kill(km: Any) -> None:
    """SIGKILL the kernel process of ``km``, if it still has one."""
    pid = kernel_pid(km)
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


class Watchdog(threading.Thread):
    """Stops a step's kernel on timeout (interrupt, then kill) or when it outgrows ``memory``.

    Killing the kernel makes nbclient raise DeadKernelError; ``reason`` tells
    the runner why, so a timeout or an out-of-memory kill is reported as such.
    """

    def __init__(self, km: AsyncKernelManager, timeout: float, memory: int | None) -> None:
        super().__init__(daemon=True, name="aiinfra-watchdog")
        self.pid = kernel_pid(km)
        self.timeout = timeout
        self.memory = memory
        self.reason: str | None = None
        self.peak_rss = 0
        self._halt = threading.Event()
        # CPU seconds of the kernel's process tree: a reused kernel brings earlier steps'
        # time, so the step's own is what it adds between here and ``stop``.
        self._cpu_first = self._cpu_last = self._cpu_now()

    def stop(self) -> None:
        self._halt.set()
        # The thread ends first: a sample it had begun before the halt would otherwise set
        # the CPU reading after the one below, older by up to an interval (a 1.5 s burn
        # read as 1.42 s on the loaded 2-core VM).
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=10)
        # The last reading, before the kernel is shut down or handed on; its memory counts
        # too: a step shorter than the sampling interval would otherwise have no peak.
        reading = self._reading()
        if reading is not None:
            self.peak_rss = max(self.peak_rss, reading[0])

    @property
    def cpu_seconds(self) -> float:
        """CPU time (user + system) the kernel and its children used while watched."""
        if self._cpu_first is None or self._cpu_last is None:
            return 0.0
        return max(0.0, self._cpu_last - self._cpu_first)

    def _cpu_now(self) -> float | None:
        """Read the tree's CPU seconds (and keep it as the latest); None once it is gone."""
        reading = self._reading()
        return None if reading is None else reading[1]

    def _reading(self) -> tuple[int, float] | None:
        """One ``_sample`` of the kernel's tree; None without a pid or once it is gone."""
        if not self.pid:
            return None
        try:
            return self._sample(psutil.Process(self.pid))
        except psutil.Error:
            return None

    def _sample(self, proc: psutil.Process) -> tuple[int, float]:
        """(RSS bytes, CPU seconds) of the kernel's tree, in one walk of its descendants.

        The CPU seconds (also kept as the latest reading) count the kernel's reaped
        children (``children_*``) and its live descendants one by one, so work in
        subprocesses is counted too.
        """
        t = proc.cpu_times()
        rss = proc.memory_info().rss
        cpu = t.user + t.system + t.children_user + t.children_system
        for child in proc.children(recursive=True):
            try:
                rss += child.memory_info().rss
                c = child.cpu_times()
                cpu += c.user + c.system
            except psutil.Error:
                pass
        self._cpu_last = cpu
        return rss, cpu

    def run(self) -> None:
        if not self.pid:
            return
        try:
            proc = psutil.Process(self.pid)
        except psutil.Error:
            return
        start = time.monotonic()
        interrupted_at: float | None = None
        while True:
            try:
                # The CPU reading is kept too: the kernel may die before ``stop``.
                rss, _ = self._sample(proc)
            except psutil.Error:
                return
            self.peak_rss = max(self.peak_rss, rss)
            if self.memory and rss > self.memory and self.reason is None:
                self.reason = "memory"
                proc.kill()
                return
            elapsed = time.monotonic() - start
            if elapsed > self.timeout and interrupted_at is None:
                # Interrupt first so the executed notebook shows the cell that was running.
                self.reason = "timeout"
                interrupted_at = elapsed
                proc.send_signal(signal.SIGINT)
            elif interrupted_at is not None and elapsed - interrupted_at > 3:
                proc.kill()
                return
            if self._halt.wait(0.1):
                return
