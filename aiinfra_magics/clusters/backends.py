"""One interface for every way of getting a Dask cluster, and the one registry of backends.

A backend class declares its own options (:class:`Option`: name, type, help,
default, check); the CLI and magic flags, the REST body check, ``GET
aiinfra/api/backends`` and the sidebar's start dialog are all generated from that
declaration. Built-in backends are registered once, in ``BUILTIN_BACKENDS``;
others register under the entry-point group ``aiinfra.backends`` and are found
without any change to this package (as papermill's engines and distributed's
comm backends are).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from ..checks import as_bool, as_int, as_number, as_size, as_str, as_str_list
from ..errors import AiinfraError, field_error
from . import spec as _spec

if TYPE_CHECKING:
    from distributed.deploy import Cluster

    from .spec import ClusterSpec

ENTRY_POINT_GROUP = "aiinfra.backends"
BUILTIN_BACKENDS = {
    "local": "aiinfra_magics.clusters.local:LocalBackend",
    "cuda": "aiinfra_magics.clusters.cuda:CudaBackend",
    "address": "aiinfra_magics.clusters.address:AddressBackend",
    "gateway": "aiinfra_magics.clusters.gateway:GatewayBackend",
    "slurm": "aiinfra_magics.clusters.slurm:SlurmBackend",
    "ssh": "aiinfra_magics.clusters.ssh:SshBackend",
}
OPTION_TYPES = ("string", "integer", "number", "boolean", "size", "list")


@dataclass(frozen=True)
class Option:
    """One option a backend declares: a CLI flag, a REST field, a dialog input.

    ``name`` is the field name (``rmm_pool``); the flag is ``--rmm-pool``. ``check``
    receives the value already converted to ``type`` and returns it (possibly
    normalised) or raises :class:`AiinfraError` naming the field.
    """

    name: str
    help: str
    type: str = "string"
    default: Any = None
    choices: tuple[str, ...] | None = None
    # Old spellings still accepted, as what they became (a record written before a rename).
    aliases: dict[str, str] | None = None
    check: Callable[[Any], Any] | None = None
    metavar: str | None = None

    def __post_init__(self) -> None:
        if self.type not in OPTION_TYPES:
            raise ValueError(f"Option {self.name}: type {self.type!r} not in {OPTION_TYPES}")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, value: Any) -> Any:
        """Convert a value from a command line or a JSON body, then run ``check``."""
        field_name = self.name.replace("_", "-")
        converted = _CONVERTERS[self.type](field_name, value)
        if self.aliases and isinstance(converted, str):
            converted = self.aliases.get(converted, converted)
        if self.choices is not None and converted not in self.choices:
            raise field_error(field_name, value, " | ".join(self.choices))
        return self.check(converted) if self.check is not None else converted

    def to_dict(self) -> dict[str, Any]:
        """The JSON schema of this option, as REST and the sidebar's dialog read it."""
        return {
            "name": self.name,
            "flag": self.flag,
            "type": self.type,
            "help": self.help,
            "default": self.default,
            "choices": list(self.choices) if self.choices is not None else None,
        }


_CONVERTERS: dict[str, Callable[[str, Any], Any]] = {
    "string": as_str,
    "integer": lambda f, v: as_int(f, v, minimum=0),
    "number": as_number,
    "boolean": as_bool,
    "size": as_size,
    "list": as_str_list,
}


