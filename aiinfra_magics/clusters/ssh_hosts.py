"""Where an SSH cluster's hosts come from besides ``--hosts``: a file, or a TPU VM slice.

``--hosts-from file:PATH`` reads one host per line (``#`` comments and blank lines are
skipped). ``--hosts-from tpu:NAME --zone Z [--project P]`` asks the Google Cloud CLI
(``gcloud compute tpus tpu-vm describe NAME --zone Z --format json``) for the slice's
workers: ``networkEndpoints[].ipAddress``, in the slice's own worker order, so host i
is TPU worker i. Those are VPC-internal addresses: run where they are reachable (a VM
in the same network, or the slice's worker 0).

Verified here: the file form, and the TPU form against a recorded ``describe`` reply
played by a stand-in ``gcloud``. Not verified here: a real TPU slice (none is reachable).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ..checks import as_word
from ..errors import InputError, OperationError, field_error

GCLOUD_TIMEOUT_S = 60.0
HOST_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}|\[?[0-9A-Fa-f:.]{2,45}\]?")
HOST_ALLOWED = "host names or addresses separated by commas, e.g. gpu1,gpu2 or 10.0.0.5"
SOURCES_ALLOWED = "file:PATH (one host per line) or tpu:NAME (with --zone)"
_TPU_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_ZONE = re.compile(r"[a-z]+-[a-z]+[0-9]+-[a-z]")
_PROJECT = re.compile(r"[a-z][-a-z0-9.:]{4,61}[a-z0-9]")
READY = "READY"


def check_hosts(value: str, field: str = "hosts") -> str:
    """``a,b,c`` -> the same, stripped; each one host name or address."""
    items = [item.strip() for item in str(value).split(",") if item.strip()]
    if not items:
        raise field_error(field, value, HOST_ALLOWED)
    for item in items:
        as_word(field, item, HOST_PATTERN, HOST_ALLOWED)
    return ",".join(item.strip("[]") for item in items)


def check_source(value: str) -> str:
    """``file:PATH`` or ``tpu:NAME``, checked for shape (nothing is read yet)."""
    kind, sep, rest = str(value).partition(":")
    if not sep or not rest.strip() or kind not in ("file", "tpu") or "\n" in rest:
        raise field_error("hosts-from", value, SOURCES_ALLOWED)
    if kind == "tpu" and not _TPU_NAME.fullmatch(rest):
        raise field_error("hosts-from", value, "tpu:NAME, a TPU name (lowercase, digits, '-')")
    return f"{kind}:{rest.strip() if kind == 'tpu' else rest}"


def check_zone(value: str) -> str:
    if not _ZONE.fullmatch(str(value)):
        raise field_error("zone", value, "a Google Cloud zone like us-central2-b")
    return value


def check_project(value: str) -> str:
    if not _PROJECT.fullmatch(str(value)):
        raise field_error("project", value, "a Google Cloud project id")
    return value


def hosts_from(source: str, zone: str | None = None, project: str | None = None) -> list[str]:
    """The hosts ``source`` names, in order, each checked as ``--hosts`` checks it.

    Raises:
        InputError: the file or the TPU cannot be read, or names no host (field hosts-from).
        OperationError: gcloud failed or the TPU is not ready.
    """
    kind, _, rest = source.partition(":")
    found = _from_file(rest) if kind == "file" else _from_tpu(rest, zone, project)
    if not found:
        raise InputError(f"hosts-from: {source} names no host", field="hosts_from")
    try:
        return check_hosts(",".join(found), field="hosts-from").split(",")
    except InputError as exc:
        raise InputError(f"{exc} (in {source})", field="hosts_from") from None


def _from_file(path: str) -> list[str]:
    try:
        text = Path(path).expanduser().read_text()
    except OSError as exc:
        raise InputError(
            f"hosts-from: cannot read {path} ({exc.strerror or exc})", field="hosts_from"
        ) from None
    hosts = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            hosts.append(line)
    return hosts


def gcloud_describe(name: str, zone: str, project: str | None = None) -> list[str]:
    """The command that describes a TPU VM (argv: nothing reaches a shell)."""
    argv = ["gcloud", "compute", "tpus", "tpu-vm", "describe", name, "--zone", zone]
    if project:
        argv += ["--project", project]
    return [*argv, "--format", "json"]


def _from_tpu(name: str, zone: str | None, project: str | None) -> list[str]:
    if not zone:
        raise InputError(
            "zone: required with --hosts-from tpu:NAME (e.g. --zone us-central2-b)", field="zone"
        )
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise InputError(
            "hosts-from: tpu: needs the Google Cloud CLI (gcloud not on PATH)", field="hosts_from"
        )
    argv = gcloud_describe(name, zone, project)
    try:
        done = subprocess.run(
            [gcloud, *argv[1:]], capture_output=True, text=True, timeout=GCLOUD_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise OperationError(
            f"hosts-from: gcloud did not answer within {GCLOUD_TIMEOUT_S:g}s", field="hosts_from"
        ) from None
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise OperationError(
            f"hosts-from: gcloud cannot describe TPU {name} in {zone}: {why}", field="hosts_from"
        )
    try:
        described: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        raise OperationError(
            f"hosts-from: gcloud's description of TPU {name} is not JSON", field="hosts_from"
        ) from None
    state = described.get("state")
    if state and state != READY:
        raise OperationError(
            f"hosts-from: TPU {name} is {state}, not {READY}; its hosts cannot take workers",
            field="hosts_from",
        )
    endpoints = described.get("networkEndpoints") or []
    return [str(e["ipAddress"]) for e in endpoints if isinstance(e, dict) and e.get("ipAddress")]
