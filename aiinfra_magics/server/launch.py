"""Runs the server starts: ``python -m aiinfra_magics.server.launch JOB.json``, detached.

The server writes the request as JSON (pipeline, cluster, typed params, only,
force, resume, from) to a private file and starts this entry point as a process
of its own session: no signal for the server's terminal or process group reaches
it, and nothing stops it when the server shuts down. The params go to the
runner as the typed values they are (``run_pipeline(parameters=...)``), never
through ``-p`` text. As soon as the runner knows its run id it is written to
``run_id_file``; its exit status goes to ``exit_file`` as it ends.

The server keeps each launch in ``<launch>.proc`` (pid, start time, files), so
a server started later adopts the runs still going (:func:`adopt`) and can show
and cancel them; the run's own record and heartbeat say how it is doing.

Exit status as the CLI's: 0 ok, 1 a step failed or the run was stopped, 2 bad input.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from ..errors import AiinfraException, InputError
from ..paths import atomic_write_json, atomic_write_text, private_dir
from ..startup import defer_slow_imports

# Launches kept in view after their run ended (older ones are only on disk).
KEEP_ENDED_S = 24 * 3600
KILLED = -signal.SIGKILL  # the exit status of a launch that ended without writing one


class _Announce:
    """Progress that logs lines and writes the run id once the run begins."""

    def __init__(self, run_id_file: Path | None) -> None:
        from ..pipelines.progress import LineProgress

        self.lines = LineProgress(sys.stdout)
        self.run_id_file = run_id_file

    def begin(self, run: Any) -> None:
        if self.run_id_file is not None:
            atomic_write_text(self.run_id_file, run.run_id)
        self.lines.begin(run)

    def update(self, run: Any, name: str, cell: int | None = None) -> None:
        self.lines.update(run, name, cell)

    def end(self, run: Any) -> None:
        self.lines.end(run)


def run_job(job: dict[str, Any]) -> Any:
    """Run the pipeline a job file describes; returns the RunRecord."""
    from ..pipelines.runner import run_pipeline

    run_id_file = job.get("run_id_file")
    return run_pipeline(
        job["pipeline"],
        cluster=job.get("cluster"),
        parameters=job.get("params") or None,
        force=bool(job.get("force")),
        only=job.get("only") or None,
        trigger=job.get("trigger") or "lab",  # started from the lab unless the job says
        resume=bool(job.get("resume")),
        from_step=job.get("from") or None,
        progress=_Announce(Path(run_id_file) if run_id_file else None),
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m aiinfra_magics.server.launch JOB.json", file=sys.stderr)
        return 2
    job = json.loads(Path(args[0]).read_text())
    # Cancel's SIGINT must reach the runner even if the server was started with it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code = 1
    try:
        code = _run(job)
    finally:
        if job.get("exit_file"):
            atomic_write_text(Path(job["exit_file"]), str(code))
    return code


def _run(job: dict[str, Any]) -> int:
    defer_slow_imports()  # this process is the pipeline runner: papermill and nbformat
    try:
        run = run_job(job)
    except KeyboardInterrupt as exc:  # SIGINT (cancel) or SIGTERM: every step is recorded
        print(f"pipeline run stopped ({exc or 'SIGINT'}); every step recorded", file=sys.stderr)
        return 1
    except AiinfraException as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, InputError) else 1
    from ..pipelines.report import write_report

    print(f"{run.summary()}; report: {write_report(run)}")
    return 0 if run.status == "ok" else 1


class RunProcess:
    """A launched run's process, as much of ``subprocess.Popen`` as the server uses.

    Backed by the Popen while the server that started it lives; after a restart, by
    the pid and start time from the launch's ``.proc`` file (a reused pid is never
    taken for the run) and the exit status the run wrote.
    """

    def __init__(
        self,
        pid: int,
        started: float | None,
        exit_file: Path,
        popen: subprocess.Popen | None = None,
    ) -> None:
        self.pid, self.started, self.exit_file, self.popen = pid, started, exit_file, popen
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        if self.popen is not None:
            self.returncode = self.popen.poll()
            return self.returncode
        from ..pipelines.liveness import same_process

        if same_process(self.pid, self.started):
            return None
        try:
            self.returncode = int(self.exit_file.read_text().strip())
        except (OSError, ValueError):
            self.returncode = KILLED  # gone without a word: killed
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL for the run's whole session (its kernels and workers too)."""
        if self.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)  # the run leads its own process group
            except (ProcessLookupError, PermissionError):
                os.kill(self.pid, signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        if self.popen is not None:
            self.returncode = self.popen.wait(timeout)
            return self.returncode
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"run process {self.pid}", timeout or 0)
            time.sleep(0.1)
        return code


def start(
    home: Path,
    path: Path,
    cluster: str | None,
    params: dict[str, Any],
    force: bool,
    only: list[str] | None = None,
    resume: bool = False,
    from_step: str | list[str] | None = None,
) -> dict[str, Any]:
    """Start a run detached from this process; the request travels as a private JSON file.

    The params stay typed JSON all the way to the runner: no ``-p`` text in between.

    Raises:
        OSError: the process could not be started (nothing is left behind).
    """
    import psutil

    launch_id = "launch-" + uuid.uuid4().hex[:8]
    private_dir(home)  # jobs and logs name paths and clusters: the user's only
    files = {x: home / f"{launch_id}.{x}" for x in ("json", "run_id", "log", "exit", "proc")}
    atomic_write_json(
        files["json"],
        {
            "pipeline": str(path),
            "cluster": cluster,
            "params": params,
            "force": force,
            "only": only,
            "resume": resume,
            "from": from_step,
            "run_id_file": str(files["run_id"]),
            "exit_file": str(files["exit"]),
        },
    )
    cmd = [sys.executable, "-m", "aiinfra_magics.server.launch", str(files["json"])]
    fd = os.open(files["log"], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "ab") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=path.parent,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own session: the server's end is not its end
            )
    except BaseException:
        files["log"].unlink(missing_ok=True)  # a launch that never started leaves nothing
        files["json"].unlink(missing_ok=True)
        raise
    try:
        started: float | None = psutil.Process(proc.pid).create_time()
    except psutil.Error:  # already gone: its exit status says how it ended
        started = None
    launch = {
        "launch": launch_id,
        "pipeline": str(path),
        "dir": str(path.parent),
        "log": str(files["log"]),
        "run_id_file": str(files["run_id"]),
        "exit_file": str(files["exit"]),
        "started": time.time(),
        "pid": proc.pid,
        "process_started": started,
    }
    atomic_write_json(files["proc"], launch)
    return {**launch, "process": RunProcess(proc.pid, started, files["exit"], popen=proc)}


def adopt(home: Path, now: float | None = None) -> dict[str, dict[str, Any]]:
    """The launches recorded in ``home`` whose run goes on, or ended in the last day."""
    now = time.time() if now is None else now
    launches: dict[str, dict[str, Any]] = {}
    for path in sorted(home.glob("launch-*.proc")) if home.is_dir() else []:
        try:
            launch = json.loads(path.read_text())
            process = RunProcess(
                int(launch["pid"]), launch.get("process_started"), Path(launch["exit_file"])
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue  # half-written or not ours
        if process.poll() is not None:
            ended = process.exit_file if process.exit_file.exists() else path
            if now - ended.stat().st_mtime > KEEP_ENDED_S:
                continue
        launches[launch["launch"]] = {**launch, "process": process}
    return launches


if __name__ == "__main__":
    sys.exit(main())
