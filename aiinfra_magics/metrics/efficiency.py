"""Held against used: efficiency figures, waste warnings and right-sizing. Pure functions.

A cluster's cost report (clusters/cost.py) says what it held (core-, GPU-hours);
the metrics store says what was used (CPU seconds of the workers' process trees,
GPU-hours weighted by measured utilisation, peak memory). Here they meet:

- ``gpu_used_hours``: GPU-hours weighted by utilisation, never more than held;
- ``gpu_efficiency`` = used / held GPU-hours (None when no GPU was held or none measured);
- ``cpu_efficiency`` = CPU-hours used / core-hours held, capped at 1 (a kernel running
  numpy on every core of a one-thread worker uses more than its slot);
- ``peak_memory`` (bytes) against ``memory_limit`` (the worker's or the step's).

The same names serve a cluster (cost report, history, ``cluster status``) and a
pipeline step (``run.json``), so every door shows them alike.
"""

from __future__ import annotations

from typing import Any

EFFICIENCY_KEYS = (
    "cpu_used_hours",
    "gpu_used_hours",
    "cpu_efficiency",
    "gpu_efficiency",
    "peak_memory",
    "memory_limit",
    "peak_busy_workers",
    "warnings",
)
GIB = 2**30


def ratio(used: float | None, held: float | None) -> float | None:
    """used / held within [0, 1]; None when nothing was held or nothing measured."""
    if used is None or not held or held <= 0:
        return None
    return round(max(0.0, min(1.0, used / held)), 4)


def with_efficiency(figures: dict[str, Any], usage: dict[str, Any] | None) -> dict[str, Any]:
    """A cluster's cost report with the measured figures beside the held ones."""
    out = dict(figures)
    if not isinstance(usage, dict):
        return out
    core_h = float(figures.get("core_hours") or 0.0)
    gpu_h = float(figures.get("gpu_hours") or 0.0)
    cpu_used = float(usage.get("cpu_used_hours") or 0.0)
    measured = float(usage.get("gpu_measured_hours") or 0.0)
    gpu_used = min(float(usage.get("gpu_used_hours") or 0.0), gpu_h)
    out["cpu_used_hours"] = cpu_used
    out["cpu_efficiency"] = ratio(cpu_used, core_h)
    out["gpu_used_hours"] = gpu_used
    out["gpu_efficiency"] = ratio(gpu_used, gpu_h) if measured > 0 else None
    out["peak_memory"] = int(usage.get("peak_memory") or 0)
    out["memory_limit"] = int(usage.get("peak_memory_limit") or 0) or None
    out["peak_memory_fraction"] = usage.get("peak_memory_fraction")
    out["peak_busy_workers"] = int(usage.get("peak_busy_workers") or 0)
    out["peak_workers"] = int(usage.get("peak_workers") or 0)
    out["gpu_utilization_now"] = usage.get("gpu_utilization_now")
    out["waste"] = usage.get("waste")
    out["warnings"] = waste_warnings(usage.get("waste"), figures)
    return out


