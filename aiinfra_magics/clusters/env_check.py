"""Environment drift: the packages of a cluster's scheduler and workers against this process's.

A worker whose packages differ from the notebook's fails late and strangely (a task that
unpickles wrong, a protocol error deep in distributed: distributed #4063, #3700). So at
``cluster start`` and ``cluster connect`` the versions are compared, through distributed's
own version report (the scheduler's ``versions`` handler and a broadcast to its workers,
as ``Client.get_versions`` does), on distributed's packages plus numpy, jax, numba,
cloudpickle, aiinfra and any named in dask config ``aiinfra.env-check.packages``:

- a mismatch that breaks pickling or the protocol (distributed's release, cloudpickle's
  or msgpack's major version, Python's minor version, numpy 2 here and numpy 1 there) is
  an error naming the package, both versions and the hosts;
- any other mismatch is one warning line;
- ``--env-check off`` skips the check.

A package missing here is not compared (this process does not use it); one present here
and missing there is drift.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ..errors import OperationError

CHECKED = (
    "distributed", "dask", "cloudpickle", "msgpack", "tornado", "toolz", "numpy", "pandas",
    "jax", "jaxlib", "numba", "aiinfra",
)  # fmt: skip
#: How many leading version parts must agree, where a mismatch breaks pickling or protocol.
BREAKING = {"distributed": 2, "cloudpickle": 1, "msgpack": 1, "python": 2}
#: Packages whose pickles from this major release on cannot be loaded below it: numpy 2's
#: arrays pickle as ``numpy._core...``, which numpy 1.x lacks (a task graph holding an array
#: fails to deserialize there). The other way round loads (numpy 2 still reads numpy.core).
NEWER_PICKLES = {"numpy": 2}
VERSIONS_TIMEOUT_S = 20.0
#: Per process asked: a worker that does not answer in this long is named, not waited for.
ASK_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Drift:
    """One package whose version differs somewhere from this process's."""

    package: str
    here: str
    there: dict[str, list[str]]  # version (or "missing") -> where ("127.0.0.2 (2 workers)")

    @property
    def breaking(self) -> bool:
        if self.package in NEWER_PICKLES:
            since = NEWER_PICKLES[self.package]
            return _major(self.here) >= since and any(
                v != "missing" and _major(v) < since for v in self.there
            )
        parts = BREAKING.get(self.package)
        if parts is None:
            return False
        mine = self.here.split(".")[:parts]
        return any(v == "missing" or v.split(".")[:parts] != mine for v in self.there)

    def line(self) -> str:
        others = ", ".join(f"{v} on {', '.join(w)}" for v, w in sorted(self.there.items()))
        return f"{self.package} {self.here} here, {others}"


def _major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:  # not a release number: never judged older
        return 1 << 30


def packages() -> list[str]:
    """The packages compared: the fixed list and ``aiinfra.env-check.packages``."""
    import dask

    extra = dask.config.get("aiinfra.env-check.packages", None) or []
    return list(dict.fromkeys([*CHECKED, *(str(p) for p in extra)]))


def _host(address: str) -> str:
    return address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")


def compare(here: dict[str, Any], scheduler: dict[str, Any] | None, workers: dict[str, Any],
            scheduler_address: str = "") -> list[Drift]:  # fmt: skip
    """Each package of ``here`` that differs on the scheduler or a worker (``get_versions``
    output per process: ``{"packages": {name: version}}``)."""
    seen: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))

    def note(where: str, kind: str, found: dict[str, Any] | None) -> None:
        if not isinstance(found, dict):  # a worker that failed to answer
            return
        versions = found.get("packages") or {}
        for name, mine in here.items():
            if mine is None:
                continue
            theirs = versions.get(name) or "missing"
            if name == "python":
                theirs = ".".join(str(theirs).split(".")[:3])
            if theirs != mine:
                counts = seen[name][theirs]
                counts[where + kind] = counts.get(where + kind, 0) + 1

    if scheduler is not None:
        note(_host(scheduler_address) or "?", " (scheduler)", scheduler)
    for address, found in sorted(workers.items()):
        note(_host(address), "", found)
    drifts = []
    for name, versions in seen.items():
        there = {}
        for version, places in versions.items():
            there[version] = [
                place if place.endswith("(scheduler)") else f"{place} ({n} worker{'s' * (n > 1)})"
                for place, n in sorted(places.items(), key=_scheduler_first)
            ]
        drifts.append(Drift(name, str(here[name]), there))
    return sorted(drifts, key=lambda d: (not d.breaking, d.package))


def _scheduler_first(item: tuple[str, int]) -> tuple[bool, str]:
    return (not item[0].endswith("(scheduler)"), item[0])


