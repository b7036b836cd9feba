"""Pictures and the standalone HTML report: the DAG as SVG (drawn here, no graphviz
binary needed), a timeline of the run, and links to every executed notebook."""

from __future__ import annotations

import datetime as dt
import html
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

from ..metrics.rightsize import run_used_text
from .cache import write_text_atomic
from .dag import Node, layers
from .provenance import trigger_text
from .record import COLOURS, RunRecord, cost_cells, hours

BOX_H, GAP_X, GAP_Y, PAD = 34, 56, 14, 12


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def dag_svg(
    nodes: Mapping[str, Node | SimpleNamespace], steps: dict[str, dict[str, Any]] | None = None
) -> str:
    """Left-to-right layered drawing; nodes coloured by status when a run is given."""
    steps = steps or {}
    depth = layers(nodes)
    columns: dict[int, list[str]] = {}
    for name in nodes:
        columns.setdefault(depth[name], []).append(name)
    widths = {c: max(110, *(int(7.4 * len(n)) + 24 for n in names)) for c, names in columns.items()}
    tallest = max(len(names) for names in columns.values())
    height = PAD * 2 + tallest * BOX_H + (tallest - 1) * GAP_Y
    pos: dict[str, tuple[float, float, int]] = {}
    x = PAD
    for c in sorted(columns):
        names = columns[c]
        used = len(names) * BOX_H + (len(names) - 1) * GAP_Y
        y = (height - used) / 2
        for name in names:
            pos[name] = (x, y, widths[c])
            y += BOX_H + GAP_Y
        x += widths[c] + GAP_X
    width = x - GAP_X + PAD
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="12">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#777"/></marker></defs>',
    ]
    for name, node in nodes.items():
        x2, y2, _ = pos[name]
        for up in node.upstream:
            x1, y1, w1 = pos[up]
            sx, sy, ey = x1 + w1, y1 + BOX_H / 2, y2 + BOX_H / 2
            mid = (sx + x2) / 2
            out.append(
                f'<path d="M {sx:.1f} {sy:.1f} C {mid:.1f} {sy:.1f}, {mid:.1f} {ey:.1f}, {x2:.1f} {ey:.1f}" '
                'fill="none" stroke="#777" stroke-width="1.2" marker-end="url(#arrow)"/>'
            )
    for name in nodes:
        x1, y1, w = pos[name]
        info = steps.get(name, {})
        status = info.get("status", "pending" if steps else "")
        fill, stroke = COLOURS.get(status, ("#ffffff", "#455a64"))
        tip = name + (f" - {status}" if status else "")
        if info.get("duration") is not None:
            tip += f" ({info['duration']:.2f} s)"
        out.append(
            f'<g class="node" data-name="{_esc(name)}"><title>{_esc(tip)}</title>'
            f'<rect x="{x1:.1f}" y="{y1:.1f}" width="{w}" height="{BOX_H}" rx="6" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="1.5"/>'
            f'<text x="{x1 + w / 2:.1f}" y="{y1 + BOX_H / 2 + 4:.1f}" text-anchor="middle">{_esc(name)}</text></g>'
        )
    out.append("</svg>")
    return "\n".join(out)


@dataclass
class Picture:
    """What ``pipeline plot`` returns: SVG shown inline in a notebook, a path in the shell."""

    svg: str
    path: Path | None = None

    def _repr_svg_(self) -> str:
        return self.svg

    def __str__(self) -> str:
        return f"wrote {self.path}" if self.path else self.svg


@dataclass
class ReportFile:
    path: Path

    def __str__(self) -> str:
        return str(self.path)

    def _repr_html_(self) -> str:
        return f'report: <a href="{_esc(self.path)}" target="_blank">{_esc(self.path)}</a>'


