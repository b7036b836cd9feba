"""A JAX session configured before its backend starts.

JAX reads its platform, visible GPUs, CPU device count and GPU allocator
settings once, when the first ``jax.devices()`` (or first computation) starts a
backend; later changes are silently ignored. ``start_session`` therefore
validates everything, applies it (``jax.config`` for what JAX exposes there,
the ``XLA_*`` environment variables that jaxlib reads when it creates the GPU
client), and only then starts the backend. Asked again after start, it compares
the request with the running backend: equal settings are a no-op that shows the
session (and may build a new mesh, which is not a backend setting); different
ones are refused with the names of the settings that differ.
"""

from __future__ import annotations

import dataclasses
import html
import importlib.util
import os
from dataclasses import dataclass, field
from typing import Any

from .. import devices as hw
from ..errors import AiinfraError, OperationError
from .spec import BACKEND_FIELDS, GPU_ONLY_FIELDS, JaxSessionSpec, Mesh, format_mesh, mesh_size
from .started import backend_started

ENV_PREALLOCATE = "XLA_PYTHON_CLIENT_PREALLOCATE"
ENV_MEM_FRACTION = "XLA_CLIENT_MEM_FRACTION"
ENV_MEM_FRACTION_OLD = "XLA_PYTHON_CLIENT_MEM_FRACTION"  # jaxlib refuses both at once
ENV_ALLOCATOR = "XLA_PYTHON_CLIENT_ALLOCATOR"
ENV_NAMES = (ENV_PREALLOCATE, ENV_MEM_FRACTION, ENV_MEM_FRACTION_OLD, ENV_ALLOCATOR)
_JAX_PLATFORM = {"cpu": "cpu", "gpu": "cuda", "tpu": "tpu"}
_DEFAULT_AXIS = "data"

# The XLA_* environment as it was when the backend started: what jaxlib read.
_env_at_start: dict[str, str | None] | None = None


def _gpu_plugin_installed() -> bool:
    for name in (
        "jax_cuda12_plugin",
        "jax_cuda13_plugin",
        "jax_plugins.xla_cuda12",
        "jax_plugins.xla_cuda13",
    ):
        try:
            if importlib.util.find_spec(name) is not None:
                return True
        except ModuleNotFoundError:  # the jax_plugins namespace itself is absent
            continue
    return False


def _held_gpu_indices(gpus: list[dict[str, Any]]) -> set[int]:
    """Indices of GPUs held by Dask-CUDA clusters this process started."""
    try:
        from ..clusters import host

        held = host.gpus_held_here()
    except (ImportError, AttributeError):
        return set()
    out = set()
    for item in held:
        text = str(item)
        if text.isdigit():
            out.add(int(text))
        else:  # a UUID (or a MIG UUID prefix): find its index
            out.update(g["index"] for g in gpus if g["uuid"] and g["uuid"].startswith(text))
    return out


def share_gpus(
    spec: JaxSessionSpec, gpus: list[dict[str, Any]], held: set[int]
) -> tuple[JaxSessionSpec, list[str]]:
    """Keep JAX off GPUs that this kernel's Dask-CUDA clusters hold; returns notes to show.

    Pure (inventory records and held indices in, spec out), so the rule is
    checked on machines without GPUs too.
    """
    if not held or spec.platform not in (None, "gpu"):
        return spec, []
    names = ",".join(map(str, sorted(held)))
    if spec.devices is not None:
        overlap = sorted(held & set(spec.devices))
        if overlap and not spec.force:
            raise AiinfraError(
                f"devices: GPU {','.join(map(str, overlap))} is held by a Dask-CUDA cluster of this "
                "kernel; choose other GPUs or add --force to share them",
                field="devices",
            )
        if not overlap:
            return spec, []
    else:
        free = tuple(g["index"] for g in gpus if g["index"] not in held)
        if free and not spec.force:
            note = f"jax: using GPU {','.join(map(str, free))}; GPU {names} held by this kernel's Dask cluster"
            return dataclasses.replace(spec, devices=free, platform="gpu"), [note]
    if spec.preallocate is None:
        note = f"jax: sharing GPU {names} with this kernel's Dask cluster; preallocation turned off"
        return dataclasses.replace(spec, preallocate=False), [note]
    return spec, []


