"""JaxSessionSpec: the validated settings of a JAX session, and mesh parsing.

Pure validation, no JAX import: a bad value is reported before anything is
applied, so a typo never costs a kernel restart. Fields use the CLI's option
names (``platform``, ``devices``, ``cpu_devices``, ``preallocate``,
``mem_fraction``, ``allocator``, ``mesh``) so the magic, the CLI and a REST
body share one spec. ``None`` means "leave JAX's own default".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..checks import as_int
from ..errors import AiinfraError, field_error

PLATFORMS = ("cpu", "gpu", "tpu")
# The values jaxlib's GPU client accepts for XLA_PYTHON_CLIENT_ALLOCATOR.
ALLOCATORS = ("default", "platform", "bfc", "cuda_async", "vmm")
# Settings fixed when the backend starts; the mesh is not one of them.
BACKEND_FIELDS = ("platform", "devices", "cpu_devices", "preallocate", "mem_fraction", "allocator")
GPU_ONLY_FIELDS = ("devices", "preallocate", "mem_fraction", "allocator")

Mesh = tuple[tuple[str, int], ...]


def parse_mesh(text: str | Sequence[Any] | Mapping[str, int]) -> Mesh:
    """``"data=4,model=2"`` (or a mapping / pairs from JSON) -> ``(("data", 4), ("model", 2))``."""
    allowed = "comma-separated AXIS=SIZE pairs such as data=4,model=2"
    if isinstance(text, Mapping):
        pairs = list(text.items())
    elif isinstance(text, str):
        if not text.strip():
            raise field_error("mesh", text, allowed)
        pairs = []
        for part in text.split(","):
            name, sep, size = part.strip().partition("=")
            if not sep:
                raise field_error("mesh", text, allowed)
            pairs.append((name.strip(), size.strip()))
    else:
        pairs = [tuple(p) for p in text]
    axes: list[tuple[str, int]] = []
    for name, size in pairs:
        if not isinstance(name, str) or not name.isidentifier():
            raise AiinfraError(
                f"mesh: axis name {name!r} is not allowed; use a Python identifier such as data",
                field="mesh",
            )
        if any(name == seen for seen, _ in axes):
            raise AiinfraError(f"mesh: axis {name!r} appears twice; each axis once", field="mesh")
        try:
            n = int(size)
        except (TypeError, ValueError):
            raise AiinfraError(
                f"mesh: size of axis {name!r} is {size!r}; allowed: a positive integer",
                field="mesh",
            ) from None
        if n < 1 or isinstance(size, (bool, float)):
            raise AiinfraError(
                f"mesh: size of axis {name!r} is {size!r}; allowed: a positive integer",
                field="mesh",
            )
        axes.append((name, n))
    if not axes:
        raise field_error("mesh", text, allowed)
    return tuple(axes)


def mesh_size(mesh: Mesh) -> int:
    n = 1
    for _, size in mesh:
        n *= size
    return n


def format_mesh(mesh: Mesh | None) -> str:
    return ",".join(f"{name}={size}" for name, size in mesh) if mesh else "-"


def parse_devices(value: str | Sequence[Any]) -> tuple[int, ...]:
    allowed = "comma-separated GPU indices such as 0,1"
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[int] = []
    for item in items:
        text = str(item).strip()
        if not text.isdigit():
            raise field_error("devices", value, allowed)
        if int(text) in out:
            raise AiinfraError(
                f"devices: GPU {text} is listed twice; each index once", field="devices"
            )
        out.append(int(text))
    if not out:
        raise field_error("devices", value, allowed)
    return tuple(out)


def _fraction(value: Any) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise field_error("mem_fraction", value, "a number in (0, 1]") from None
    if not 0 < f <= 1:
        raise field_error("mem_fraction", value, "a number in (0, 1]")
    return f


def _flag(field: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise field_error(field, value, "true or false")


@dataclass(frozen=True)
class JaxSessionSpec:
    platform: str | None = None
    devices: tuple[int, ...] | None = None
    cpu_devices: int | None = None
    preallocate: bool | None = None
    mem_fraction: float | None = None
    allocator: str | None = None
    mesh: Mesh | None = None
    force: bool = False  # use GPUs that a Dask-CUDA cluster of this kernel holds

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> JaxSessionSpec:
        """Validate options from any door; unknown keys and bad values raise AiinfraError."""
        known = {f.name for f in dataclasses.fields(cls)} | {"no_preallocate"}
        for key in options:
            if key not in known:
                raise AiinfraError(
                    f"{key}: unknown option; allowed: {', '.join(sorted(known))}", field=key
                )
        opts = {k: v for k, v in options.items() if v is not None}
        if opts.pop("no_preallocate", False) is True:
            if opts.get("preallocate") is True:
                raise AiinfraError(
                    "preallocate: --no-preallocate contradicts preallocate=true",
                    field="preallocate",
                )
            opts["preallocate"] = False
        platform = opts.get("platform")
        if platform is not None:
            platform = str(platform).lower()
            if platform == "cuda":
                platform = "gpu"
            if platform == "auto":
                platform = None
            elif platform not in PLATFORMS:
                raise field_error("platform", opts["platform"], "auto, " + ", ".join(PLATFORMS))
        spec = cls(
            platform=platform,
            devices=parse_devices(opts["devices"]) if "devices" in opts else None,
            cpu_devices=as_int("cpu_devices", opts["cpu_devices"], minimum=1)
            if "cpu_devices" in opts
            else None,
            preallocate=_flag("preallocate", opts["preallocate"])
            if "preallocate" in opts
            else None,
            mem_fraction=_fraction(opts["mem_fraction"]) if "mem_fraction" in opts else None,
            allocator=None,
            mesh=parse_mesh(opts["mesh"]) if "mesh" in opts else None,
            force=_flag("force", opts.get("force", False)),
        )
        if "allocator" in opts:
            allocator = str(opts["allocator"]).lower()
            if allocator not in ALLOCATORS:
                raise field_error("allocator", opts["allocator"], ", ".join(ALLOCATORS))
            spec = dataclasses.replace(spec, allocator=allocator)
        if spec.platform in ("cpu", "tpu"):
            for name in GPU_ONLY_FIELDS:
                if getattr(spec, name) is not None:
                    raise AiinfraError(
                        f"{name}: only applies to --platform gpu; got --platform {spec.platform}",
                        field=name,
                    )
        if spec.cpu_devices is not None and spec.platform in ("gpu", "tpu"):
            raise AiinfraError(
                f"cpu_devices: only applies to --platform cpu; got --platform {spec.platform}",
                field="cpu_devices",
            )
        if spec.devices is not None and spec.platform is None:
            spec = dataclasses.replace(spec, platform="gpu")  # --devices names GPUs
        return spec

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["devices"] = list(self.devices) if self.devices is not None else None
        d["mesh"] = format_mesh(self.mesh) if self.mesh else None
        return d

    def expected_device_count(self, platform: str, gpu_count: int | None) -> int | None:
        """How many devices the session will have on ``platform``, when known before start."""
        if platform == "cpu":
            return self.cpu_devices  # else XLA_FLAGS or JAX_NUM_CPU_DEVICES may decide
        if platform == "gpu":
            return len(self.devices) if self.devices is not None else gpu_count
        return None
