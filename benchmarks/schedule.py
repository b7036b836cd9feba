"""Benchmark aiinfra's schedules against jupyter-scheduler, on the same notebook, in one run.

    python benchmarks/schedule.py                 # timings, memory, and the weaknesses
    python benchmarks/schedule.py --repeat 7      # more alternated trigger rounds
    python benchmarks/schedule.py --quick         # timings and memory only (no 3-minute checks)

Measured (issue 26):
- trigger to finished: ours is ``aiinfra pipeline schedule run NAME`` (a CLI process, as a
  user or cron types it) until the run's record says ``ok`` (its ``end``); theirs is
  ``POST scheduler/jobs`` on a running server until the job's ``end_time``. Rounds
  alternate, medians reported, both from the trigger's wall clock to the record's end.
- idle memory with 10 schedules: our scheduler service process against jupyter-scheduler's
  server process (it has no other home), RSS and USS, after 10 cron schedules were added.
- the weaknesses the issue lists, on both sides: firings missed while the scheduler is
  down, SIGTERM while a run is going, a bad cron, a run killed outright.

jupyter-scheduler pins its own Jupyter stack, so it lives in its own virtual environment:
$JUPYTER_SCHEDULER_VENV, default .bench/jupyter-scheduler-venv (created on first use with
``pip install 'jupyter-scheduler==2.12.*' ipykernel``). Everything runs on 127.0.0.1 under a
temporary folder; nothing of either side outlives the script.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the notebook, port and waiting helpers tests share
from live_server import free_port  # noqa: E402
from nbfiles import write_notebook  # noqa: E402
from run_records import run_records  # noqa: E402
from waiting import wait_for  # noqa: E402

TOKEN = "bench-token"
TRIVIAL = "print(1 + 1)"
SLOW = "import time\ntime.sleep(float(pause))\nprint('done')"


def scheduler_venv() -> Path:
    venv = Path(
        os.environ.get("JUPYTER_SCHEDULER_VENV", ROOT / ".bench" / "jupyter-scheduler-venv")
    )
    if not (venv / "bin" / "jupyter-server").exists():
        print(f"creating {venv} (pip install jupyter-scheduler ipykernel) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "jupyter-scheduler==2.12.*", "ipykernel"],
            check=True,
        )
    return venv


def wait(predicate: Any, timeout: float, what: str, interval: float = 0.02) -> Any:
    """tests/waiting.py's ``wait_for``, polling every 20 ms unless told (HTTP polls are cheap)."""
    return wait_for(predicate, timeout, what, interval)


def notebooks(folder: Path) -> None:
    """The two notebooks both sides run: ``trivial`` and ``slow`` (sleeps ``pause`` s)."""
    write_notebook(folder / "trivial.ipynb", "pause = 0", TRIVIAL)
    write_notebook(folder / "slow.ipynb", "pause = 0", SLOW)


def memory(pid: int) -> tuple[float, float]:
    info = psutil.Process(pid).memory_full_info()
    return info.rss / 2**20, info.uss / 2**20


# -- ours -----------------------------------------------------------------------------------------
class Ours:
    def __init__(self, tmp: Path) -> None:
        self.home = tmp / "aiinfra-home"
        self.work = tmp / "ours"
        notebooks(self.work)
        self.env = {**os.environ, "AIINFRA_HOME": str(self.home)}

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, "-m", "aiinfra_magics.doors.cli", *args],
            capture_output=True, text=True, env=self.env, cwd=self.work, timeout=600,
        )  # fmt: skip
        if check and proc.returncode:
            raise RuntimeError(f"aiinfra {' '.join(args)}: {proc.stderr}")
        return proc

    def add(
        self, name: str, *when: str, notebook: str = "trivial.ipynb", check: bool = True
    ) -> subprocess.CompletedProcess:
        """``aiinfra pipeline schedule add`` of one of the notebooks; ``when``: --cron/--every/-p..."""
        return self.cli(
            "pipeline",
            "schedule",
            "add",
            str(self.work / notebook),
            "--name",
            name,
            *when,
            check=check,
        )

    def schedules(self) -> list[dict[str, Any]]:
        return json.loads(self.cli("pipeline", "schedule", "list", "--json").stdout)

    def history(self, name: str) -> list[dict[str, Any]]:
        return json.loads(
            self.cli("pipeline", "schedule", "history", name, "--json", "--limit", "200").stdout
        )

    def service_pid(self) -> int | None:
        return json.loads(self.cli("scheduler", "status", "--json").stdout)["pid"]

    def runs(self) -> dict[str, dict[str, Any]]:
        return run_records(self.work)

    def new_run(self, before: set[str]) -> dict[str, Any]:
        """The record of the first run not in ``before``, once it has ended.

        Polls only the new run's folder (every 50 ms, as theirs is polled): parsing every
        run.json of a growing folder would take the CPU the run needs on a 2-core machine.
        """
        runs = self.work / "runs"
        fresh = wait(lambda: sorted(set(os.listdir(runs)) - before - {".cache"}) if runs.is_dir() else [],
                     300, "a new run folder", 0.05)  # fmt: skip
        record = runs / fresh[0] / "run.json"

        def ended() -> dict[str, Any] | None:
            try:
                data = json.loads(record.read_text())
            except (OSError, ValueError):
                return None
            return data if data.get("status") != "running" else None

        return wait(ended, 300, "our run to end", 0.05)

    def trigger(self, name: str) -> float:
        runs = self.work / "runs"
        before = set(os.listdir(runs)) if runs.is_dir() else set()
        start = time.time()
        self.cli("pipeline", "schedule", "run", name)
        run = self.new_run(before)
        assert run["status"] == "ok", run["status"]
        return run["end"] - start

    def stop(self) -> None:
        self.cli("scheduler", "stop", check=False)