def _check_hardware(spec: JaxSessionSpec) -> int | None:
    """Refuse a platform this machine lacks, naming what was found; returns the GPU count."""
    if spec.platform == "tpu":
        tpus, _, note = hw.probe_tpus()
        if not tpus:
            raise AiinfraError(
                f"platform: got 'tpu' but this machine has none ({note})", field="platform"
            )
        return None
    if spec.platform != "gpu" and not _gpu_plugin_installed():
        return None  # JAX cannot reach a GPU here: nothing to probe, nothing to share
    gpus, _, note = hw.probe_gpus()
    if spec.platform != "gpu":
        return len(gpus) or None
    if not gpus:
        raise AiinfraError(
            f"platform: got 'gpu' but this machine has none ({note}); use cpu", field="platform"
        )
    if not _gpu_plugin_installed():
        raise AiinfraError(
            f"platform: {len(gpus)} GPU(s) found but JAX has no CUDA plugin; pip install 'jax[cuda12]' (or cuda13)",
            field="platform",
        )
    for index in spec.devices or ():
        if index >= len(gpus):
            raise AiinfraError(
                f"devices: GPU {index} does not exist; allowed: 0..{len(gpus) - 1}", field="devices"
            )
    return len(gpus)


def _likely_platform(spec: JaxSessionSpec, gpu_count: int | None) -> str:
    """The platform JAX will pick: the one asked for, else GPU, TPU, CPU in JAX's order."""
    if spec.platform is not None:
        return spec.platform
    if gpu_count and _gpu_plugin_installed():
        return "gpu"
    return "tpu" if hw.probe_tpus()[0] else "cpu"


def _apply(spec: JaxSessionSpec) -> None:
    import jax

    if spec.platform is not None:
        jax.config.update("jax_platforms", _JAX_PLATFORM[spec.platform])
    if spec.devices is not None:
        jax.config.update("jax_cuda_visible_devices", ",".join(map(str, spec.devices)))
    if spec.cpu_devices is not None:
        jax.config.update("jax_num_cpu_devices", spec.cpu_devices)
    if spec.preallocate is not None:
        os.environ[ENV_PREALLOCATE] = "true" if spec.preallocate else "false"
    if spec.mem_fraction is not None:
        os.environ.pop(ENV_MEM_FRACTION_OLD, None)
        os.environ[ENV_MEM_FRACTION] = str(spec.mem_fraction)
    if spec.allocator is not None:
        os.environ[ENV_ALLOCATOR] = spec.allocator


def effective_settings() -> dict[str, Any]:
    """The backend-fixed settings of the running backend, named like the spec's fields."""
    import jax

    global _env_at_start
    if _env_at_start is None:  # started outside aiinfra: the current env is our best evidence
        _env_at_start = {k: os.environ.get(k) for k in ENV_NAMES}
    env = _env_at_start
    platform = jax.default_backend()
    try:
        cpu_devices = len(jax.local_devices(backend="cpu"))
    except RuntimeError:  # jax_platforms excluded the CPU backend
        cpu_devices = None
    out: dict[str, Any] = {"platform": platform, "cpu_devices": cpu_devices}
    if platform == "gpu":
        visible = str(jax.config.values.get("jax_cuda_visible_devices", "all"))
        out["devices"] = (
            tuple(int(x) for x in visible.split(","))
            if visible != "all"
            else tuple(range(jax.local_device_count()))
        )
        out["preallocate"] = (env.get(ENV_PREALLOCATE) or "true") not in ("false", "False", "0")
        out["mem_fraction"] = float(
            env.get(ENV_MEM_FRACTION) or env.get(ENV_MEM_FRACTION_OLD) or 0.75
        )
        out["allocator"] = (env.get(ENV_ALLOCATOR) or "default").lower()
    return out


def differing_settings(spec: JaxSessionSpec, effective: dict[str, Any]) -> list[str]:
    """``name=running (asked X)`` for each requested setting the running backend does not have."""
    out = []
    for name in BACKEND_FIELDS:
        wanted = getattr(spec, name)
        if wanted is None or (name in GPU_ONLY_FIELDS and effective["platform"] != "gpu"):
            continue
        have = effective.get(name)
        if have is not None and have != wanted:
            fmt = (lambda v: ",".join(map(str, v))) if name == "devices" else str
            out.append(f"{name}={fmt(have)} (asked {fmt(wanted)})")
    return out


def build_mesh(axes: Mesh | None) -> tuple[Any, Mesh]:
    """A ``jax.sharding.Mesh`` over all devices; one ``data`` axis when none is given."""
    import jax

    devices = jax.devices()
    axes = axes or ((_DEFAULT_AXIS, len(devices)),)
    if mesh_size(axes) != len(devices):
        raise AiinfraError(
            f"mesh: {format_mesh(axes)} needs {mesh_size(axes)} devices; this session has "
            f"{len(devices)} ({jax.default_backend()}); the sizes must multiply to {len(devices)}",
            field="mesh",
        )
    names = tuple(name for name, _ in axes)
    return jax.make_mesh(tuple(size for _, size in axes), names, devices=devices), axes


