"""The lab, live: how soon a cluster started from a magic shows in an open sidebar, push against poll.

Part ``sidebar``: a real ``jupyter lab`` with the extension and two Chromium pages with the
sidebar open, in the same run: one with the events socket (push), one whose socket is
refused (``route_web_socket``), so it falls back to the 5 s poll, as every sidebar did before.
Each trial runs ``%aiinfra cluster start benchN --backend local --workers 1`` in an in-process
IPython shell (the magic a kernel runs, sharing the lab's registry); the delay is from the
magic's return to the card appearing in each page (a MutationObserver notes the page clock,
the same wall clock as this process), and to the card first showing its worker.

Part ``list``: ``aiinfra cluster list`` (CLI, a process each) and ``manager.list_clusters()``
(in process) with an empty registry against 200 registered records: 200 dead ones (owner this
live process, scheduler address a closed loopback port: the first listing removes them) and
200 live ones (all records of one real local scheduler, so each listing probes them all).

    python benchmarks/lab.py [--trials 6] [--part sidebar|list|all]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOKEN = "aiinfra-bench"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
]
RECORDS = 200

SEEN_JS = """() => {
  window.__seen = {}; window.__worker = {};
  const note = () => {
    for (const card of document.querySelectorAll('.aiinfra-cluster')) {
      const name = card.dataset.name;
      if (!(name in window.__seen)) window.__seen[name] = Date.now();
      const summary = card.querySelector('.aiinfra-cluster-summary');
      if (!(name in window.__worker) && summary && summary.textContent.startsWith('1 worker')) window.__worker[name] = Date.now();
    }
  };
  new MutationObserver(note).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_lab(tmp: Path) -> tuple[subprocess.Popen, str]:
    data = tmp / "data" / "labextensions"
    data.mkdir(parents=True)
    (data / "aiinfra").symlink_to(REPO / "aiinfra_magics" / "labextension")
    (tmp / "root").mkdir()
    port = free_port()
    env = {**os.environ, "JUPYTER_PATH": str(tmp / "data"), "JUPYTER_CONFIG_DIR": str(tmp / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "runtime")}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={tmp / 'root'}",
         "--ServerApp.jpserver_extensions=aiinfra_magics=True", f"--LabApp.workspaces_dir={tmp / 'ws'}"],
        env=env, stdout=open(tmp / "lab.log", "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(
                url + "api/status", headers={"Authorization": f"token {TOKEN}"}
            )
            urllib.request.urlopen(req, timeout=5).read()
            return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"lab did not start; see {tmp / 'lab.log'}")


def open_sidebar(browser, url: str, push: bool):
    page = browser.new_page(viewport={"width": 1300, "height": 800})
    page.set_default_timeout(120_000)
    if not push:  # the socket is refused: the sidebar falls back to its 5 s poll
        page.route_web_socket(lambda u: "aiinfra/api/events" in u, lambda ws: ws.close())
    # Each page its own workspace: a restored layout of the other page would toggle the sidebar shut.
    page.goto(f"{url}lab/workspaces/{'push' if push else 'poll'}?token={TOKEN}")
    page.locator('.jp-SideBar [data-id="aiinfra-sidebar"]').click()
    page.locator(".aiinfra-panel").wait_for()
    if push:
        page.locator(".aiinfra-live-on").wait_for()
    page.locator(".aiinfra-panel").get_by_text("No clusters registered.").wait_for()
    page.evaluate(SEEN_JS)
    return page


def sidebar(trials: int) -> dict:
    from IPython.core.interactiveshell import InteractiveShell
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="aiinfra-bench-lab-"))
    os.environ["AIINFRA_HOME"] = str(
        tmp / "home"
    )  # the lab (started below) and this shell share it
    proc, url = start_lab(tmp)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "aiinfra_magics")
    rows: dict[str, dict[str, list[float]]] = {
        m: {"card": [], "worker": []} for m in ("push", "poll")
    }
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            pages = {
                "push": open_sidebar(browser, url, True),
                "poll": open_sidebar(browser, url, False),
            }
            for i in range(trials):
                name = f"bench{i}"
                shell.run_line_magic(
                    "aiinfra", f"cluster start {name} --backend local --workers 1 --threads 1"
                )
                returned = time.time() * 1000
                for mode, page in pages.items():
                    try:
                        page.wait_for_function(f"() => window.__worker['{name}'] !== undefined")
                    except Exception:
                        state = page.evaluate(
                            "() => [window.__seen, window.__worker, "
                            "document.querySelector('.aiinfra-panel')?.textContent]"
                        )
                        raise SystemExit(
                            f"{mode}: the card did not show its worker: {state}"
                        ) from None
                    seen = page.evaluate(
                        f"() => [window.__seen['{name}'], window.__worker['{name}']]"
                    )
                    rows[mode]["card"].append((seen[0] - returned) / 1000)
                    rows[mode]["worker"].append((seen[1] - returned) / 1000)
                shell.run_line_magic("aiinfra", f"cluster stop {name}")
                for page in pages.values():
                    page.locator(f'.aiinfra-cluster[data-name="{name}"]').wait_for(state="detached")
                print(
                    f"trial {i}: " + ", ".join(f"{m} {rows[m]['card'][-1]:.2f} s" for m in rows),
                    flush=True,
                )
            browser.close()
    finally:
        from aiinfra_magics.clusters import host

        host.close_all()
        proc.terminate()
        proc.wait(timeout=60)
    return rows


