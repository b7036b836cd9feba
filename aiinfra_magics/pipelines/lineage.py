"""Which run made this file, and what changed between two runs.

Both read only run records (``runs/<run_id>/run.json``): each step's parameters and
hashes (code, upstream products, inputs), the sha256 of each product it wrote, and the
run's trigger, environment and source (see provenance.py).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, OperationError
from .cache import file_hash
from .provenance import trigger_text

LAST = re.compile(r"last(?:~(\d+))?")


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


# -- diff ---------------------------------------------------------------------------------


def load_run(ref: str, pipeline: str | Path | None, field: str) -> tuple[dict[str, Any], str]:
    """A run record from a path (run folder or run.json) or a run id, ``last``, ``last~N``
    or a unique prefix of an id under the pipeline folder; returns (record, where).

    Raises:
        NotFoundError: naming ``field`` when nothing or more than one run matches.
    """
    path = Path(ref).expanduser()
    if path.is_dir():
        path = path / "run.json"
    if path.is_file():
        record = _read(path)
        if record is None:
            raise NotFoundError(f"{field}: {ref} is not a run record (run.json)", field=field)
        return record, str(path.resolve())
    folder = _folder_of(pipeline, Path.cwd(), field)
    ids = run_ids(folder)
    last = LAST.fullmatch(ref)
    if last:
        back = int(last.group(1) or 0)
        chosen = [ids[back]] if back < len(ids) else []
    else:
        chosen = [ref] if ref in ids else [i for i in ids if i.startswith(ref)]
    if len(chosen) != 1:
        shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        got = "several runs" if chosen else "no run"
        raise NotFoundError(
            f"{field}: {ref!r} names {got} under {folder / 'runs'}; allowed: a run id or "
            f"unique prefix ({shown or 'none yet'}), last, last~N, or a run.json path",
            field=field,
        )
    where = folder / "runs" / chosen[0] / "run.json"
    record = _read(where)
    if record is None:
        raise NotFoundError(f"{field}: {where} is not a readable run record", field=field)
    return record, str(where)


def _changes(a: Any, b: Any) -> dict[str, list[Any]]:
    """{key: [a, b]} for every key whose value differs (missing: None)."""
    a = a if isinstance(a, dict) else {}
    b = b if isinstance(b, dict) else {}
    return {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def _flat_upstream(hashes: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for up, products in (hashes.get("upstream") or {}).items():
        for product, sha in (products or {}).items():
            out[f"{up}:{product}"] = sha
    return out


def packages_diff(a: Any, b: Any) -> dict[str, Any]:
    """Packages added, removed and changed (version a -> b) between two environments."""
    pa = (a or {}).get("packages") if isinstance(a, dict) else None
    pb = (b or {}).get("packages") if isinstance(b, dict) else None
    pa, pb = pa if isinstance(pa, dict) else {}, pb if isinstance(pb, dict) else {}
    return {
        "added": {k: pb[k] for k in sorted(set(pb) - set(pa))},
        "removed": {k: pa[k] for k in sorted(set(pa) - set(pb))},
        "changed": {k: [pa[k], pb[k]] for k in sorted(set(pa) & set(pb)) if pa[k] != pb[k]},
    }


def _step_diff(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any]:
    if a is None or b is None:
        return {"only_in": "b" if a is None else "a"}
    out: dict[str, Any] = {}
    if a.get("status") != b.get("status"):
        out["status"] = [a.get("status"), b.get("status")]
    if params := _changes(a.get("params"), b.get("params")):
        out["params"] = params
    ha, hb = a.get("hashes"), b.get("hashes")
    if isinstance(ha, dict) and isinstance(hb, dict):  # both were checked against the cache
        for key in ("code", "kernel"):
            if ha.get(key) != hb.get(key):
                out[key] = [ha.get(key), hb.get(key)]
        if upstream := _changes(_flat_upstream(ha), _flat_upstream(hb)):
            out["upstream"] = upstream
        if inputs := _changes(ha.get("inputs"), hb.get("inputs")):
            out["inputs"] = inputs
    pa, pb = a.get("product_sha256"), b.get("product_sha256")
    if isinstance(pa, dict) and isinstance(pb, dict) and (products := _changes(pa, pb)):
        out["products"] = products
    return out


@dataclass
class RunDiff:
    """What ``pipeline diff RUN_A RUN_B`` returns."""

    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.data

    @property
    def same(self) -> bool:
        return self.data["same"]

    def __str__(self) -> str:
        d = self.data
        a, b = d["a"], d["b"]
        lines = [
            f"A  {a['run_id']}  {a.get('status')}  {trigger_text(a.get('trigger'))}  "
            f"{a.get('start') or ''}",
            f"B  {b['run_id']}  {b.get('status')}  {trigger_text(b.get('trigger'))}  "
            f"{b.get('start') or ''}",
        ]
        if d["same"]:
            lines.append(
                "no differences in trigger, source, environment, parameters, code, "
                "upstream products or products"
            )
            return "\n".join(lines)
        if d.get("trigger"):
            lines.append(f"trigger: {' -> '.join(trigger_text(t) for t in d['trigger'])}")
        if d.get("source"):
            lines.append("source: " + " -> ".join(_source_text(s) for s in d["source"]))
        env = d.get("environment") or {}
        for key in ("python", "platform"):
            if key in env:
                lines.append(f"{key}: {env[key][0]} -> {env[key][1]}")
        pk = env.get("packages")
        if pk:
            counts = ", ".join(f"{len(pk[k])} {k}" for k in ("changed", "added", "removed"))
            lines.append(f"packages: {counts}")
            lines += [f"  ~ {n} {v[0]} -> {v[1]}" for n, v in pk["changed"].items()]
            lines += [f"  + {n} {v}" for n, v in pk["added"].items()]
            lines += [f"  - {n} {v}" for n, v in pk["removed"].items()]
        for name, step in d["steps"].items():
            if "only_in" in step:
                lines.append(f"step {name}: only in {step['only_in'].upper()}")
                continue
            lines.append(f"step {name}:")
            if "status" in step:
                lines.append(f"  status: {step['status'][0]} -> {step['status'][1]}")
            for key, (va, vb) in (step.get("params") or {}).items():
                lines.append(f"  param {key}: {_value(va)} -> {_value(vb)}")
            for key in ("code", "kernel"):
                if key in step:
                    va, vb = step[key]
                    shown = (short(va), short(vb)) if key == "code" else (va, vb)
                    lines.append(f"  {key}: {shown[0]} -> {shown[1]}")
            for key, label in (
                ("upstream", "upstream"),
                ("inputs", "input"),
                ("products", "product"),
            ):
                for path, (va, vb) in (step.get(key) or {}).items():
                    lines.append(f"  {label} {path}: {short(va)} -> {short(vb)}")
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


def _value(v: Any) -> str:
    return "(unset)" if v is None else json.dumps(v)


def _source_text(src: Any) -> str:
    if not isinstance(src, dict):
        return "not in git"
    return short(src.get("commit")) + (" (dirty)" if src.get("dirty") else "")


def _side(record: dict[str, Any], where: str) -> dict[str, Any]:
    env = record.get("environment") or {}
    return {
        "run_id": record.get("run_id"),
        "pipeline": record.get("pipeline"),
        "status": record.get("status"),
        "start": _when(record.get("start")),
        "trigger": record.get("trigger"),
        "source": record.get("source"),
        "environment_hash": env.get("packages_hash"),
        "record": where,
    }


def diff_runs(run_a: str, run_b: str, pipeline: str | Path | None = None) -> RunDiff:
    """What changed from run ``run_a`` to run ``run_b`` (see :func:`load_run` for names).

    Raises:
        NotFoundError: naming RUN_A or RUN_B when a run cannot be found.
    """
    a, where_a = load_run(run_a, pipeline, "RUN_A")
    b, where_b = load_run(run_b, pipeline, "RUN_B")
    out: dict[str, Any] = {"a": _side(a, where_a), "b": _side(b, where_b)}
    for key in ("trigger", "source"):
        if a.get(key) != b.get(key):
            out[key] = [a.get(key), b.get(key)]
    ea, eb = a.get("environment") or {}, b.get("environment") or {}
    env: dict[str, Any] = {
        key: [ea.get(key), eb.get(key)]
        for key in ("python", "platform")
        if ea.get(key) != eb.get(key)
    }
    packages = packages_diff(ea, eb)
    if any(packages.values()):
        env["packages"] = packages
    if env:
        out["environment"] = env
    steps: dict[str, Any] = {}
    for name in [*a["steps"], *(n for n in b["steps"] if n not in a["steps"])]:
        change = _step_diff(a["steps"].get(name), b["steps"].get(name))
        if change:
            steps[name] = change
    out["steps"] = steps
    out["same"] = not (steps or env or "trigger" in out or "source" in out)
    return RunDiff(out)
