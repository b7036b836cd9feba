"""Which run made this file (``pipeline lineage``); finding runs for ``pipeline diff``.

Both read only run records (``runs/<run_id>/run.json``): each step's parameters and
hashes (code, upstream products, inputs), the sha256 of each product it wrote, and the
run's trigger, environment and source (see provenance.py).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, OperationError
from .cache import file_hash
from .provenance import trigger_text


def short(digest: Any, n: int = 12) -> str:
    return digest[:n] if isinstance(digest, str) else "none"


def _when(ts: Any) -> str:
    if not isinstance(ts, (int, float)):
        return ""
    return dt.datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("steps"), dict) else None


def pipeline_folder(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` with a ``runs/`` folder of run records."""
    for folder in (start, *start.parents):
        runs = folder / "runs"
        if runs.is_dir() and any(runs.glob("*/run.json")):
            return folder
    return None


def _folder_of(pipeline: str | Path | None, start: Path, field: str) -> Path:
    if pipeline is not None:
        path = Path(pipeline).expanduser().resolve()
        if path.is_file():
            return path.parent
        if path.is_dir():
            return path
        raise NotFoundError(
            f"--pipeline: got {str(pipeline)!r}; allowed: a pipeline.yaml or its folder",
            field="--pipeline",
        )
    found = pipeline_folder(start)
    if found is None:
        raise NotFoundError(
            f"{field}: no runs/ folder with run records at or above {start}; "
            "allowed: a file or run of a pipeline that has run, or --pipeline FILE",
            field=field,
        )
    return found


def run_ids(folder: Path) -> list[str]:
    """The run ids under ``folder/runs``, newest first (ids sort by start time)."""
    runs = folder / "runs"
    return sorted((p.parent.name for p in runs.glob("*/run.json")), reverse=True)


# -- lineage ------------------------------------------------------------------------------


@dataclass
class Lineage:
    """What ``pipeline lineage FILE`` returns: the run and step that made the file."""

    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def __str__(self) -> str:
        d = self.data
        env = d.get("environment") or {}
        params = d.get("params") or {}
        src = d.get("source")
        lines = [
            f"{d['file']} (sha256 {short(d['sha256'])}) was made by",
            f"  run          {d['run_id']} ({d.get('run_status')}, "
            f"{trigger_text(d.get('trigger'))}, started {d.get('run_start') or '?'})",
            f"  step         {d['step']}  ({d.get('notebook') or '?'})",
            f"  product      {d['product']}"
            + ("" if d.get("same_path") else "  (this file is a copy of it)"),
            "  parameters   "
            + (", ".join(f"{k}={json.dumps(v)}" for k, v in params.items()) or "none"),
            f"  code         sha256 {short(d.get('code_hash'))}",
            f"  environment  sha256 {short(d.get('environment_hash'))}"
            + (
                f" (Python {env.get('python')}, {env.get('packages')} packages)"
                if env.get("packages") is not None
                else ""
            ),
            "  source       "
            + (
                f"git {short(src.get('commit'))}"
                + (" (with local changes)" if src.get("dirty") else "")
                if isinstance(src, dict)
                else "not in a git repository"
            ),
        ]
        if d.get("executed_notebook"):
            lines.append(f"  notebook     {d['executed_notebook']}")
        lines.append(f"  record       {d['record']}")
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


def lineage(file: str | Path, pipeline: str | Path | None = None) -> Lineage:
    """The newest run whose step wrote exactly the current content of ``file``.

    Runs are searched under the pipeline folder (``pipeline``, else the nearest folder
    above ``file`` with run records), newest first; among a run's steps, one that declares
    ``file``'s own path wins over one that wrote the same bytes elsewhere.

    Raises:
        NotFoundError: ``file`` does not exist, or no run records are found.
        OperationError: no run produced the file's current content.
    """
    path = Path(file).expanduser()
    if not path.exists():
        raise NotFoundError(f"FILE: got {str(file)!r}; allowed: an existing file", field="FILE")
    path = path.resolve()
    folder = _folder_of(pipeline, path.parent, "FILE")
    digest = file_hash(path)
    try:
        rel = os.path.normpath(path.relative_to(folder))
    except ValueError:
        rel = None
    last_written: tuple[str, str] | None = None  # newest run that wrote this path at all
    for run_id in run_ids(folder):
        record = _read(folder / "runs" / run_id / "run.json")
        if record is None:
            continue
        match = None
        for name, step in record["steps"].items():
            if step.get("status") != "ok":  # cached and skipped steps made nothing here
                continue
            for product, sha in (step.get("product_sha256") or {}).items():
                same_path = rel is not None and os.path.normpath(product) == rel
                if same_path and last_written is None:
                    last_written = (run_id, name)
                if sha == digest and (match is None or (same_path and not match[2])):
                    match = (name, product, same_path)
        if match:
            return Lineage(_found(folder, record, digest, path, *match))
    where = f"no run under {folder / 'runs'} produced the current content of {path}"
    where += f" (sha256 {short(digest)})"
    if last_written:
        where += (
            f"; it was last written by run {last_written[0]} step {last_written[1]} "
            "and has changed since"
        )
    else:
        where += "; no run recorded a product with this content or at this path"
    raise OperationError(where)


def _found(
    folder: Path,
    record: dict[str, Any],
    digest: str | None,
    path: Path,
    name: str,
    product: str,
    same_path: bool,
) -> dict[str, Any]:
    step = record["steps"][name]
    env = record.get("environment") or {}
    hashes = step.get("hashes") or {}
    return {
        "file": str(path),
        "sha256": digest,
        "pipeline": record.get("pipeline"),
        "folder": str(folder),
        "run_id": record["run_id"],
        "run_status": record.get("status"),
        "run_start": _when(record.get("start")),
        "trigger": record.get("trigger"),
        "step": name,
        "product": product,
        "same_path": same_path,
        "notebook": step.get("source"),
        "executed_notebook": step.get("notebook"),
        "params": step.get("params") or {},
        "code_hash": hashes.get("code"),
        "upstream": hashes.get("upstream") or {},
        "environment_hash": env.get("packages_hash"),
        "environment": {
            "python": env.get("python"),
            "platform": env.get("platform"),
            "packages": len(env["packages"]) if isinstance(env.get("packages"), dict) else None,
        },
        "source": record.get("source"),
        "record": str(folder / "runs" / record["run_id"] / "run.json"),
    }