def duration(seconds: float) -> str:
    """``42s``, ``15m 3s``, ``2h 5m``: for lines a person reads."""
    seconds = int(round(max(0.0, seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60}s" if seconds % 60 else f"{seconds // 60}m"
    return f"{seconds // 3600}h {seconds % 3600 // 60}m"


def waste_warnings(waste: dict[str, Any] | None, figures: dict[str, Any]) -> list[str]:
    """One line when held GPUs stayed under the threshold for the whole window."""
    if not isinstance(waste, dict) or not waste.get("wasteful"):
        return []
    gpus = (figures.get("now") or {}).get("gpus")
    held = f"{gpus:g} GPU(s)" if isinstance(gpus, (int, float)) and gpus else "its GPUs"
    return [
        f"wasteful: {held} held under {waste['threshold']:g}% utilisation for "
        f"{duration(waste.get('low_for') or 0)} (window {duration(waste['window'])}); "
        "stop or scale it down, or start it with --stop-when-wasteful"
    ]


def wasteful(report: dict[str, Any] | None) -> str | None:
    """The reason to stop a cluster started with ``--stop-when-wasteful``; None while it is not."""
    waste = (report or {}).get("waste")
    if not isinstance(waste, dict) or not waste.get("wasteful"):
        return None
    return (
        f"wasteful: GPUs under {waste['threshold']:g}% utilisation for "
        f"{duration(waste.get('low_for') or 0)} (--stop-when-wasteful)"
    )


def step_efficiency(
    figures: dict[str, Any],
    cpu_seconds: float,
    gpu_mean: float | None,
    peak_rss: int | None,
    memory_limit: int | None,
    gpu_peak: float | None = None,
) -> dict[str, Any]:
    """A step's figures beside what it held (``figures``: its core- and GPU-hours); ``gpu_mean``
    and ``gpu_peak``: its worker's GPUs' utilisation (0-1) while it ran."""
    gpu_h = float(figures.get("gpu_hours") or 0.0)
    gpu_used = gpu_h * gpu_mean if gpu_mean is not None else None
    held = (figures.get("held") or {}).get("gpus") or 0.0
    return {
        "cpu_efficiency": ratio(cpu_seconds / 3600.0, float(figures.get("core_hours") or 0.0)),
        "gpu_used_hours": round(gpu_used, 9)
        if gpu_used is not None
        else (0.0 if not gpu_h else None),
        "gpu_efficiency": ratio(gpu_used, gpu_h),
        "gpu_utilization": None if gpu_mean is None or not held else round(gpu_mean * 100.0, 1),
        # At most this many GPUs' worth busy at once (0.8 of one: 80 % at the peak).
        "gpu_peak": None if gpu_peak is None or not held else round(gpu_peak * held, 3),
        "peak_memory": int(peak_rss or 0),
        "memory_limit": int(memory_limit) if memory_limit else None,
    }


def combined(cost: dict[str, Any], parts: list[dict[str, Any]]) -> dict[str, Any]:
    """``cost`` (figures already summed over ``parts``: attempts of a step, or a run's steps)
    with the measured figures of the parts combined: used GPU-hours add up (unknown if any
    part that held GPUs was not measured), efficiencies are recomputed from the sums, the
    peak memory is the largest part's, with that part's limit."""
    measured = [p for p in parts if isinstance(p, dict) and "cpu_efficiency" in p]
    if not measured:
        return cost
    out = dict(cost)
    gpu_h = float(out.get("gpu_hours") or 0.0)
    unknown = any(p.get("gpu_used_hours") is None and p.get("gpu_hours") for p in measured)
    used = None if unknown else sum(float(p.get("gpu_used_hours") or 0.0) for p in measured)
    out["gpu_used_hours"] = None if used is None else round(min(used, gpu_h), 9)
    out["gpu_efficiency"] = ratio(out["gpu_used_hours"], gpu_h)
    out["cpu_efficiency"] = ratio(out.get("cpu_hours"), out.get("core_hours"))
    peaks = [p["gpu_peak"] for p in measured if p.get("gpu_peak") is not None]
    if peaks:
        out["gpu_peak"] = max(peaks)
    peak = max(measured, key=lambda p: int(p.get("peak_memory") or 0))
    out["peak_memory"] = int(peak.get("peak_memory") or 0)
    out["memory_limit"] = peak.get("memory_limit")
    return out


def efficiency_cells(cost: Any) -> list[str]:
    """CPU and GPU efficiency and the peak memory of a step, for the tables."""
    if not isinstance(cost, dict) or "cpu_efficiency" not in cost:
        return ["", "", ""]
    cpu, gpu = cost.get("cpu_efficiency"), cost.get("gpu_efficiency")
    return [
        "" if cpu is None else f"{cpu:.0%}",
        "" if gpu is None else f"{gpu:.0%}",
        gib(cost.get("peak_memory")) if cost.get("peak_memory") else "",
    ]


def efficiency_line(cost: dict[str, Any] | None) -> str | None:
    """``CPU 42% of 1.2 core-h; GPU 7% of 0.5 GPU-h; peak memory 3.1 GiB of 16 GiB``."""
    if not isinstance(cost, dict):
        return None
    parts = []
    if cost.get("cpu_efficiency") is not None:
        parts.append(
            f"CPU {cost['cpu_efficiency']:.0%} of {cost.get('core_hours') or 0:.3f} core-h"
        )
    if cost.get("gpu_hours"):
        eff = cost.get("gpu_efficiency")
        parts.append(
            f"GPU {eff:.0%} of {cost['gpu_hours']:.3f} GPU-h"
            if eff is not None
            else f"GPU not measured ({cost['gpu_hours']:.3f} GPU-h held)"
        )
    if cost.get("peak_memory"):
        limit = cost.get("memory_limit")
        of = f" of {gib(limit)}" if limit else ""
        parts.append(f"peak memory {gib(cost['peak_memory'])}{of}")
    return "; ".join(parts) or None


def gib(n: float | None) -> str:
    return "-" if not n else f"{n / GIB:.1f} GiB"