def _timeline(run: RunRecord) -> str:
    t0 = run.data["start"]
    total = max((run.data.get("end") or 0) - t0, 1e-6)
    rows = [(n, s) for n, s in run.steps.items() if s.get("start") and s.get("end")]
    if not rows:
        return "<p>No step ran in this run (all cached or skipped).</p>"
    label_w, bar_w, row_h = 170, 560, 20
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 70}" height="{row_h * len(rows) + 24}" font-family="sans-serif" font-size="11">'
    ]
    for i, (name, step) in enumerate(rows):
        y = i * row_h + 4
        x = label_w + bar_w * (step["start"] - t0) / total
        w = max(2.0, bar_w * (step["end"] - step["start"]) / total)
        _, stroke = COLOURS.get(step["status"], COLOURS["pending"])
        out.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{_esc(name)}</text>')
        out.append(
            f'<rect x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{row_h - 6}" fill="{stroke}" opacity="0.8"><title>{_esc(name)}: {step["end"] - step["start"]:.2f} s on {_esc(step.get("worker"))}</title></rect>'
        )
        out.append(
            f'<text x="{x + w + 4:.1f}" y="{y + 13}">{step["end"] - step["start"]:.2f} s</text>'
        )
    axis_y = row_h * len(rows) + 18
    out.append(
        f'<text x="{label_w}" y="{axis_y}">0 s</text><text x="{label_w + bar_w}" y="{axis_y}" text-anchor="end">{total:.2f} s</text></svg>'
    )
    return "\n".join(out)


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


def _total(cost: Any) -> str:
    """The run's cost line: what its steps held (GPU-, core-, memory GB-hours) and used (CPU)."""
    if not isinstance(cost, dict):
        return ""
    if not cost.get("steps"):
        return "nothing ran in this run (cached or skipped)"
    return (
        f"{hours(cost.get('gpu_hours'))} GPU-hours, {hours(cost.get('core_hours'))} core-hours, "
        f"{hours(cost.get('memory_gb_hours'))} memory GB-hours held; "
        f"{hours(cost.get('cpu_hours'))} CPU-hours used by the kernels "
        f"({cost['steps']} step{'s' if cost['steps'] != 1 else ''})"
    )


def _environment_row(env: Any) -> str:
    """Python, platform and the packages' hash, with every package in an expandable list."""
    if not isinstance(env, dict):
        return "<tr><th>environment</th><td>not recorded</td></tr>"
    packages = env.get("packages") if isinstance(env.get("packages"), dict) else {}
    items = "".join(f"<li>{_esc(n)} {_esc(v)}</li>" for n, v in packages.items())
    return (
        f"<tr><th>environment</th><td>Python {_esc(env.get('python'))} on "
        f"{_esc(env.get('platform'))}; packages sha256 <code>{_esc(env.get('packages_hash'))}</code>"
        f"<details class='packages'><summary>{len(packages)} packages</summary>"
        f"<ul>{items}</ul></details></td></tr>"
    )


def _mlflow_text(logged: dict[str, Any]) -> str:
    if logged.get("status") != "logged":
        return f"not logged to {logged.get('tracking_uri') or 'the default store'}: {logged.get('error')}"
    return (
        f"run {logged.get('run_id')} in experiment {logged.get('experiment')!r} "
        f"at {logged.get('tracking_uri') or 'the default store'}"
    )


def _lineage(run: RunRecord) -> str:
    """Per step: its parameters, code hash and each product's sha256 (what lineage matches)."""
    rows = []
    for name, step in run.steps.items():
        products = "".join(
            f"<div>{_esc(path)} <code>{_esc(sha or 'missing')}</code></div>"
            for path, sha in (step.get("product_sha256") or {}).items()
        )
        params = json.dumps(step.get("params") or {}, sort_keys=True, default=str)
        code = (step.get("hashes") or {}).get("code")
        rows.append(
            f"<tr><td>{_esc(name)}</td><td><code>{_esc(params)}</code></td><td><code>{_esc(code or '')}</code></td>"
            f"<td>{products}</td></tr>"
        )
    head = "<tr><th>step</th><th>parameters</th><th>code sha256</th><th>products (sha256)</th></tr>"
    return f"<table class='lineage'>{head}{''.join(rows)}</table>"


def record_graph(run: RunRecord) -> dict[str, Any]:
    """The DAG as the run saw it (the spec may have changed since)."""
    return {
        n: SimpleNamespace(upstream=tuple(s.get("upstream") or ())) for n, s in run.steps.items()
    }


