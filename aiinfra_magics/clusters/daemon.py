"""A detached process that owns one cluster (``aiinfra cluster start`` from a shell).

The parent (CLI or jupyter server) validates the spec first, then starts
``python -m aiinfra_magics.clusters.daemon`` in a new session and writes the spec
as JSON to its stdin: never in argv, which every local user can read in ``ps`` and
``/proc/PID/cmdline`` (a ``--job-script-prologue`` may export an API key). The
daemon starts the cluster, prints one JSON line on stdout (the record, or the
error) and then only writes to its log file. It lives until the cluster is
stopped, it gets SIGTERM/SIGINT, or ``--owner-pid`` dies.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

import psutil

from ..errors import InputError
from . import host
from .backends import get_backend
from .manager import ClusterManager
from .registry import Registry
from .spec import ClusterSpec

OWNER_POLL_S = 1.0


def _detach_output(log_path: str) -> None:
    """Point fds 1 and 2 at the log, so the parent's pipe closes and we keep no terminal."""
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    sys.stdout.flush()
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aiinfra-cluster-daemon")
    parser.add_argument("--owner-kind", default="cli")
    parser.add_argument("--owner-pid", type=int, default=None)
    parser.add_argument(
        "--registry", default=None, help="registry directory (default: AIINFRA_HOME)"
    )
    parser.add_argument(
        "--check", action="store_true", help="run the backend's checks first (the parent did not)"
    )
    args = parser.parse_args(argv)

    # The spec (ClusterSpec as JSON, backend resolved, name set) comes on stdin: argv is
    # world-readable. stdin is then pointed at /dev/null, as a detached process's should be.
    text = sys.stdin.read()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    registry = Registry(Path(args.registry) if args.registry else None)
    try:
        spec = ClusterSpec.from_options(json.loads(text))
        if args.check:
            get_backend(spec.backend).check(spec)
        launched, record = host.host(spec, args.owner_kind, registry)
    except InputError as exc:
        reply = {"ok": False, "usage": True, "error": str(exc), "field": exc.field}
        print(json.dumps(reply), flush=True)
        return 2
    except Exception as exc:  # OperationError keeps its field (e.g. sbatch refused --partition)
        field = getattr(exc, "field", None)
        print(
            json.dumps({"ok": False, "usage": False, "error": str(exc), "field": field}), flush=True
        )
        return 1
    # The cluster as shown, observed here where distributed is loaded: the parent (a CLI)
    # then prints it without importing distributed for one identity call (~0.5-1 s).
    try:
        shown = ClusterManager(registry)._info(record).to_dict()
    except Exception:  # the parent observes it itself
        shown = None
    reply = {"ok": True, "record": record, "info": shown, "notes": launched.notes}
    print(json.dumps(reply, default=str), flush=True)
    _detach_output(str(registry.root / f"{spec.name}.log"))

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    entry = host.hosted(spec.name)
    while not stop.is_set() and entry is not None and not entry.closed.is_set():
        if args.owner_pid is not None and not psutil.pid_exists(args.owner_pid):
            break
        stop.wait(OWNER_POLL_S)
    host.close(spec.name, registry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
