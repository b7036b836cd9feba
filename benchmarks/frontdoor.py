"""Front doors as whole processes against their peers, alternated in the same run (issue 24).

    python benchmarks/frontdoor.py [--repeat 5]

Each pair runs as fresh processes, ours and the peer in turn, ``--repeat`` times; the
script prints medians and the ratio against the aim:

- ``aiinfra --help``                       vs ``dask --help``                      <= 1.2x
- ``aiinfra cluster list`` (empty registry) vs ``dask --help``                      <= 1.2x
- ``aiinfra cluster list`` (1 live local cluster, its owner this script)
                                            vs ``dask --help``                      <= 1.2x
- IPython + ``%load_ext`` + first ``%aiinfra cluster list``
                                            vs IPython + ``import distributed``     <= 1.2x
- ``aiinfra pipeline run --help``           vs ``papermill --help``                 <= 0.5x
- ``jupyter server`` start (until ``api/status`` answers), extension enabled
                                            vs the same with it disabled            <= 1.1x
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

BIN = Path(sys.executable).parent
SHELL = (
    "from IPython.core.interactiveshell import InteractiveShell; s = InteractiveShell.instance()"
)
MAGIC = (
    SHELL
    + "; s.run_line_magic('load_ext', 'aiinfra_magics'); s.run_line_magic('aiinfra', 'cluster list')"
)  # noqa: E501
DISTRIBUTED = SHELL + "; import distributed"


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_start(enabled: bool, env: dict[str, str]) -> float:
    """Seconds from launch until the server answers ``api/status`` (then it is stopped)."""
    root = Path(tempfile.mkdtemp(prefix="aiinfra-bench-root-"))
    port = free_port()
    cmd = [
        sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", f"--port={port}",
        "--ip=127.0.0.1", f"--ServerApp.root_dir={root}", "--IdentityProvider.token=bench",
        f"--ServerApp.jpserver_extensions=aiinfra_magics={enabled}",
        f"--ServerApp.runtime_dir={root / 'rt'}",
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                url = f"http://127.0.0.1:{port}/api/status?token=bench"
                with urllib.request.urlopen(url, timeout=5):
                    return time.perf_counter() - t0
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError("jupyter server exited") from None
                time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(root, ignore_errors=True)


def pair(ours: Callable[[], float], peer: Callable[[], float], repeat: int) -> tuple[float, float]:
    ours(), peer()  # page the interpreter and packages in for both
    a, b = [], []
    for i in range(repeat):  # alternate which goes first, so neither always follows the other
        first, second = (ours, peer) if i % 2 == 0 else (peer, ours)
        x, y = first(), second()
        a.append(x if first is ours else y)
        b.append(y if first is ours else x)
    return statistics.median(a), statistics.median(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="aiinfra-bench-home-")
    env = {**os.environ, "AIINFRA_HOME": home, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    # A registry with one live cluster, owned (and its state published) by this process.
    live_home = tempfile.mkdtemp(prefix="aiinfra-bench-live-")
    live_env = {**env, "AIINFRA_HOME": live_home}
    from aiinfra_magics.clusters.manager import ClusterManager
    from aiinfra_magics.clusters.registry import Registry
    from aiinfra_magics.clusters.spec import ClusterSpec

    live = ClusterManager(Registry(Path(live_home) / "clusters"))
    live.start(ClusterSpec.from_options({"name": "live", "backend": "local", "workers": 1}))
    shown = subprocess.run(
        [str(BIN / "aiinfra"), "cluster", "list", "--json"], env=live_env, capture_output=True
    )
    assert '"status": "running"' in shown.stdout.decode(), shown  # what each timed call lists
    py = [sys.executable]
    cases = [
        ("aiinfra --help", [str(BIN / "aiinfra"), "--help"], [str(BIN / "dask"), "--help"],
         "dask --help", 1.2),
        ("aiinfra cluster list (empty)", [str(BIN / "aiinfra"), "cluster", "list"],
         [str(BIN / "dask"), "--help"], "dask --help", 1.2),
        ("aiinfra cluster list (1 live)", [str(BIN / "aiinfra"), "cluster", "list"],
         [str(BIN / "dask"), "--help"], "dask --help", 1.2),
        ("%load_ext + %aiinfra cluster list", [*py, "-c", MAGIC], [*py, "-c", DISTRIBUTED],
         "IPython + import distributed", 1.2),
        ("aiinfra pipeline run --help", [str(BIN / "aiinfra"), "pipeline", "run", "--help"],
         [str(BIN / "papermill"), "--help"], "papermill --help", 0.5),
    ]  # fmt: skip
    print(f"{'ours':36} {'s':>6}  {'peer':30} {'s':>6}  {'ratio':>6}  aim")
    rows = []
    for name, ours_cmd, peer_cmd, peer_name, aim in cases:
        ours_env = live_env if "live" in name else env
        o, p = pair(
            lambda c=ours_cmd, e=ours_env: timed(c, e),
            lambda c=peer_cmd: timed(c, env),
            args.repeat,
        )
        rows.append((name, o, peer_name, p, aim))
    live.stop("live")
    o, p = pair(lambda: server_start(True, env), lambda: server_start(False, env), args.repeat)
    rows.append(("jupyter server, extension on", o, "extension off", p, 1.1))
    for name, o, peer_name, p, aim in rows:
        ratio = o / p
        verdict = "met" if ratio <= aim else "NOT met"
        print(f"{name:36} {o:6.2f}  {peer_name:30} {p:6.2f}  {ratio:6.2f}  <= {aim} {verdict}")
    print(f"medians of {args.repeat}, alternated; load average {os.getloadavg()[0]:.2f}")
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(live_home, ignore_errors=True)


if __name__ == "__main__":
    main()