# -- theirs ---------------------------------------------------------------------------------------
class Theirs:
    def __init__(self, tmp: Path, venv: Path) -> None:
        self.venv = venv
        self.root = tmp / "theirs"
        notebooks(self.root)
        self.data = tmp / "theirs-data"
        self.log = open(tmp / "jupyter-scheduler.log", "ab")  # noqa: SIM115
        self.proc: subprocess.Popen | None = None
        self.env_name = ""

    def start(self) -> float:
        """Start their server; returns seconds until its API answers."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {**os.environ, "JUPYTER_DATA_DIR": str(self.data), "JUPYTER_RUNTIME_DIR": str(self.data / "rt"),
               "PATH": f"{self.venv / 'bin'}:{os.environ['PATH']}"}  # fmt: skip
        env.pop("PYTHONPATH", None)
        began = time.monotonic()
        self.proc = subprocess.Popen(
            [str(self.venv / "bin" / "jupyter-server"), "--no-browser", "--allow-root", "--ip=127.0.0.1",
             f"--port={self.port}", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={self.root}",
             "--ServerApp.jpserver_extensions={'jupyter_scheduler': True}"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.root,
        )  # fmt: skip
        wait(lambda: self._answers(), 120, "jupyter-scheduler's server", 0.1)
        envs = self.call("GET", "scheduler/runtime_environments")[1]
        self.env_name = envs[0]["name"]
        return time.monotonic() - began

    def _answers(self) -> bool:
        try:
            return self.call("GET", "api/status")[0] == 200
        except OSError:
            return False

    def call(
        self, method: str, path: str, body: Any = None, timeout: float = 30
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"})  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                text = resp.read()
                return resp.status, json.loads(text) if text else None
        except urllib.error.HTTPError as err:
            text = err.read()
            try:
                return err.code, json.loads(text)
            except ValueError:
                return err.code, text.decode(errors="replace")

    def job(
        self, name: str, notebook_name: str = "trivial.ipynb", params: dict | None = None
    ) -> str:
        body = {"input_uri": notebook_name, "runtime_environment_name": self.env_name, "name": name,
                "output_formats": ["ipynb"], "parameters": params or {}}  # fmt: skip
        status, reply = self.call("POST", "scheduler/jobs", body)
        assert status == 200, (status, reply)
        return reply["job_id"]

    def status(self, job_id: str) -> dict[str, Any]:
        return self.call("GET", f"scheduler/jobs/{job_id}")[1]

    def trigger(self) -> float:
        start = time.time()
        job_id = self.job("bench")
        job = wait(
            lambda: (j := self.status(job_id))["status"] in ("COMPLETED", "FAILED") and j,
            300,
            "their job",
        )
        assert job["status"] == "COMPLETED", job
        return job["end_time"] / 1000 - start

    def definition(
        self, name: str, schedule: str, notebook_name: str = "trivial.ipynb"
    ) -> tuple[int, Any]:
        body = {"input_uri": notebook_name, "runtime_environment_name": self.env_name, "name": name,
                "output_formats": ["ipynb"], "schedule": schedule, "timezone": "UTC"}  # fmt: skip
        return self.call("POST", "scheduler/job_definitions", body)

    def jobs(self) -> list[dict[str, Any]]:
        return self.call("GET", "scheduler/jobs?max_items=1000")[1]["jobs"]

    def stop(self, sig: int = signal.SIGTERM, limit: float = 600) -> float:
        """Signal the server; seconds until it exited (SIGKILL after ``limit``)."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        began = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return time.monotonic() - began

    def restarted(self, job_id: str, limit: float = 600) -> tuple[float, dict[str, Any]]:
        """SIGTERM the server, kill what it left and start it again: seconds it took to exit,
        and the job's record after the restart."""
        took = self.stop(signal.SIGTERM, limit)
        self.kill_leftovers()
        self.start()
        return took, self.status(job_id)

    def kill_leftovers(self) -> None:
        if self.proc is not None:
            for child in psutil.Process().children(recursive=True):
                try:
                    if str(self.venv) in " ".join(child.cmdline()) or str(self.root) in child.cwd():
                        child.kill()
                except psutil.Error:
                    pass


