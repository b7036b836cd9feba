"""Hardware inventory: NVIDIA GPUs (MIG slices too), TPUs, CPU and RAM.

GPUs are read through NVML (nvidia-ml-py, imported as ``pynvml``), which talks
to the driver without creating a CUDA context, so taking the inventory never
claims memory on a card and never fixes which devices a later JAX or CuPy
session sees. Nothing here raises on a machine without a GPU: the GPU list is
empty and ``gpu_note`` says why.

``inventory()`` returns the JSON-able dict that the CLI (``--json``), the magic
and the REST API (``GET aiinfra/api/devices``) share; ``probe()`` returns the
same data wrapped for display.
"""

from __future__ import annotations

import glob
import html
import os
import platform
import socket
from dataclasses import dataclass
from typing import Any

from .nvml import nvml_call, text

SCHEMA = "aiinfra.devices/1"

# PCI vendor id of Google: TPU chips show up under it on TPU VMs.
_GOOGLE_PCI_VENDOR = "0x1ae0"
_TPU_ENV = ("TPU_ACCELERATOR_TYPE", "TPU_NAME", "TPU_WORKER_ID", "COLAB_TPU_ADDR")


def _mig_slices(pynvml: Any, handle: Any) -> list[dict[str, Any]]:
    count = nvml_call(pynvml.nvmlDeviceGetMaxMigDeviceCount, handle) or 0
    slices = []
    for i in range(count):
        mig = nvml_call(pynvml.nvmlDeviceGetMigDeviceHandleByIndex, handle, i)
        if mig is None:  # an empty slot: no instance was created there
            continue
        mem = nvml_call(pynvml.nvmlDeviceGetMemoryInfo, mig)
        slices.append(
            {
                "index": i,
                "uuid": text(nvml_call(pynvml.nvmlDeviceGetUUID, mig)),
                "name": text(nvml_call(pynvml.nvmlDeviceGetName, mig)),
                "gpu_instance": nvml_call(pynvml.nvmlDeviceGetGpuInstanceId, mig),
                "compute_instance": nvml_call(pynvml.nvmlDeviceGetComputeInstanceId, mig),
                "memory_total": mem.total if mem else None,
                "memory_used": mem.used if mem else None,
            }
        )
    return slices


def _gpu_record(pynvml: Any, index: int) -> dict[str, Any]:
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    mem = nvml_call(pynvml.nvmlDeviceGetMemoryInfo, handle)
    util = nvml_call(pynvml.nvmlDeviceGetUtilizationRates, handle)
    power_mw = nvml_call(pynvml.nvmlDeviceGetPowerUsage, handle)
    limit_mw = nvml_call(pynvml.nvmlDeviceGetEnforcedPowerLimit, handle)
    capability = nvml_call(pynvml.nvmlDeviceGetCudaComputeCapability, handle)
    mig_mode = nvml_call(pynvml.nvmlDeviceGetMigMode, handle)
    mig_on = bool(mig_mode and mig_mode[0] == pynvml.NVML_DEVICE_MIG_ENABLE)
    return {
        "index": index,
        "uuid": text(nvml_call(pynvml.nvmlDeviceGetUUID, handle)),
        "name": text(nvml_call(pynvml.nvmlDeviceGetName, handle)),
        "memory_total": mem.total if mem else None,
        "memory_used": mem.used if mem else None,
        "utilization": util.gpu if util else None,
        "memory_utilization": util.memory if util else None,
        "temperature": nvml_call(pynvml.nvmlDeviceGetTemperature, handle, 0),
        "power_watts": power_mw / 1000 if power_mw is not None else None,
        "power_limit_watts": limit_mw / 1000 if limit_mw is not None else None,
        "compute_capability": ".".join(map(str, capability)) if capability else None,
        "mig_enabled": mig_on,
        "mig": _mig_slices(pynvml, handle) if mig_on else [],
    }


def probe_gpus() -> tuple[list[dict[str, Any]], dict[str, Any], str | None]:
    """GPU records, driver facts and, when the list is empty, the reason."""
    driver: dict[str, Any] = {"driver_version": None, "cuda_version": None}
    try:
        import pynvml
    except ImportError:
        return [], driver, "nvidia-ml-py is not installed, so GPUs cannot be probed"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return [], driver, f"no NVIDIA driver found (NVML: {exc})"
    try:
        driver["driver_version"] = text(nvml_call(pynvml.nvmlSystemGetDriverVersion))
        cuda = nvml_call(pynvml.nvmlSystemGetCudaDriverVersion)
        if cuda:
            driver["cuda_version"] = f"{cuda // 1000}.{cuda % 1000 // 10}"
        count = pynvml.nvmlDeviceGetCount()
        gpus = [_gpu_record(pynvml, i) for i in range(count)]
    except pynvml.NVMLError as exc:
        return [], driver, f"NVML failed while listing GPUs: {exc}"
    finally:
        nvml_call(pynvml.nvmlShutdown)
    return gpus, driver, None if gpus else "the NVIDIA driver reports no GPUs"