def _cli_list() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "aiinfra_magics", "cluster", "list"], check=True,
                   capture_output=True, env=os.environ)  # fmt: skip
    return time.perf_counter() - start


def listing(trials: int) -> dict:
    from aiinfra_magics.clusters.manager import ClusterManager
    from aiinfra_magics.clusters.registry import Registry, this_process
    from aiinfra_magics.clusters.spec import ClusterSpec

    os.environ["AIINFRA_HOME"] = tempfile.mkdtemp(prefix="aiinfra-bench-list-")
    registry = Registry()
    manager = ClusterManager(registry)
    me = {**this_process(), "kind": "kernel"}

    def dead() -> None:
        for i in range(RECORDS):
            registry.write({"name": f"dead{i}", "backend": "local", "status": "running", "owner": me,
                            "created": time.time(), "scheduler_address": f"tcp://127.0.0.1:{free_port()}"})  # fmt: skip

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    out: dict[str, list[float]] = {k: [] for k in ("cli empty", "cli 200 dead", "cli 200 live",
                                                   "in-process empty", "in-process 200 dead", "in-process 200 live",
                                                   "cli 1 live", "in-process 1 live")}  # fmt: skip
    for _ in range(trials):  # alternated, so that every case sees the same machine load
        out["cli empty"].append(_cli_list())
        dead()
        out["cli 200 dead"].append(_cli_list())
        out["in-process empty"].append(timed(manager.list_clusters))
        dead()
        out["in-process 200 dead"].append(timed(manager.list_clusters))
    manager.start(
        ClusterSpec.from_options({"name": "real", "backend": "local", "workers": 1, "threads": 1})
    )
    record = registry.read("real")
    for _ in range(trials):  # the same imports and one scheduler call, one record
        out["cli 1 live"].append(_cli_list())
        out["in-process 1 live"].append(timed(manager.list_clusters))
    for i in range(RECORDS - 1):
        registry.write({**record, "name": f"live{i}"})
    for _ in range(trials):
        out["cli 200 live"].append(_cli_list())
        out["in-process 200 live"].append(timed(manager.list_clusters))
    for i in range(RECORDS - 1):
        registry.remove(f"live{i}")
    manager.stop("real")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--part", choices=["sidebar", "list", "all"], default="all")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    results: dict = {}
    if args.part in ("list", "all"):
        results["list"] = listing(args.trials)
        for case, values in results["list"].items():
            print(
                f"{case:>22}: median {statistics.median(values) * 1000:7.1f} ms  max {max(values) * 1000:7.1f} ms"
            )
        for where in ("cli", "in-process"):
            empty = statistics.median(results["list"][f"{where} empty"])
            for kind in ("dead", "live"):
                extra = statistics.median(results["list"][f"{where} 200 {kind}"]) - empty
                print(f"{where} 200 {kind} - empty: {extra * 1000:+.1f} ms")
            one = statistics.median(results["list"][f"{where} 1 live"])
            extra = statistics.median(results["list"][f"{where} 200 live"]) - one
            print(f"{where} 200 live - 1 live: {extra * 1000:+.1f} ms")
    if args.part in ("sidebar", "all"):
        results["sidebar"] = sidebar(args.trials)
        for mode, series in results["sidebar"].items():
            for what, values in series.items():
                print(f"{mode} {what:>6}: median {statistics.median(values):.2f} s  max {max(values):.2f} s  "
                      f"all {', '.join(f'{v:.2f}' for v in values)}")  # fmt: skip
        push = statistics.median(results["sidebar"]["push"]["card"])
        poll = statistics.median(results["sidebar"]["poll"]["card"])
        print(
            f"card after the magic returned: push {push:.2f} s vs poll {poll:.2f} s (ratio {poll / push:.1f}x)"
        )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