def render_report(run: RunRecord, out_dir: Path) -> str:
    nodes = record_graph(run)
    data = run.data
    t0 = data["start"]
    rows = []
    for name, step in run.steps.items():
        link = ""
        if step.get("notebook"):
            url = "://" in step["notebook"]  # written to a papermill/fsspec URL (output:)
            target = (
                step["notebook"]
                if url
                else quote(os.path.relpath(run.folder / step["notebook"], out_dir))
            )
            name = step["notebook"].rsplit("/", 1)[-1]
            safe = not url or step["notebook"].startswith(("http://", "https://"))
            link = f'<a href="{_esc(target)}">{_esc(name)}</a>' if safe else _esc(step["notebook"])
        offset = f"{step['start'] - t0:.2f}" if step.get("start") else ""
        took = f"{step['duration']:.2f}" if step.get("duration") is not None else ""
        fill, stroke = COLOURS.get(step["status"], COLOURS["pending"])
        note = step.get("error") or step.get("reason") or ""
        rows.append(
            f"<tr><td>{_esc(name)}</td><td><span class='st' style='background:{fill};color:{stroke}'>"
            f"{_esc(step['status'])}</span></td><td>{offset}</td><td>{took}</td>"
            f"<td>{step.get('attempts') or ''}</td>"
            + "".join(f"<td>{_esc(c)}</td>" for c in cost_cells(step.get("cost")))
            + f"<td>{_esc(step.get('worker') or '')}</td>"
            f"<td>{_esc(', '.join(step.get('devices') or []))}</td><td>{link}</td><td>{_esc(note)}</td></tr>"
        )
    source = data.get("source") or data.get("git")  # "git": records before lineage
    meta = {
        "run": data["run_id"],
        "status": data["status"],
        "started": _when(data["start"]),
        "duration": f"{data['duration']:.2f} s" if data.get("duration") is not None else "",
        "cluster": json.dumps(data.get("cluster")),
        "cost": _total(data.get("cost")),
        "used": run_used_text(data),  # efficiency beside the cost, and right-sizing (issue 28)
        "trigger": trigger_text(data.get("trigger")),
        "source": (
            f"git {source.get('commit')}{' (with local changes)' if source.get('dirty') else ''}"
            if isinstance(source, dict)
            else "not in a git repository"
        ),
        "parameters": " ".join(data.get("params") or []) or "as in the spec",
        "versions": ", ".join(f"{k} {v}" for k, v in (data.get("versions") or {}).items() if v),
    }
    meta_rows = "".join(f"<tr><th>{k}</th><td>{_esc(v)}</td></tr>" for k, v in meta.items())
    meta_rows += _environment_row(data.get("environment"))
    if isinstance(data.get("mlflow"), dict):
        meta_rows += f"<tr><th>mlflow</th><td>{_esc(_mlflow_text(data['mlflow']))}</td></tr>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{_esc(data["pipeline"])} - run {_esc(data["run_id"])}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ text-align: left; padding: 4px 10px; border-bottom: 1px solid #e0e0e0; font-size: 13px; }}
.st {{ padding: 1px 6px; border-radius: 4px; font-weight: bold; }}
.meta th {{ color: #555; font-weight: normal; }}
code {{ font-size: 12px; }}
</style></head><body>
<h1>Pipeline {_esc(data["pipeline"])}</h1>
<table class="meta">{meta_rows}</table>
<h2>Steps</h2>
{dag_svg(nodes, run.steps)}
<h2>Timeline</h2>
{_timeline(run)}
<h2>Lineage</h2>
{_lineage(run)}
<h2>Details</h2>
<table><tr><th>step</th><th>status</th><th>start (s)</th><th>duration (s)</th><th>attempts</th>
<th>GPU-hours</th><th>core-hours</th><th>CPU-hours</th><th>worker</th><th>devices</th><th>executed notebook</th><th>note</th></tr>
{"".join(rows)}</table>
</body></html>
"""


def write_report(run: RunRecord, output: Path | None = None) -> Path:
    """Write the standalone report (default ``runs/<run_id>/report.html``) and return its path."""
    output = Path(output) if output else run.run_dir / "report.html"
    write_text_atomic(output, render_report(run, output.parent.resolve()))
    return output