def this_process(names: list[str]) -> dict[str, Any]:
    from distributed.versions import get_versions

    found = dict(get_versions(names)["packages"])
    found["python"] = ".".join(str(found.get("python", "")).split(".")[:3])
    return found


def judge(drifts: list[Drift], name: str) -> list[str]:
    """Raise on a breaking drift; else the one warning line (or nothing)."""
    breaking = [d for d in drifts if d.breaking]
    if breaking:
        raise OperationError(
            f"env-check: cluster {name!r}: {'; '.join(d.line() for d in breaking)}: these "
            "cannot work together (pickling or protocol); install the same versions there, "
            "or pass --env-check off to skip this check",
            field="env_check",
        )
    if not drifts:
        return []
    return [f"env drift in cluster {name!r}: {'; '.join(d.line() for d in drifts)}"]


def versions_at(
    address: str, names: list[str], connection_args: dict[str, Any] | None = None
) -> tuple[dict[str, Any] | None, dict[str, Any], list[str]]:
    """(scheduler's versions, each worker's, the workers that did not answer in time).

    Each worker is asked directly, each with its own timeout: a hung worker is named
    instead of hanging the start or the connect (a scheduler broadcast would wait for it).
    """
    import asyncio

    from distributed.core import rpc

    from .rpc import _run

    async def one(where: str) -> Any:
        try:
            async with rpc(where, timeout=ASK_TIMEOUT_S, connection_args=connection_args) as r:
                return await asyncio.wait_for(r.versions(packages=names), ASK_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError, TimeoutError):
            return None

    async def every() -> tuple[Any, dict[str, Any]]:
        async with rpc(address, timeout=ASK_TIMEOUT_S, connection_args=connection_args) as s:
            scheduler = await asyncio.wait_for(s.versions(packages=names), ASK_TIMEOUT_S)
            identity = await asyncio.wait_for(s.identity(), ASK_TIMEOUT_S)
        workers = sorted(identity.get("workers") or {})
        found = await asyncio.gather(*(one(w) for w in workers))
        return scheduler, dict(zip(workers, found))

    scheduler, workers = _run(every, ASK_TIMEOUT_S * 3 + 1)
    silent = [w for w, found in workers.items() if found is None]
    return scheduler, {w: f for w, f in workers.items() if f is not None}, silent


def check_address(
    address: str, name: str, connection_args: dict[str, Any] | None = None
) -> list[str]:
    """Compare through the scheduler at ``address`` and its workers (no Client needed)."""
    names = packages()
    scheduler, workers, silent = versions_at(address, names, connection_args)
    lines = judge(compare(this_process(names), scheduler, workers, address), name)
    if silent:
        lines.append(
            f"env check of cluster {name!r}: not compared on {len(silent)} worker(s) that did "
            f"not answer within {ASK_TIMEOUT_S:g}s: {', '.join(silent)}"
        )
    return lines


def check_client(client: Any, name: str) -> list[str]:
    """Compare for a connected Client: straight to the scheduler and workers when its address
    is plain TCP; else (a gateway's TLS proxy) through ``Client.get_versions``, bounded."""
    address = getattr(client.scheduler, "address", "") or ""
    if address.startswith("tcp://"):
        return check_address(address, name)
    import concurrent.futures

    names = packages()
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="aiinfra-env-check")
    try:
        found = pool.submit(client.get_versions, packages=names).result(VERSIONS_TIMEOUT_S)
    except concurrent.futures.TimeoutError:
        return [
            f"env check of cluster {name!r}: no answer within {VERSIONS_TIMEOUT_S:g}s; "
            "packages not compared"
        ]
    finally:
        pool.shutdown(wait=False)
    drifts = compare(
        this_process(names), found.get("scheduler"), found.get("workers") or {}, address
    )
    return judge(drifts, name)


def wanted(spec_or_record: Any) -> bool:
    """False when the cluster was started with ``--env-check off``."""
    if isinstance(spec_or_record, dict):
        value = (spec_or_record.get("spec") or {}).get("env_check")
    else:
        value = getattr(spec_or_record, "env_check", None)
    return value is not False


def at_start(spec: Any, launched: Any) -> list[str]:
    """The drift of a cluster just launched (its warning line, or nothing); raises on a
    breaking one. A scheduler reached through TLS (a gateway) is asked through its client."""
    if not wanted(spec):
        return []
    address = launched.scheduler_address or ""
    if address.startswith("tcp://"):
        return check_address(address, spec.name)
    get_client = getattr(launched.cluster, "get_client", None)
    if get_client is None:
        return []
    client = get_client()
    try:
        return check_client(client, spec.name)
    finally:
        client.close()