def _jax_tpus() -> list[dict[str, Any]]:
    """TPU devices from JAX, only when JAX already started its backend.

    Starting a backend here would fix JAX's settings before the user's
    ``%aiinfra jax`` could apply them, so an unstarted JAX is left alone.
    """
    from ..jax.started import backend_started

    try:
        if not backend_started():
            return []
        import jax

        return [
            {"id": d.id, "kind": d.device_kind, "process": d.process_index}
            for d in jax.devices()
            if d.platform == "tpu"
        ]
    except Exception:  # noqa: BLE001 - an inventory never fails on a probe
        return []


def probe_tpus() -> tuple[list[dict[str, Any]], dict[str, Any], str | None]:
    """TPU chips from PCI, device files, environment and an already-started JAX."""
    chips = []
    for vendor_file in sorted(glob.glob("/sys/bus/pci/devices/*/vendor")):
        try:
            with open(vendor_file) as fh:
                if fh.read().strip() != _GOOGLE_PCI_VENDOR:
                    continue
        except OSError:
            continue
        chips.append({"pci": os.path.basename(os.path.dirname(vendor_file))})
    env = {k: os.environ[k] for k in _TPU_ENV if os.environ.get(k)}
    files = sorted(glob.glob("/dev/accel*"))
    jax_devices = _jax_tpus()
    tpus: list[dict[str, Any]] = jax_devices or chips or [{"device_file": f} for f in files]
    facts = {"tpu_env": env, "tpu_device_files": files}
    if tpus:
        return tpus, facts, None
    if env:
        return [], facts, "TPU environment variables are set but no TPU chip is visible"
    return [], facts, "no TPU chips (no Google PCI devices or /dev/accel* files)"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def probe_cpu() -> dict[str, Any]:
    # psutil is imported here, not at the top: a JAX session probes GPUs only and
    # should not pay for it at start-up.
    import psutil

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity masks
        usable = psutil.cpu_count(logical=True)
    return {
        "model": _cpu_model(),
        "architecture": platform.machine(),
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cores": psutil.cpu_count(logical=True),
        "usable_cores": usable,
    }


def probe_memory() -> dict[str, Any]:
    import psutil

    vm = psutil.virtual_memory()
    return {"total": vm.total, "available": vm.available}


def inventory() -> dict[str, Any]:
    """What this machine has, as the JSON-able record shared by every door."""
    gpus, driver, gpu_note = probe_gpus()
    tpus, tpu_facts, tpu_note = probe_tpus()
    return {
        "schema": SCHEMA,
        "host": socket.gethostname(),
        "gpus": gpus,
        "gpu_note": gpu_note,
        **driver,
        "tpus": tpus,
        "tpu_note": tpu_note,
        **tpu_facts,
        "cpu": probe_cpu(),
        "memory": probe_memory(),
    }


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _cell(value: Any, suffix: str = "") -> str:
    return "-" if value is None else f"{value}{suffix}"


@dataclass
class Inventory:
    """An inventory for display: HTML in notebooks, a text table elsewhere."""

    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def gpu_rows(self) -> list[list[str]]:
        rows = []
        for g in self.data["gpus"]:
            used = f"{_size(g['memory_used'])} / {_size(g['memory_total'])}"
            rows.append(
                [
                    str(g["index"]),
                    _cell(g["name"]),
                    used,
                    _cell(g["utilization"], "%"),
                    _cell(g["temperature"], " C"),
                    _cell(g["power_watts"], " W"),
                    f"{len(g['mig'])} slices" if g["mig_enabled"] else "off",
                ]
            )
            for m in g["mig"]:
                mem = f"{_size(m['memory_used'])} / {_size(m['memory_total'])}"
                rows.append([f"{g['index']}.{m['index']}", _cell(m["name"]), mem, "", "", "", ""])
        return rows

    def summary_lines(self) -> list[str]:
        d = self.data
        cpu, mem = d["cpu"], d["memory"]
        lines = [
            f"host: {d['host']}",
            f"cpu: {cpu['model']} ({cpu['physical_cores']} cores, "
            f"{cpu['logical_cores']} threads, {cpu['usable_cores']} usable)",
            f"memory: {_size(mem['available'])} available of {_size(mem['total'])}",
        ]
        if d["gpus"]:
            lines.append(
                f"gpus: {len(d['gpus'])} (driver {d['driver_version']}, CUDA {d['cuda_version']})"
            )
        else:
            lines.append(f"gpus: none; {d['gpu_note']}")
        if d["tpus"]:
            lines.append(f"tpus: {len(d['tpus'])}")
        else:
            lines.append(f"tpus: none; {d['tpu_note']}")
        return lines

    _HEAD = ["gpu", "name", "memory used/total", "util", "temp", "power", "MIG"]

    def __str__(self) -> str:
        lines = self.summary_lines()
        rows = self.gpu_rows()
        if rows:
            widths = [max(len(r[i]) for r in [self._HEAD, *rows]) for i in range(len(self._HEAD))]
            for r in [self._HEAD, *rows]:
                lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        esc = html.escape
        parts = ["<div class='aiinfra-devices'>"]
        parts += [f"<div>{esc(line)}</div>" for line in self.summary_lines()]
        rows = self.gpu_rows()
        if rows:
            head = "".join(f"<th>{esc(h)}</th>" for h in self._HEAD)
            body = "".join(
                "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        parts.append("</div>")
        return "".join(parts)


def probe() -> Inventory:
    """The inventory wrapped for display."""
    return Inventory(inventory())
