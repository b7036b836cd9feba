"""Kernel reuse against a fork-server, and fresh kernels, side by side (issue 25 item 1).

    python benchmarks/forkserver.py [--steps 100] [--lanes 2] [--repeat 3] [--no-pipeline]

A step is what a trivial grid step asks of its kernel: a clean kernel, then the injected
parameters cell (``i = N``) and the notebook's one cell (``x = i * 2``), each executed
through jupyter_client until the kernel is idle again, as nbclient does. ``--steps``
steps run on ``--lanes`` threads (the 2 workers of the pipeline benchmark). Three ways
of getting the clean kernel, alternated round by round in this one process:

- ``reuse``: the shipped ``kernel_reuse: true`` path (``pipelines/reuse.py``): one kernel
  per lane, reset between steps by the one-time-token reset and verified from /proc and
  by the fingerprint; a kernel that cannot be proven clean retires.
- ``fork``: a minimal fork-server. A warm interpreter that has imported everything a
  started ipykernel has loaded forks one process per step, which starts
  ``IPKernelApp`` on a connection file (ports from ``kernel_pool.reserve_ports``);
  the step talks to it with jupyter_client's ``AsyncKernelClient`` and kills it after.
  Every step is a new process: complete isolation.
- ``fresh``: a new kernel per step, started and stopped as a pipeline worker does
  (``kernel_pool.start_kernel``/``shutdown``), without the pool's prestart.

Unless ``--no-pipeline``: the same ``--steps`` as a real pipeline (``aiinfra pipeline
run``, its own 2 worker threads), ``kernel_reuse: true`` and ``false``, whole CLI
processes, in the same rounds; the fork-server's pipeline figure is then estimated as
the reuse pipeline's minus what the fork-server saves or costs per step at the kernel
layer (the prototype is not wired into the runner).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CELLS = ("i = {i}", "x = i * 2")
KERNEL = "python3"


# -- the fork-server (runs in its own process: ``forkserver.py --serve SOCKET``) -----------


def serve(address: str, preload: list[str]) -> None:
    """Import what a kernel imports, then fork a kernel per request; never start a thread."""
    import importlib

    for name in preload:  # what a started kernel had loaded: the warm part
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    from ipykernel.kernelapp import IPKernelApp

    assert threading.active_count() == 1, "a fork-server must not hold threads when it forks"

    def reap(*_: Any) -> None:
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass

    signal.signal(signal.SIGCHLD, reap)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(address)
    listener.listen(16)
    print("ready", flush=True)
    while True:
        try:
            conn, _ = listener.accept()
        except InterruptedError:
            continue
        with conn:
            request = json.loads(conn.makefile().readline())
            if request.get("stop"):
                return
            pid = os.fork()
            if pid == 0:  # the kernel: a process of its own, nothing shared after this
                try:
                    listener.close()
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    os.setsid()
                    os.chdir(request["cwd"])
                    null = os.open(os.devnull, os.O_RDWR)
                    for fd in (0, 1, 2):
                        os.dup2(null, fd)
                    app = IPKernelApp.instance()
                    app.initialize(
                        ["-f", request["connection_file"], "--HistoryManager.hist_file=:memory:"]
                    )
                    app.start()
                finally:
                    os._exit(0)
            conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")


class ForkServer:
    """The client side: start the server, ask it for kernels, stop it."""

    def __init__(self, folder: Path, preload: list[str]) -> None:
        self.address = str(folder / "fork.sock")
        self.preload = folder / "preload.json"
        self.preload.write_text(json.dumps(preload))
        cmd = [sys.executable, __file__, "--serve", self.address, "--preload", str(self.preload)]
        env = {**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"}  # debugpy's start-up note
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout.readline().strip() == "ready"

    def fork(self, connection_file: str, cwd: str) -> int:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(self.address)
            request = {"connection_file": connection_file, "cwd": cwd}
            sock.sendall(json.dumps(request).encode() + b"\n")
            return json.loads(sock.makefile().readline())["pid"]

    def stop(self) -> None:
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
            sock.connect(self.address)
            sock.sendall(b'{"stop": true}\n')
        self.proc.wait(30)


def kernel_modules() -> list[str]:
    """The modules a freshly started kernel has loaded (what the fork-server imports)."""
    from aiinfra_magics.pipelines import kernel_pool

    km = kernel_pool.start_kernel(KERNEL, tempfile.gettempdir())
    try:

        async def ask() -> list[str]:
            kc = km.client()
            kc.start_channels()
            try:
                await kernel_pool.wait_ready(kc)
                expr = "__import__('json').dumps(sorted(__import__('sys').modules))"
                msg_id = kc.execute("", user_expressions={"m": expr})
                while True:
                    reply = await kc.get_shell_msg(timeout=60)
                    if reply["parent_header"].get("msg_id") == msg_id:
                        break
                text = reply["content"]["user_expressions"]["m"]["data"]["text/plain"]
                return json.loads(ast.literal_eval(text))  # the repr of a str
            finally:
                kc.stop_channels()

        names = kernel_pool._run(ask)
    finally:
        kernel_pool.shutdown(km)
    # Modules of the running kernel's own session (__main__, the launcher) are its own.
    return [n for n in names if not n.startswith(("__main__", "ipykernel_launcher"))]


# -- one step, whichever way its kernel came -------------------------------------------------


async def run_cells(kc: Any, i: int) -> None:
    """Execute the step's cells, each until its reply and the kernel's idle status (nbclient)."""
    for cell in CELLS:
        msg_id = kc.execute(cell.format(i=i), store_history=False)
        while True:
            reply = await kc.get_shell_msg(timeout=60)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        assert reply["content"]["status"] == "ok", reply["content"]
        while True:
            msg = await kc.get_iopub_msg(timeout=60)
            if (
                msg["parent_header"].get("msg_id") == msg_id
                and msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"
            ):
                break


def run_in_kernel(make_client: Callable[[], Any], i: int) -> None:
    """Connect a client made by ``make_client`` (on the pool's loop), wait for the kernel to
    answer and run step ``i``'s cells in it."""
    from aiinfra_magics.pipelines import kernel_pool

    async def go() -> None:
        kc = make_client()
        kc.start_channels()
        try:
            await kernel_pool.wait_ready(kc)
            await run_cells(kc, i)
        finally:
            kc.stop_channels()

    kernel_pool._run(go)


def on_manager(km: Any, i: int) -> None:
    run_in_kernel(km.client, i)


def step_fresh(i: int, cwd: str, lane: str, run: str) -> int:
    from aiinfra_magics.pipelines import kernel_pool

    km = kernel_pool.start_kernel(KERNEL, cwd)
    try:
        on_manager(km, i)
        return kernel_pool.kernel_pid(km) or 0
    finally:
        kernel_pool.shutdown(km)


def step_reuse(i: int, cwd: str, lane: str, run: str) -> int:
    from aiinfra_magics.pipelines import kernel_pool, reuse

    km, _ = reuse.take(KERNEL, cwd, owner=lane, run=run)
    on_manager(km, i)
    why = reuse.give_back(km, KERNEL, cwd, owner=lane, run=run)
    assert why is None, why  # a trivial step never taints its kernel
    return kernel_pool.kernel_pid(km) or 0


def step_fork(server: ForkServer) -> Callable[[int, str, str, str], int]:
    def step(i: int, cwd: str, lane: str, run: str) -> int:
        from jupyter_client.asynchronous import AsyncKernelClient
        from jupyter_client.connect import write_connection_file

        from aiinfra_magics.pipelines import kernel_pool

        ip = "127.0.0.1"
        shell, iopub, stdin, hb, control = kernel_pool.reserve_ports(ip)
        fd, path = tempfile.mkstemp(prefix="fork-kernel-", suffix=".json")
        os.close(fd)
        write_connection_file(
            path, ip=ip, shell_port=shell, iopub_port=iopub, stdin_port=stdin, hb_port=hb,
            control_port=control, key=os.urandom(16).hex().encode(),
        )  # fmt: skip
        pid = server.fork(path, cwd)

        def connect() -> AsyncKernelClient:
            kc = AsyncKernelClient()
            kc.load_connection_file(path)
            return kc

        try:
            run_in_kernel(connect, i)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.unlink(path)
        return pid

    return step


def kernel_layer(
    step: Callable[[int, str, str, str], int], steps: int, lanes: int, cwd: str
) -> tuple[float, int]:
    """Wall seconds for ``steps`` steps on ``lanes`` threads, and how many kernel processes."""
    from aiinfra_magics.pipelines import reuse

    run = f"bench-{time.monotonic_ns()}"
    todo = list(range(steps))
    lock = threading.Lock()
    pids: list[int] = []
    failed: list[BaseException] = []
    collisions: list[int] = []

    def lane(name: str) -> None:
        while True:
            with lock:
                if not todo or failed:
                    return
                i = todo.pop(0)
            for attempt in range(3):
                try:
                    pid = step(i, cwd, name, run)
                    break
                except BaseException as exc:  # reported after the lanes stop
                    # Another process on this shared machine took a port between the ledger's
                    # pick and the kernel's bind (outside the ledger): counted, tried again.
                    if "Address already in use" in str(exc) and attempt < 2:
                        with lock:
                            collisions.append(i)
                        continue
                    failed.append(exc)
                    return
            with lock:
                pids.append(pid)

    threads = [threading.Thread(target=lane, args=(f"lane{n}",)) for n in range(lanes)]
    begin = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - begin
    reuse.drain(run)
    if failed:
        raise failed[0]
    assert len(pids) == steps, pids
    if collisions:
        print(f"{len(collisions)} port collision(s) with other processes, retried", file=sys.stderr)
    return took, len(set(pids))


# -- the pipeline, end to end (the shipped runner) -------------------------------------------


def build_pipeline(folder: Path, steps: int, reuse: bool) -> None:
    from pipeline import build_trivial  # benchmarks/pipeline.py: the same trivial grid

    build_trivial(folder, steps, reuse)


def pipeline_run(folder: Path) -> float:
    begin = time.perf_counter()
    cmd = [sys.executable, "-m", "aiinfra_magics", "pipeline", "run", "pipeline.yaml", "--force"]
    subprocess.run(cmd, cwd=folder, check=True, capture_output=True, timeout=1800)
    return time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lanes", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-pipeline", action="store_true")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--preload", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, json.loads(Path(args.preload).read_text()))
        return

    os.environ.setdefault("AIINFRA_HOME", tempfile.mkdtemp(prefix="aiinfra-bench-fork-home-"))
    base = Path(tempfile.mkdtemp(prefix="aiinfra-bench-fork-"))
    load_before = os.getloadavg()
    preload = kernel_modules()
    server = ForkServer(base, preload)
    layer: dict[str, list[float]] = {"reuse": [], "fork": [], "fresh": []}
    processes: dict[str, int] = {}
    e2e: dict[str, list[float]] = {"reuse": [], "fresh": []}
    ways: dict[str, Callable[[int, str, str, str], int]] = {
        "reuse": step_reuse, "fork": step_fork(server), "fresh": step_fresh,
    }  # fmt: skip
    try:
        if not args.no_pipeline:
            for how in e2e:
                build_pipeline(base / how, args.steps, how == "reuse")
        order = list(ways)
        for r in range(args.repeat):
            for how in order[r % 3 :] + order[: r % 3]:  # who goes first rotates
                took, n = kernel_layer(ways[how], args.steps, args.lanes, str(base))
                layer[how].append(took)
                processes[how] = n
            if not args.no_pipeline:
                for how in ("reuse", "fresh") if r % 2 == 0 else ("fresh", "reuse"):
                    e2e[how].append(pipeline_run(base / how))
            print(f"round {r + 1} done", file=sys.stderr, flush=True)
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    load_after = os.getloadavg()
    med = statistics.median
    print(
        f"{args.steps} trivial steps on {args.lanes} lanes, medians of {args.repeat}, "
        f"{os.cpu_count()} cores; load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after; the fork-server preloads {len(preload)} modules"
    )
    print(
        "| way | kernel layer | per step (lane time) | kernel processes | pipeline, CLI process |"
    )
    print("| --- | --- | --- | --- | --- |")
    for how in ("reuse", "fork", "fresh"):
        m = med(layer[how])
        per = m * args.lanes / args.steps
        if how in e2e and e2e[how]:
            whole = f"{med(e2e[how]):.2f} s"
        elif how == "fork" and e2e["reuse"]:
            estimate = med(e2e["reuse"]) + m - med(layer["reuse"])
            whole = f"~{estimate:.2f} s (estimated)"
        else:
            whole = "-"
        print(
            f"| {how} | {m:.2f} s {[round(t, 2) for t in layer[how]]} | {per * 1000:.0f} ms "
            f"| {processes[how]} | {whole} |"
        )
    print(
        f"fork / reuse at the kernel layer: {med(layer['fork']) / med(layer['reuse']):.2f}; "
        f"fresh / reuse: {med(layer['fresh']) / med(layer['reuse']):.2f}"
    )


if __name__ == "__main__":
    main()