def _our_slow_run(ours: Ours, name: str, pause: int) -> set[str]:
    """Schedule ``slow`` as ``name``, trigger it and wait until its step runs; the run folders
    there were before it."""
    ours.add(name, "--cron", "0 3 * * *", "-p", f"pause={pause}", notebook="slow.ipynb")
    before = set(ours.runs())
    ours.cli("pipeline", "schedule", "run", name)
    wait(lambda: any(k not in before and r["steps"]["slow"]["status"] == "running" for k, r in ours.runs().items()),
         120, "our slow run", 0.5)  # fmt: skip
    return before


def _our_new_run(ours: Ours, before: set[str], ended: bool = False) -> dict[str, Any]:
    """The record of the run not in ``before`` (once it has ended, if ``ended``)."""
    return wait(lambda: next((r for k, r in ours.runs().items() if k not in before and (not ended or r["status"] != "running")), None),
                120, "our run to end" if ended else "our slow run", 0.5)  # fmt: skip


def _their_slow_job(theirs: Theirs, name: str, pause: int) -> str:
    """Start a job of ``slow`` and wait until its kernel is up; the job's id."""
    job_id = theirs.job(name, "slow.ipynb", {"pause": str(pause)})
    wait(lambda: theirs.status(job_id)["status"] == "IN_PROGRESS", 120, "their slow job")
    time.sleep(2)  # its kernel is up
    return job_id


