"""ClusterSpec: the one validated description of a cluster, shared by every door.

Field names are the CLI option names (``rmm-pool`` becomes ``rmm_pool``), so the
same dict serves the magic, the CLI and the REST body. Every error is one line
that names the field and what is allowed.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import AiinfraError, field_error

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
NAME_ALLOWED = "1-63 characters of a-z, 0-9, '-' and '_', starting with a letter or digit"
PROTOCOLS = ("tcp", "ucx")
ADDRESS_PATTERN = re.compile(r"^(tcp|tls|ucx|inproc)://\[?[A-Za-z0-9_.:-]+\]?:\d{1,5}$")
GPU_ID_PATTERN = re.compile(r"^(\d+|(GPU|MIG)-[0-9a-fA-F-]+)$")


@dataclass(frozen=True)
class ClusterSpec:
    """What the user asked for; ``backend`` may still be ``auto`` here."""

    name: str | None = None
    backend: str = "auto"
    workers: int | None = None
    threads: int | None = None
    memory: str | None = None
    gpus: str | None = None
    rmm_pool: str | None = None
    device_memory_limit: str | None = None
    protocol: str | None = None
    adapt: tuple[int, int] | None = None
    address: str | None = None

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> ClusterSpec:
        """Build and validate from a dict of option names (``-`` or ``_`` both accepted)."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in options.items():
            norm = str(key).replace("-", "_")
            if norm not in known:
                raise AiinfraError(
                    f"{key}: unknown field; allowed: {', '.join(sorted(known))}", field=str(key)
                )
            if value is not None:
                values[norm] = value
        return cls(**_coerce(values)).validated()

    def validated(self) -> ClusterSpec:
        """Check every field; return self so calls chain."""
        from .backends import backend_names  # late: backends import this module

        if self.name is not None and not NAME_PATTERN.match(self.name):
            raise field_error("name", self.name, NAME_ALLOWED)
        allowed_backends = ["auto", *backend_names()]
        if self.backend not in allowed_backends:
            raise field_error("backend", self.backend, " | ".join(allowed_backends))
        for key in ("workers", "threads"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise field_error(key, value, "an integer >= 1")
        if self.memory is not None and self.memory != "auto":
            _check_size("memory", self.memory, allow_fraction=True)
        for key in ("rmm_pool", "device_memory_limit"):
            value = getattr(self, key)
            if value is not None:
                _check_size(key.replace("_", "-"), value, allow_fraction=True)
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            raise field_error("protocol", self.protocol, " | ".join(PROTOCOLS))
        if self.gpus is not None:
            parse_gpus(self.gpus)
        if self.adapt is not None:
            lo, hi = self.adapt
            if lo < 0 or hi < 1 or lo > hi:
                raise field_error(
                    "adapt", f"{lo}:{hi}", "MIN:MAX with 0 <= MIN <= MAX and MAX >= 1"
                )
        if self.backend == "address":
            if not self.address:
                raise AiinfraError(
                    "address: required with --backend address (e.g. tcp://host:8786)",
                    field="address",
                )
            for key in ("workers", "threads", "memory", "gpus", "rmm_pool", "adapt"):
                if getattr(self, key) is not None:
                    raise AiinfraError(
                        f"{key.replace('_', '-')}: not allowed with --backend address; "
                        "the remote scheduler's workers are managed where it runs",
                        field=key,
                    )
        elif self.address is not None:
            raise AiinfraError("address: only allowed with --backend address", field="address")
        if self.address is not None and not ADDRESS_PATTERN.match(self.address):
            raise field_error("address", self.address, "a scheduler URL like tcp://host:8786")
        if self.backend == "local":
            for key in ("gpus", "rmm_pool", "device_memory_limit", "protocol"):
                if getattr(self, key) is not None:
                    raise AiinfraError(
                        f"{key.replace('_', '-')}: only allowed with --backend cuda or auto",
                        field=key,
                    )
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form with the option names as keys; ``adapt`` as ``"MIN:MAX"``."""
        data = asdict(self)
        if self.adapt is not None:
            data["adapt"] = f"{self.adapt[0]}:{self.adapt[1]}"
        return data

    def with_changes(self, **changes: Any) -> ClusterSpec:
        data = asdict(self)
        data.update(changes)
        return ClusterSpec(**data)


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    """Turn strings from a command line or JSON body into typed values."""
    out = dict(values)
    for key in ("workers", "threads"):
        if key in out:
            out[key] = _as_int(key, out[key])
    if "adapt" in out:
        out["adapt"] = parse_adapt(out["adapt"])
    for key in ("name", "backend", "memory", "gpus", "rmm_pool", "device_memory_limit"):
        if key in out and not isinstance(out[key], str):
            if key == "gpus" and isinstance(out[key], (int, list, tuple)):
                out[key] = (
                    ",".join(str(g) for g in out[key])
                    if isinstance(out[key], (list, tuple))
                    else str(out[key])
                )
            else:
                raise field_error(key.replace("_", "-"), out[key], "a string")
    for key in ("protocol", "address"):
        if key in out and not isinstance(out[key], str):
            raise field_error(key, out[key], "a string")
    return out


def _as_int(field: str, value: Any) -> int:
    if isinstance(value, bool):
        raise field_error(field, value, "an integer >= 1")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value)
    raise field_error(field, value, "an integer >= 1")


def parse_adapt(value: Any) -> tuple[int, int]:
    """``"1:4"``, ``[1, 4]`` or ``{"minimum": 1, "maximum": 4}`` -> (1, 4)."""
    allowed = "MIN:MAX with 0 <= MIN <= MAX and MAX >= 1"
    if isinstance(value, dict):
        value = [value.get("minimum"), value.get("maximum")]
    if isinstance(value, str):
        parts = value.split(":")
        if len(parts) != 2:
            raise field_error("adapt", value, allowed)
        value = parts
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise field_error("adapt", value, allowed)
    try:
        lo, hi = (int(str(v).strip()) for v in value)
    except (TypeError, ValueError):
        raise field_error("adapt", value, allowed) from None
    if lo < 0 or hi < 1 or lo > hi:
        raise field_error("adapt", f"{lo}:{hi}", allowed)
    return lo, hi


def parse_gpus(value: str) -> str | int | list[str]:
    """``all`` -> "all"; ``"2"`` -> 2 (a count); ``"0,2"`` or UUIDs -> ["0", "2"]."""
    allowed = "all | N (a count >= 1) | a comma list of indices or UUIDs like 0,2 (GPU 0 alone: 0,)"
    text = value.strip()
    if text == "all":
        return "all"
    if re.fullmatch(r"\d+", text):
        count = int(text)
        if count < 1:
            raise field_error("gpus", value, allowed)
        return count
    items = [item.strip() for item in text.split(",")]
    items = [item for item in items if item] if text.endswith(",") else items
    if not items or any(not GPU_ID_PATTERN.match(item) for item in items):
        raise field_error("gpus", value, allowed)
    if len(set(items)) != len(items):
        raise field_error("gpus", value, "each GPU at most once")
    return items


def _check_size(field: str, value: str, *, allow_fraction: bool) -> None:
    allowed = "a size like 4GB or 512MiB" + (", or a fraction like 0.8" if allow_fraction else "")
    text = str(value).strip()
    if allow_fraction:
        try:
            number = float(text)
        except ValueError:
            number = None
        if number is not None:
            if 0 < number <= 1:
                return
            raise field_error(field, value, allowed)
    from dask.utils import parse_bytes  # late: keeps `%aiinfra` start-up free of dask

    try:
        size = parse_bytes(text)
    except (ValueError, TypeError):
        raise field_error(field, value, allowed) from None
    if size <= 0:
        raise field_error(field, value, allowed)
