"""What changed between two runs (``pipeline diff RUN_A RUN_B``).

From the two run records alone: trigger, source commit, Python, packages, and per step
its parameters, code and kernel, the upstream products and inputs it read (their
sha256) and the products it wrote.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import NotFoundError
from .lineage import _folder_of, _read, _when, run_ids, short
from .provenance import trigger_text

LAST = re.compile(r"last(?:~(\d+))?")  # last, last~1: the newest run, the one before


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
