"""ClusterSpec: the one validated description of a cluster, shared by every door.

The fields every backend shares live here (name, backend, workers, threads,
memory, adapt, idle_timeout); everything else is a backend's own declared option
(:class:`~aiinfra_magics.clusters.backends.Option`), validated by that
declaration and kept in ``options``. On the wire (CLI flags, REST bodies,
registry records) the spec is one flat dict whose keys are the option names
(``rmm-pool`` becomes ``rmm_pool``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType, SimpleNamespace
from typing import Any

from ..checks import as_bool, as_duration, as_int, as_name, as_number, as_size, as_str
from ..errors import InputError, field_error

COMMON_FIELDS = (
    "name", "backend", "workers", "threads", "memory", "adapt", "idle_timeout",
    "max_workers", "max_gpu_hours", "waste_threshold", "waste_window", "stop_when_wasteful",
    "env_check",
)  # fmt: skip
#: Fields that size workers: refused by backends whose workers are managed elsewhere.
WORKER_FIELDS = ("workers", "threads", "memory", "adapt", "max_workers")
#: A sanity bound for every backend; backends bound further by what they can give.
MAX_WORKERS = 100_000
MAX_THREADS = 4096
ADAPT_ALLOWED = "MIN:MAX with 0 <= MIN <= MAX and MAX >= 1"
GPU_ID_PATTERN = re.compile(r"\d+|(GPU|MIG)-[0-9a-fA-F-]+")


@dataclass(frozen=True)
class ClusterSpec:
    """What the user asked for; ``backend`` may still be ``auto`` here."""

    name: str | None = None
    backend: str = "auto"
    workers: int | None = None
    threads: int | None = None
    memory: str | None = None
    adapt: tuple[int, int] | None = None
    idle_timeout: float | None = None
    #: Caps: scale/adapt beyond ``max_workers`` is refused; the cluster stops at ``max_gpu_hours``.
    max_workers: int | None = None
    max_gpu_hours: float | None = None
    #: Held GPUs under ``waste_threshold`` % for ``waste_window`` s: a warning (and a stop
    #: with ``stop_when_wasteful``); None: dask config ``aiinfra.waste.*`` (10 %, 15 min).
    waste_threshold: float | None = None
    waste_window: float | None = None
    stop_when_wasteful: bool | None = None
    #: False: no package comparison at start and connect (env_check.py); None/True: compare.
    env_check: bool | None = None
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ClusterSpec:
        """Build and validate from a flat dict of option names (``-`` or ``_`` both accepted).

        Raises:
            InputError: naming the first field that is unknown or not allowed.
        """
        if not isinstance(options, Mapping):
            raise field_error("body", options, "an object of option names")
        values: dict[str, Any] = {}
        for key, value in options.items():
            norm = str(key).replace("-", "_")
            if value is not None:
                values[norm] = value
        backend = as_str("backend", values.pop("backend", "auto"))
        declared = {o.name: o for o in _declared_options(backend)}
        common: dict[str, Any] = {"backend": backend}
        extra: dict[str, Any] = {}
        for key, value in values.items():
            if key in COMMON_FIELDS:
                common[key] = _COERCE[key](value)
            elif key in declared:
                extra[key] = declared[key].parse(value)
            else:
                elsewhere = _backends_declaring(key)
                if elsewhere:
                    raise InputError(
                        f"{key.replace('_', '-')}: only allowed with --backend "
                        f"{' or '.join(elsewhere)}",
                        field=key,
                    )
                allowed = sorted({*COMMON_FIELDS, *declared})
                raise InputError(
                    f"{key.replace('_', '-')}: unknown field for backend {backend}; "
                    f"allowed: {', '.join(allowed)}",
                    field=key,
                )
        return cls(**common, options=MappingProxyType(extra)).validated()

    def validated(self) -> ClusterSpec:
        """Check the common fields, then the backend's own rules; return self.

        Raises:
            InputError: naming the field.
        """
        backend_class, backend_names = _registry().get, _registry().names
        if self.name is not None:
            as_name("name", self.name)
        if self.backend != "auto" and self.backend not in backend_names():
            raise field_error("backend", self.backend, " | ".join(["auto", *backend_names()]))
        if self.adapt is not None:
            check_adapt(*self.adapt)
        self._check_caps()
        if self.backend == "auto":
            return self
        backend = backend_class(self.backend)
        if not backend.manages_workers:
            for key in WORKER_FIELDS:
                if getattr(self, key) is not None:
                    raise InputError(
                        f"{key}: not allowed with --backend {self.backend}; "
                        "its workers are managed where its scheduler runs",
                        field=key,
                    )
        declared = {o.name for o in backend.options}
        for key in self.options:
            if key not in declared:
                raise InputError(
                    f"{key.replace('_', '-')}: not an option of backend {self.backend}; "
                    f"allowed: {', '.join(sorted({*COMMON_FIELDS, *declared}))}",
                    field=key,
                )
        backend().validate(self)
        return self

    def _check_caps(self) -> None:
        """Worker counts asked for stay within ``--max-workers`` (start, scale and adapt alike)."""
        cap = self.max_workers
        if cap is None:
            return
        if self.workers is not None and self.workers > cap:
            raise InputError(
                f"workers: got {self.workers}; this cluster is capped at {cap} "
                f"(--max-workers {cap})",
                field="workers",
            )
        if self.adapt is not None and self.adapt[1] > cap:
            raise InputError(
                f"adapt: got {self.adapt[0]}:{self.adapt[1]}; this cluster is capped at {cap} "
                f"workers (--max-workers {cap}), so MAX <= {cap}",
                field="adapt",
            )

    def option(self, name: str, default: Any = None) -> Any:
        """A backend option's value, or its declared default, or ``default``."""
        if name in self.options:
            return self.options[name]
        if self.backend != "auto":
            declared = _registry().get(self.backend).option(name)
            if declared is not None and declared.default is not None:
                return declared.default
        return default

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-able form with the option names as keys; ``adapt`` as ``"MIN:MAX"``."""
        data: dict[str, Any] = {key: getattr(self, key) for key in COMMON_FIELDS}
        if self.adapt is not None:
            data["adapt"] = f"{self.adapt[0]}:{self.adapt[1]}"
        data.update({k: list(v) if isinstance(v, tuple) else v for k, v in self.options.items()})
        return data

    def with_changes(self, **changes: Any) -> ClusterSpec:
        return replace(self, **changes)


def use_backends(
    names: Callable[[], list[str]],
    get: Callable[[str], Any],
    auto_options: Callable[[], tuple],
    loadable: Callable[[], list[Any]],
) -> None:
    """Hand this module the backend registry it checks specs against (backends.py does).

    Specs are checked against the backends' declared options, and the backends build
    specs: the registry is handed in, so this module imports no other of the package.
    """
    _REGISTRY.update(names=names, get=get, auto_options=auto_options, loadable=loadable)


_REGISTRY: dict[str, Callable[..., Any]] = {}


def _registry() -> SimpleNamespace:
    if not _REGISTRY:  # the package's __init__ imports backends, which hands it in
        raise RuntimeError("aiinfra_magics.clusters.backends was not imported")
    return SimpleNamespace(**_REGISTRY)


def _declared_options(backend: str) -> tuple:
    registry = _registry()
    if backend == "auto":
        return registry.auto_options()
    if backend not in registry.names():
        raise field_error("backend", backend, " | ".join(["auto", *registry.names()]))
    return registry.get(backend).options


def _backends_declaring(name: str) -> list[str]:
    return [b.name for b in _registry().loadable() if b.option(name) is not None]


def check_adapt(lo: int, hi: int) -> tuple[int, int]:
    if lo < 0 or hi < 1 or lo > hi or hi > MAX_WORKERS:
        raise field_error("adapt", f"{lo}:{hi}", ADAPT_ALLOWED)
    return lo, hi


def parse_adapt(value: Any) -> tuple[int, int]:
    """``"1:4"``, ``[1, 4]`` or ``{"minimum": 1, "maximum": 4}`` -> (1, 4)."""
    parts = value
    if isinstance(value, dict):
        parts = [value.get("minimum"), value.get("maximum")]
    if isinstance(value, str):
        parts = value.split(":")
    if not isinstance(parts, (list, tuple)) or len(parts) != 2:
        raise field_error("adapt", value, ADAPT_ALLOWED)
    try:
        lo, hi = (as_int("adapt", v, minimum=0) for v in parts)
    except InputError:
        raise field_error("adapt", value, ADAPT_ALLOWED) from None
    return check_adapt(lo, hi)


def parse_gpus(value: str) -> str | int | list[str]:
    """``all`` -> "all"; ``"2"`` -> 2 (a count); ``"0,2"`` or UUIDs -> ["0", "2"]."""
    allowed = "all | N (a count >= 1) | a comma list of indices or UUIDs like 0,2 (GPU 0 alone: 0,)"
    text = value.strip()
    if text == "all":
        return "all"
    if re.fullmatch(r"\d{1,4}", text):
        count = int(text)
        if count < 1:
            raise field_error("gpus", value, allowed)
        return count
    items = [item.strip() for item in text.split(",")]
    items = [item for item in items if item] if text.endswith(",") else items
    if not items or any(not GPU_ID_PATTERN.fullmatch(item) for item in items):
        raise field_error("gpus", value, allowed)
    if len(set(items)) != len(items):
        raise field_error("gpus", value, "each GPU at most once")
    return items


def as_gpus(field_name: str, value: Any) -> str:
    """The ``gpus`` option: a string, or a count / list as JSON may give it."""
    if isinstance(value, (list, tuple)):
        value = ",".join(str(g) for g in value)
    elif isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = as_str(field_name, value)
    parse_gpus(text)
    return text


def _positive_number(field_name: str, value: Any) -> float:
    number = as_number(field_name, value)
    if number <= 0:
        raise field_error(field_name, value, "a number > 0")
    return number


def _percent(field_name: str, value: Any) -> float:
    number = as_number(field_name, value)
    if not 0 < number <= 100:
        raise field_error(field_name, value, "a utilisation in percent, > 0 and <= 100")
    return number


def _as_memory(value: Any) -> str:
    text = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    if text == "auto":
        return text
    return as_size("memory", text)


def _on_off(field_name: str, value: Any) -> bool:
    if isinstance(value, str) and value.strip().lower() in ("on", "off"):
        return value.strip().lower() == "on"
    try:
        return as_bool(field_name, value)
    except InputError:
        raise field_error(field_name, value, "on | off") from None


_COERCE = {
    "name": lambda v: as_name("name", v),
    "backend": lambda v: as_str("backend", v),
    "workers": lambda v: as_int("workers", v, minimum=1, maximum=MAX_WORKERS),
    "threads": lambda v: as_int("threads", v, minimum=1, maximum=MAX_THREADS),
    "memory": _as_memory,
    "adapt": parse_adapt,
    "idle_timeout": lambda v: as_duration("idle-timeout", v),
    "max_workers": lambda v: as_int("max-workers", v, minimum=1, maximum=MAX_WORKERS),
    "max_gpu_hours": lambda v: _positive_number("max-gpu-hours", v),
    "waste_threshold": lambda v: _percent("waste-threshold", v),
    "waste_window": lambda v: as_duration("waste-window", v),
    "stop_when_wasteful": lambda v: as_bool("stop-when-wasteful", v),
    "env_check": lambda v: _on_off("env-check", v),
}