@dataclass
class JaxSession:
    """The running session, for display and for the REST API (``to_dict``)."""

    platform: str
    devices: list[dict[str, Any]]
    process_index: int
    process_count: int
    mesh_axes: Mesh
    settings: dict[str, Any]
    reused: bool
    mesh: Any = field(default=None, repr=False)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        settings = dict(self.settings)
        if settings.get("devices") is not None:
            settings["devices"] = list(settings["devices"])
        return {
            "platform": self.platform,
            "devices": self.devices,
            "process_index": self.process_index,
            "process_count": self.process_count,
            "mesh": format_mesh(self.mesh_axes),
            "settings": settings,
            "reused": self.reused,
            "notes": self.notes,
        }

    def _lines(self) -> list[str]:
        kinds = sorted({d["kind"] for d in self.devices})
        state = "already running, settings unchanged" if self.reused else "started"
        lines = [
            f"JAX session ({state}): {self.platform}, {len(self.devices)} device(s) "
            f"[{', '.join(kinds)}], process {self.process_index + 1}/{self.process_count}",
            f"mesh: {format_mesh(self.mesh_axes)}  (bound as `mesh`)",
        ]
        shown = {k: v for k, v in self.settings.items() if v is not None and k != "platform"}
        if shown:
            lines.append("settings: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
        return lines

    def __str__(self) -> str:
        return "\n".join(self._lines())

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{d['id']}</td><td>{html.escape(d['kind'])}</td><td>{d['process']}</td></tr>"
            for d in self.devices
        )
        head = "".join(f"<div>{html.escape(line)}</div>" for line in self._lines())
        return (
            f"<div class='aiinfra-jax'>{head}<details><summary>devices</summary><table>"
            f"<thead><tr><th>id</th><th>kind</th><th>process</th></tr></thead><tbody>{rows}"
            "</tbody></table></details></div>"
        )


def _session(mesh_axes: Mesh | None, reused: bool) -> JaxSession:
    import jax

    mesh, axes = build_mesh(mesh_axes)
    devs = [{"id": d.id, "kind": d.device_kind, "process": d.process_index} for d in jax.devices()]
    return JaxSession(
        platform=jax.default_backend(),
        devices=devs,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
        mesh_axes=axes,
        settings=effective_settings(),
        reused=reused,
        mesh=mesh,
    )


def start_session(spec: JaxSessionSpec) -> JaxSession:
    """Apply ``spec`` and start JAX (or check it against the running backend).

    The notes to show (GPUs shared with a cluster...) are in ``session.notes``.

    Raises:
        InputError: a setting is not allowed here, or differs from the running backend's.
        OperationError: the backend failed to start.
    """
    global _env_at_start
    notes: list[str] = []
    if backend_started():
        differ = differing_settings(spec, effective_settings())
        if differ:
            raise AiinfraError(
                "jax: the backend already started with other settings: "
                + "; ".join(differ)
                + ". JAX fixes them at start; restart the kernel to change them",
                field=differ[0].split("=", 1)[0],
            )
        session = _session(spec.mesh, reused=True)
    else:
        gpu_count = _check_hardware(spec)
        if gpu_count:
            gpus, _, _ = hw.probe_gpus()
            spec, notes = share_gpus(spec, gpus, _held_gpu_indices(gpus))
        expected = spec.expected_device_count(_likely_platform(spec, gpu_count), gpu_count)
        if spec.mesh is not None and expected is not None and mesh_size(spec.mesh) != expected:
            raise AiinfraError(
                f"mesh: {format_mesh(spec.mesh)} needs {mesh_size(spec.mesh)} devices; "
                f"these settings give {expected}; the sizes must multiply to {expected}",
                field="mesh",
            )
        _apply(spec)
        import jax

        _env_at_start = {k: os.environ.get(k) for k in ENV_NAMES}
        try:
            jax.devices()
        except RuntimeError as exc:
            raise OperationError(f"jax: the backend failed to start: {exc}") from None
        session = _session(spec.mesh, reused=False)
    session.notes = notes
    return session


def gpus_held_by_jax() -> list[str]:
    """GPU indices the running JAX backend of this process uses (for ``cluster start --gpus``)."""
    if not backend_started():
        return []
    settings = effective_settings()
    if settings["platform"] != "gpu":
        return []
    return [str(i) for i in settings["devices"]]