def _minute_boundary(seconds_before: float) -> None:
    """Sleep until ``seconds_before`` s before the next full minute (cron fires on minutes)."""
    now = time.time()
    target = (now // 60 + 1) * 60 - seconds_before
    if target - now < 1:
        target += 60
    time.sleep(target - now)


# -- the cases ------------------------------------------------------------------------------------
def timings(ours: Ours, theirs: Theirs, repeat: int) -> dict[str, Any]:
    ours.add("bench", "--cron", "0 3 * * *")
    ours.trigger("bench")  # warm-up on both sides (first kernel start, caches)
    theirs.trigger()
    mine, their = [], []
    for _ in range(repeat):
        mine.append(ours.trigger("bench"))
        their.append(theirs.trigger())
    ours.cli("pipeline", "schedule", "remove", "bench")
    return {"ours": mine, "theirs": their}


def scheduled_firings(ours: Ours, theirs: Theirs, samples: int) -> dict[str, Any]:
    """From the time a firing was due to its run's end, with no one triggering anything."""
    ours.add("timer", "--every", "15s")

    def done_firings() -> list[dict[str, Any]]:
        found = [
            f for f in ours.history("timer") if f["outcome"] == "started" and f["status"] == "ok"
        ]
        return found if len(found) >= samples else []

    fired = wait(done_firings, 120 + 30 * samples, "our timed firings", 1.0)
    ours.cli("pipeline", "schedule", "remove", "timer")
    mine = []
    for f in fired[:samples]:
        run = json.loads((ours.work / "runs" / f["run_id"] / "run.json").read_text())
        mine.append(run["end"] - datetime.fromisoformat(f["scheduled_for"]).timestamp())

    status, reply = theirs.definition("timer", "* * * * *")
    definition = reply["job_definition_id"]

    def their_done() -> list[dict[str, Any]]:
        made = [
            j
            for j in theirs.jobs()
            if j.get("job_definition_id") == definition and j["status"] == "COMPLETED"
        ]
        return made if len(made) >= samples else []

    made = wait(their_done, 90 + 70 * samples, "their timed jobs", 2.0)
    theirs.call("DELETE", f"scheduler/job_definitions/{definition}")
    their = [j["end_time"] / 1000 - (j["create_time"] // 60000) * 60 for j in made[:samples]]
    return {"ours": mine, "theirs": their}


def idle_memory(ours: Ours, theirs: Theirs) -> dict[str, Any]:
    for i in range(10):
        ours.add(f"idle{i}", "--cron", f"{i} 3 * * *", "--tz", "Europe/Berlin")
        status, reply = theirs.definition(f"idle{i}", f"{i} 3 * * *")
        assert status == 200, reply
    time.sleep(5)  # idle: both loops settle
    pid = ours.service_pid()
    out = {"ours": memory(pid), "theirs": memory(theirs.proc.pid)}
    for i in range(10):
        ours.cli("pipeline", "schedule", "remove", f"idle{i}")
    for definition in theirs.call("GET", "scheduler/job_definitions")[1]["job_definitions"]:
        theirs.call("DELETE", f"scheduler/job_definitions/{definition['job_definition_id']}")
    return out


def bad_cron(ours: Ours, theirs: Theirs) -> dict[str, str]:
    proc = ours.add("bad", "--cron", "61 * * * *", check=False)
    stored = any(s["name"] == "bad" for s in ours.schedules())
    status, reply = theirs.definition("bad", "61 * * * *")
    saved = [
        d
        for d in theirs.call("GET", "scheduler/job_definitions")[1]["job_definitions"]
        if d["name"] == "bad"
    ]
    for d in saved:
        theirs.call("DELETE", f"scheduler/job_definitions/{d['job_definition_id']}")
    return {
        "ours": f"exit {proc.returncode}: {proc.stderr.strip()}; stored: {stored}",
        "theirs": f"HTTP {status}: {str(reply)[:120]}; saved: {bool(saved)}",
    }


def killed_run(ours: Ours, theirs: Theirs) -> dict[str, str]:
    before = _our_slow_run(ours, "victim", 60)
    run = _our_new_run(ours, before)
    os.killpg(run["runner"]["pid"], signal.SIGKILL)  # the run's whole session: runner and kernel
    time.sleep(1)
    shown = next(s for s in ours.schedules() if s["name"] == "victim")["last_run"]["status"]
    ours.cli("pipeline", "schedule", "remove", "victim")

    job_id = _their_slow_job(theirs, "victim", 60)
    server = psutil.Process(theirs.proc.pid)
    for child in server.children(recursive=True):
        with_kernel = "ipykernel" in " ".join(child.cmdline())
        try:
            child.kill() if not with_kernel else child.kill()
        except psutil.Error:
            pass
    time.sleep(3)
    after_kill = theirs.status(job_id)["status"]
    _, after_restart = theirs.restarted(job_id)
    return {
        "ours": f"run killed (SIGKILL to its session): last_run.status = {shown}",
        "theirs": f"job process killed: status {after_kill}; after a server restart: {after_restart['status']}, "
        f"end_time {after_restart.get('end_time')}",
    }


def sigterm_during_run(ours: Ours, theirs: Theirs) -> dict[str, str]:
    before = _our_slow_run(ours, "term", 20)
    pid = ours.service_pid()
    began = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    wait(
        lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
        120,
        "service exit",
    )
    ours_exit = time.monotonic() - began
    run = _our_new_run(ours, before, ended=True)
    ours.cli("scheduler", "start")
    ours.cli("pipeline", "schedule", "remove", "term")

    job_id = _their_slow_job(theirs, "term", 20)
    their_exit, job = theirs.restarted(job_id, limit=300)
    return {
        "ours": f"SIGTERM to the scheduler service: it exited in {ours_exit:.2f} s; the run went on to {run['status']}",
        "theirs": f"SIGTERM to the server: it exited after {their_exit:.1f} s (HTTP unanswered meanwhile); "
        f"the job after a restart: {job['status']}",
    }


def missed_runs(ours: Ours, theirs: Theirs) -> dict[str, str]:
    ours.add("missed", "--every", "10s")
    wait(
        lambda: any(f["outcome"] == "started" for f in ours.history("missed")),
        120,
        "a first firing",
    )
    ours.cli("scheduler", "stop")
    time.sleep(45)
    ours.cli("scheduler", "start")
    wait(
        lambda: any((f["reason"] or "").startswith("catch-up") for f in ours.history("missed")),
        120,
        "our catch-up",
    )
    ours.cli("pipeline", "schedule", "pause", "missed")
    history = ours.history("missed")
    missed = [f for f in history if f["outcome"] == "missed"]
    catch = [f for f in history if (f["reason"] or "").startswith("catch-up")]
    ours.cli("pipeline", "schedule", "remove", "missed")

    status, reply = theirs.definition("missed", "* * * * *")
    definition = reply["job_definition_id"]
    _minute_boundary(10)
    theirs.stop()
    down_from = time.time()
    time.sleep(100)  # at least one full minute boundary passes with no server
    down_to = time.time()
    theirs.start()
    time.sleep(20)  # a catch-up, if any, would have started by now
    made = [j for j in theirs.jobs() if j.get("job_definition_id") == definition]
    during = [j for j in made if down_from * 1000 <= j["create_time"]]
    theirs.call("DELETE", f"scheduler/job_definitions/{definition}")
    return {
        "ours": f"every 10s, scheduler stopped 45 s: {sum(f['count'] for f in missed)} firing(s) recorded as missed "
        f"({missed[0]['reason'] if missed else 'none'}); catch-up runs: {len(catch)}",
        "theirs": f"every minute, server down {down_to - down_from:.0f} s across a minute: "
        f"{len(during)} job(s) created for the missed minute(s) after the restart; no record of the miss",
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="timings and memory only")
    args = parser.parse_args()
    venv = scheduler_venv()
    tmp = Path(tempfile.mkdtemp(prefix="aiinfra-bench-schedule-"))
    ours, theirs = Ours(tmp), Theirs(tmp, venv)
    load_before = os.getloadavg()
    results: dict[str, Any] = {}
    try:
        results["their server start s"] = theirs.start()
        results["timings"] = timings(ours, theirs, args.repeat)
        results["memory"] = idle_memory(ours, theirs)
        if not args.quick:
            results["scheduled"] = scheduled_firings(ours, theirs, 3)
            results["bad cron"] = bad_cron(ours, theirs)
            results["killed run"] = killed_run(ours, theirs)
            results["SIGTERM during a run"] = sigterm_during_run(ours, theirs)
            results["missed runs"] = missed_runs(ours, theirs)
    finally:
        ours.stop()
        theirs.stop()
        theirs.kill_leftovers()
        shutil.rmtree(tmp, ignore_errors=True)
    load_after = os.getloadavg()
    version = subprocess.run(
        [str(venv / "bin" / "pip"), "show", "jupyter-scheduler"], capture_output=True, text=True
    ).stdout
    their_version = next(
        (line.split()[-1] for line in version.splitlines() if line.startswith("Version")), "?"
    )
    print(f"# {datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, {os.cpu_count()} cores, "
          f"load {load_before[0]:.1f} -> {load_after[0]:.1f}; jupyter-scheduler {their_version}")  # fmt: skip
    mine, their = results["timings"]["ours"], results["timings"]["theirs"]
    m, t = statistics.median(mine), statistics.median(their)
    print(
        "\n| measure | aiinfra | jupyter-scheduler | ratio | aim |\n| --- | --- | --- | --- | --- |"
    )
    print(f"| trigger to finished, median of {len(mine)} | {m:.2f} s | {t:.2f} s | {m / t:.2f} | <= 0.5, "
          f"{'met' if m / t <= 0.5 else 'not met'} |")  # fmt: skip
    print(
        f"| (all rounds) | {', '.join(f'{x:.2f}' for x in mine)} | {', '.join(f'{x:.2f}' for x in their)} | | |"
    )
    if "scheduled" in results:
        mine, their = results["scheduled"]["ours"], results["scheduled"]["theirs"]
        m, t = statistics.median(mine), statistics.median(their)
        print(f"| firing due to finished (no one triggering), median of {len(mine)} | {m:.2f} s | {t:.2f} s | "
              f"{m / t:.2f} | |")  # fmt: skip
        print(
            f"| (all) | {', '.join(f'{x:.2f}' for x in mine)} | {', '.join(f'{x:.2f}' for x in their)} | | |"
        )
    (orss, ouss), (trss, tuss) = results["memory"]["ours"], results["memory"]["theirs"]
    print(f"| idle with 10 schedules, RSS | {orss:.0f} MB (service) | {trss:.0f} MB (server) | {orss / trss:.2f} | "
          f"<= 0.5, {'met' if orss / trss <= 0.5 else 'not met'} |")  # fmt: skip
    print(f"| idle with 10 schedules, USS | {ouss:.0f} MB | {tuss:.0f} MB | {ouss / tuss:.2f} | |")
    for key in ("bad cron", "killed run", "SIGTERM during a run", "missed runs"):
        if key in results:
            print(
                f"\n**{key}**\n- aiinfra: {results[key]['ours']}\n- jupyter-scheduler: {results[key]['theirs']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
