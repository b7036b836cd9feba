"""Right-sizing from what was measured: per pipeline step, and for a cluster at its end. Pure.

A step's ``cost`` (run.json) holds what it held (``held``: GPUs, the memory limit it
ran under) and what it used (peak memory of its kernel, its GPUs' peak utilisation).
From those: "step train used at most 3.1 GiB and 0.8 GPU; it asked for 16 GiB and 1 GPU:
memory: 4 GiB would do". Expansions of a grid step (``train[lr=0.1]``) are one step here:
the largest of their peaks counts, as one ``memory``/``resources`` serves them all.
"""

from __future__ import annotations

import math
from typing import Any

from .efficiency import GIB

HEADROOM = 1.25  # above the measured peak: allocations vary from run to run
MEMORY_STEP = 0.25 * GIB  # suggestions in quarter GiB
GPU_STEP = 0.25  # fractional GPU resources in quarters (Dask resources are numbers)


def _round_up(value: float, step: float) -> float:
    return max(step, math.ceil(value / step) * step)


def _gib(n: float) -> str:
    return f"{n / GIB:.2f}".rstrip("0").rstrip(".") + " GiB"


def base_name(step: str) -> str:
    return step.split("[", 1)[0]


def step_suggestions(steps: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One suggestion per step (grid expansions together) that ran and was measured."""
    grouped: dict[str, dict[str, Any]] = {}
    for name, step in steps.items():
        cost = step.get("cost")
        if step.get("status") != "ok" or not isinstance(cost, dict) or "peak_memory" not in cost:
            continue
        seen = grouped.setdefault(
            base_name(name), {"peak_memory": 0, "memory_limit": None, "gpu_peak": None, "gpus": 0}
        )
        seen["peak_memory"] = max(seen["peak_memory"], int(cost.get("peak_memory") or 0))
        seen["memory_limit"] = cost.get("memory_limit") or seen["memory_limit"]
        gpus = float((cost.get("held") or {}).get("gpus") or 0.0)
        seen["gpus"] = max(seen["gpus"], gpus)
        if cost.get("gpu_peak") is not None:
            seen["gpu_peak"] = max(seen["gpu_peak"] or 0.0, float(cost["gpu_peak"]))
    return [s for name, seen in grouped.items() if (s := _suggest(name, seen))]


def _suggest(name: str, seen: dict[str, Any]) -> dict[str, Any] | None:
    peak, limit = seen["peak_memory"], seen["memory_limit"]
    if not peak:
        return None
    used = [_gib(peak)]
    asked = [f"{_gib(limit)} memory limit"] if limit else []
    suggest: dict[str, Any] = {}
    memory = _round_up(peak * HEADROOM, MEMORY_STEP)
    if limit and (memory * 2 <= limit or peak >= 0.9 * limit):
        suggest["memory"] = _gib(memory).replace(" ", "")  # as a pipeline.yaml size: 4GiB
    gpus, gpu_peak = seen["gpus"], seen["gpu_peak"]
    if gpus:
        asked.append(f"{gpus:g} GPU")
        if gpu_peak is not None:
            used.append(f"{gpu_peak:.2g} GPU")
            wanted = 0.0 if gpu_peak == 0 else _round_up(gpu_peak * HEADROOM, GPU_STEP)
            if wanted < gpus:
                suggest["resources"] = {"GPU": wanted} if wanted else {}
    text = f"step {name} used at most {' and '.join(used)}"
    if asked:
        text += f"; it held {' and '.join(asked)}"
    if suggest:
        asks = []
        if "memory" in suggest:
            asks.append(f"memory: {suggest['memory']}")
        if "resources" in suggest:
            asks.append(
                f"resources: {{GPU: {suggest['resources']['GPU']:g}}}"
                if suggest["resources"]
                else "no GPU resource (it used none)"
            )
        text += f": {' and '.join(asks)} would do"
    else:
        text += ": well sized"
    return {
        "step": name,
        "peak_memory": peak,
        "memory_limit": limit,
        "gpu_peak": gpu_peak,
        "gpus": gpus,
        "suggest": suggest,
        "text": text,
    }


def cluster_suggestion(cost: dict[str, Any] | None) -> str | None:
    """``peak 2 of 8 workers busy; ...`` for a cluster at its end (history)."""
    if not isinstance(cost, dict) or cost.get("peak_busy_workers") is None:
        return None
    busy = int(cost.get("peak_busy_workers") or 0)
    workers = int(cost.get("peak_workers") or 0)
    if not workers:
        return f"peak {busy} workers busy"
    text = f"peak {busy} of {workers} workers busy"
    if busy < workers:
        text += f"; {max(busy, 1)} would have done (or --adapt 0:{workers})"
    return text


def run_used_text(data: dict[str, Any]) -> str:
    """A run's measured use and its steps' right-sizing in one line (the report's "used" row)."""
    from .efficiency import efficiency_line

    parts = [efficiency_line(data.get("cost")) or "not measured"]
    parts += [s.get("text") or "" for s in data.get("suggestions") or ()]
    return "; ".join(p for p in parts if p)