@dataclass
class Launched:
    """What a backend hands back: a cluster object we own, or just an address."""

    scheduler_address: str
    dashboard_link: str | None
    cluster: Cluster | None = None  # None when the workers are managed elsewhere
    gpus: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class ClusterBackend(ABC):
    """A way to get a Dask cluster.

    Subclasses set ``name``, ``description`` and ``options`` and implement
    ``launch``. ``validate`` holds rules between fields (pure, no probing);
    ``check`` says whether the spec can run on this machine, before any process
    starts; ``unavailable`` is the cheap "why not here" shown by REST and the
    sidebar.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: False when the workers are managed elsewhere (workers/threads/memory/adapt/scale refused).
    manages_workers: ClassVar[bool] = True
    options: ClassVar[tuple[Option, ...]] = ()

    @classmethod
    def option(cls, name: str) -> Option | None:
        return next((o for o in cls.options if o.name == name), None)

    def unavailable(self) -> str | None:
        """Why this backend cannot be used on this machine, or None when it can."""
        return None

    def validate(self, spec: ClusterSpec) -> None:  # noqa: B027 - optional hook
        """Raise AiinfraError for combinations of fields this backend refuses."""

    def check(self, spec: ClusterSpec) -> None:
        """Raise AiinfraError when ``spec`` cannot run here (before any process starts)."""
        reason = self.unavailable()
        if reason is not None:
            raise AiinfraError(
                f"backend: {self.name} is not usable here ({reason})", field="backend"
            )

    @abstractmethod
    def launch(self, spec: ClusterSpec, *, death_timeout: float) -> Launched:
        """Start (or reach) the cluster; block until the scheduler answers."""

    def launch_kwargs(self, spec: ClusterSpec, *, death_timeout: float) -> dict[str, Any]:
        """The keyword arguments handed to the cluster class (kept pure for tests)."""
        return {}

    def observe(
        self, record: dict[str, Any], timeout: float
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(scheduler identity, cost report) of a running cluster, from any process.

        Raises OSError/TimeoutError when the scheduler does not answer.
        """
        from .rpc import observe

        return observe(record["scheduler_address"], timeout)

    def control(self, record: dict[str, Any], action: str, **kwargs: Any) -> str | None:
        """Scale/adapt/stop from any process through the backend's own service; a note or None.

        The default raises NotImplementedError: the owner's scheduler handler does it.
        """
        raise NotImplementedError

    def dry_run(self, spec: ClusterSpec) -> str | None:
        """Text to print instead of starting (e.g. a batch job script), or None to start."""
        return None

    def live_details(self, record: dict[str, Any]) -> dict[str, Any]:
        """Extra live state for ``cluster status`` (e.g. batch jobs); any process may ask."""
        return {}

    def live_details_many(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``live_details`` of each record, in order; a batch backend asks its queue once."""
        return [self.live_details(r) for r in records]

    def defaults(self) -> dict[str, Any]:
        """What common fields left out come to here (``{"workers": 2, "threads": 1}``).

        Only what this backend can tell without starting anything; the start dialog shows
        it as the fields' placeholders. None known: ``{}``.
        """
        return {}

    def describe(self) -> dict[str, Any]:
        """JSON for ``GET aiinfra/api/backends`` and the sidebar's start dialog."""
        reason = self.unavailable()
        return {
            "name": self.name,
            "description": self.description,
            "usable": reason is None,
            "reason": reason,
            "manages_workers": self.manages_workers,
            "options": [o.to_dict() for o in self.options],
            "defaults": self.defaults() if reason is None else {},
        }


@lru_cache(maxsize=1)
def _backend_targets() -> dict[str, str]:
    targets = dict(BUILTIN_BACKENDS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        targets.setdefault(ep.name, ep.value)  # a plugin never shadows a built-in
    return targets


def backend_names() -> list[str]:
    return list(_backend_targets())


def backend_class(name: str) -> type[ClusterBackend]:
    """The registered class for ``name``; AiinfraError naming the allowed backends."""
    targets = _backend_targets()
    if name not in targets:
        raise field_error("backend", name, " | ".join(["auto", *targets]))
    module_name, _, attr = targets[name].partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise AiinfraError(
            f"backend: {name!r} is registered but cannot be loaded ({exc})", field="backend"
        ) from None
    return found


def get_backend(name: str) -> ClusterBackend:
    return backend_class(name)()


def loadable_backends() -> list[type[ClusterBackend]]:
    """Every registered backend class that imports; broken plugins are left out."""
    found = []
    for name in backend_names():
        try:
            found.append(backend_class(name))
        except AiinfraError:
            continue
    return found


def describe_backends() -> list[dict[str, Any]]:
    """Every backend, usable here or why not, with its option schema."""
    described = []
    for name in backend_names():
        try:
            described.append(get_backend(name).describe())
        except AiinfraError as exc:
            described.append({
                "name": name, "description": "", "usable": False, "reason": str(exc),
                "manages_workers": True, "options": [],
            })  # fmt: skip
    return described


#: What ``auto`` may turn into, in order of preference.
AUTO_CANDIDATES = ("cuda", "local")


def auto_options() -> tuple[Option, ...]:
    """``auto`` accepts the options of every backend it may choose."""
    seen: dict[str, Option] = {}
    for name in AUTO_CANDIDATES:
        for option in backend_class(name).options:
            seen.setdefault(option.name, option)
    return tuple(seen.values())


# spec.py is a leaf: it checks a spec's backend and options against this registry, handed
# to it here (the package's __init__ imports this module first), instead of importing it.
_spec.use_backends(
    names=backend_names, get=backend_class, auto_options=auto_options, loadable=loadable_backends
)
