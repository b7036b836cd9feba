"""What a run ran with: who started it, the Python environment, and the source commit.

Written into run.json as ``trigger``, ``environment`` and ``source`` once per run, so a
product can be traced back to them (``pipeline lineage``) and two runs compared
(``pipeline diff``). Kept cheap: listing every installed distribution through
importlib.metadata parses each one's METADATA (about 0.1 s for 200 of them here), so the
result is kept per interpreter and invalidated by the modification times of the
``sys.path`` folders, which change whenever pip adds or removes a distribution there.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..errors import field_error

TRIGGER_KINDS = ("manual", "lab", "schedule")
TRIGGER_ALLOWED = "manual, lab or schedule:NAME"
GIT_TIMEOUT_S = 5.0
#: Cached environments kept in the cache file (one per interpreter and sys.path state).
CACHE_ENTRIES = 8
CACHE_FILE = "environments.json"

_memo: dict[str, dict[str, Any]] = {}


def parse_trigger(value: str | dict[str, Any] | None) -> dict[str, Any]:
    """``manual`` / ``lab`` / ``schedule:NAME`` (or such a dict) -> ``{kind, schedule}``.

    Raises:
        InputError: naming ``--trigger`` when the kind is unknown or a schedule lacks its name.
    """
    if value is None:
        return {"kind": "manual", "schedule": None}
    if isinstance(value, dict):
        kind, schedule = value.get("kind"), value.get("schedule")
    elif isinstance(value, str):
        kind, _, schedule = value.partition(":")
        schedule = schedule or None
    else:
        raise field_error("--trigger", value, TRIGGER_ALLOWED)
    if kind not in TRIGGER_KINDS:
        raise field_error("--trigger", value, TRIGGER_ALLOWED)
    if kind == "schedule":
        ok = (
            isinstance(schedule, str)
            and schedule.strip()
            and len(schedule) <= 200
            and schedule.isprintable()
        )
        if not ok:
            raise field_error("--trigger", value, TRIGGER_ALLOWED + " (a schedule's name)")
    elif schedule is not None:
        raise field_error("--trigger", value, TRIGGER_ALLOWED + " (only schedule takes a name)")
    return {"kind": kind, "schedule": schedule}


def trigger_text(trigger: Any) -> str:
    """``schedule:nightly``, ``manual``; ``unknown`` for a record written before triggers."""
    if not isinstance(trigger, dict) or not trigger.get("kind"):
        return "unknown"
    return trigger["kind"] + (f":{trigger['schedule']}" if trigger.get("schedule") else "")


def canonical_name(name: str) -> str:
    """PEP 503: ``Ruamel_YAML`` and ``ruamel.yaml`` are the same distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def packages_hash(packages: dict[str, str]) -> str:
    """sha256 of the sorted ``name==version`` lines: equal hashes, equal package sets."""
    lines = "".join(f"{name}=={packages[name]}\n" for name in sorted(packages))
    return hashlib.sha256(lines.encode()).hexdigest()


def _path_state() -> list[Any]:
    """What decides the installed distributions: the interpreter and its path folders' mtimes."""
    state: list[Any] = [sys.executable, sys.version]
    for entry in sys.path:
        try:
            state.append([entry, os.stat(entry or ".").st_mtime_ns])
        except OSError:
            state.append([entry, None])
    return state


def installed_packages() -> dict[str, str]:
    """Every distribution importlib.metadata finds on sys.path: {canonical name: version}.

    The first one found wins, as for imports.
    """
    from importlib import metadata

    out: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            out.setdefault(canonical_name(name), dist.version)
    return dict(sorted(out.items()))


def environment(cache_dir: Path | None = None) -> dict[str, Any]:
    """``{python, platform, packages, packages_hash}`` of this interpreter.

    Kept in memory and (with ``cache_dir``) in a private file there, keyed by
    :func:`_path_state`; recomputed when any sys.path folder changed.
    """
    key = hashlib.sha256(json.dumps(_path_state()).encode()).hexdigest()
    if key in _memo:
        return _memo[key]
    cache = _read_cache(cache_dir)
    env = cache.get(key)
    if not _valid(env):
        packages = installed_packages()
        env = {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "packages": packages,
            "packages_hash": packages_hash(packages),
        }
        if cache_dir is not None:
            cache.pop(key, None)
            kept = dict(list(cache.items())[-(CACHE_ENTRIES - 1) :])
            _write_cache(cache_dir, {**kept, key: env})
    _memo[key] = env
    return env


def _valid(env: Any) -> bool:
    return (
        isinstance(env, dict)
        and isinstance(env.get("packages"), dict)
        and env.get("packages_hash") == packages_hash(env["packages"])
    )


def _read_cache(cache_dir: Path | None) -> dict[str, Any]:
    if cache_dir is None:
        return {}
    try:
        data = json.loads((cache_dir / CACHE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(cache_dir: Path, data: dict[str, Any]) -> None:
    from ..paths import atomic_write_text, private_dir

    try:
        atomic_write_text(private_dir(cache_dir) / CACHE_FILE, json.dumps(data))
    except OSError:  # a read-only home: the run goes on, the next one lists packages again
        pass


def source(folder: Path) -> dict[str, Any] | None:
    """``{commit, dirty}`` of the git repository holding ``folder``; None outside one
    (or without git). ``dirty``: tracked files differ from the commit (untracked ones do
    not count, or every run's own outputs would make it dirty)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
        )
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if status.returncode != 0:
        return {"commit": head.stdout.strip(), "dirty": None}
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def run_fields(folder: Path, trigger: dict[str, Any]) -> dict[str, Any]:
    """The lineage fields of a new run.json: trigger, environment, source (when in git)."""
    from ..paths import aiinfra_home

    try:
        cache_dir: Path | None = aiinfra_home()
    except OSError:
        cache_dir = None
    fields: dict[str, Any] = {"trigger": trigger, "environment": environment(cache_dir)}
    found = source(folder)
    if found is not None:
        fields["source"] = found
    return fields
