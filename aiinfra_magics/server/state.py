"""Per-server state shared by the handlers: thread pool, sampler, caches, owned clusters."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import ipaddress
import os
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .base import RequestError
from .sampler import GpuSampler

# The inventory probes NVML, PCI and /proc and changes rarely; the cluster list
# asks every registered scheduler for its workers (one RPC each). Both are served
# from a copy at most this old, refreshed by one background call however many
# clients poll, so a request never waits on probes or schedulers once warm.
INVENTORY_TTL_S = 10.0
CLUSTERS_TTL_S = 1.0
# The proxy looks up a cluster's dashboard address for every static file the
# dashboard loads; a short cache keeps that off the registry, and a stopped
# cluster still disappears from the proxy within this many seconds.
TARGET_TTL_S = 3.0
# How long a dashboard link handed to the browser stays usable (a lab tab that
# stays open longer is reopened from the panel, which hands out a fresh one).
CAPABILITY_TTL_S = 12 * 3600
# A capability's expiry is a Unix time in hex (8-9 digits for centuries); a longer
# one is not ours, and turning thousands of digits into decimal text raises (a 500).
MAX_EXPIRY_HEX = 16
SIGNATURE_HEX = 40
# Cluster starts in flight at once through this server. Each start is a daemon
# process and a thread that waits for it; without a bound, one client's burst of
# starts holds every daemon and thread (issue 25: 50 starts, 51 daemons, 4.5 GB).
MAX_CLUSTER_STARTS = 4
# Threads for everything but starts (reads, stops, scales, cache refreshes).
CORE_THREADS = 8


class Cached:
    """A blocking call's result, refreshed in the executor when older than ``ttl``.

    A stale copy is served while one refresh runs; ``invalidate()`` (after a
    change made through this server) drops it so the next read waits for data
    fetched after the change.
    """

    def __init__(self, fn: Any, ttl: float, executor: ThreadPoolExecutor) -> None:
        self._fn = fn
        self._ttl = ttl
        self._executor = executor
        self._value: Any = None
        self._at = 0.0
        self._generation = 0
        self._refresh: asyncio.Future | None = None
        self._refresh_generation = -1

    def invalidate(self) -> None:
        self._generation += 1
        self._value = None

    async def get(self) -> Any:
        if self._value is not None and time.monotonic() - self._at < self._ttl:
            return self._value
        stale = self._refresh is None or self._refresh.done()
        if stale or self._refresh_generation != self._generation:
            generation = self._generation
            refresh = asyncio.get_running_loop().run_in_executor(self._executor, self._fn)

            def store(done: asyncio.Future) -> None:
                if not done.cancelled() and done.exception() is None:
                    if generation == self._generation:
                        self._value, self._at = done.result(), time.monotonic()

            refresh.add_done_callback(store)
            self._refresh, self._refresh_generation = refresh, generation
        if self._value is None:
            return await asyncio.shield(self._refresh)
        return self._value


class StartsBusy(RequestError):
    """Refused: ``limit`` cluster starts are already in flight (HTTP 429)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            429,
            f"cluster start: {limit} starts already in progress on this server; "
            f"allowed: at most {limit} at once (max_cluster_starts); retry when one finishes",
        )
        self.limit = limit


class ServerState:
    def __init__(
        self, sampler_interval: float = 1.0, max_cluster_starts: int = MAX_CLUSTER_STARTS
    ) -> None:
        # A few threads: core calls block on schedulers and processes, not on CPU.
        # Reads, stops and scales share this pool; starts, which wait seconds to minutes
        # on a daemon, have their own, so a read never queues behind them.
        self.executor = ThreadPoolExecutor(
            max_workers=CORE_THREADS, thread_name_prefix="aiinfra-core"
        )
        self.max_cluster_starts = max(1, int(max_cluster_starts))
        self.start_executor = ThreadPoolExecutor(
            max_workers=self.max_cluster_starts, thread_name_prefix="aiinfra-start"
        )
        self.starts_in_flight = 0  # only touched on the event loop: no lock
        self.sampler = GpuSampler(interval=sampler_interval)
        self.started_clusters: set[str] = set()
        self.owner_pid = os.getpid()
        self.inventory = Cached(_inventory, INVENTORY_TTL_S, self.executor)
        self.clusters = Cached(_clusters, CLUSTERS_TTL_S, self.executor)
        self._targets: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._capability_key = secrets.token_bytes(32)  # dies with the server
        # Pipeline runs started through this server, and those a server before it started
        # that still run (or ended lately): runs outlive the server that started them.
        self.launches: dict[str, dict[str, Any]] = self._adopt()

    def home(self) -> Path:
        from ..paths import aiinfra_home

        return aiinfra_home()  # created 0700

    def _adopt(self) -> dict[str, dict[str, Any]]:
        from .launch import adopt

        try:
            return adopt(self.home() / "pipelines")
        except OSError:  # no home to read: nothing to adopt, and the server still starts
            return {}

    def launch_pipeline(self, path: Path, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """:func:`.launch.start` (its arguments after ``home``), remembered by launch id.

        Raises:
            OSError: the process could not be started (as :func:`.launch.start`).
        """
        from .launch import start

        launch = start(self.home() / "pipelines", path, *args, **kwargs)
        self.launches[launch["launch"]] = launch
        return launch

    async def start_cluster(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a cluster start on the start pool, or raise StartsBusy when it is full.

        Counted on the event loop, so the check and the increment cannot interleave.
        """
        if self.starts_in_flight >= self.max_cluster_starts:
            raise StartsBusy(self.max_cluster_starts)
        self.starts_in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self.start_executor, functools.partial(fn, *args, **kwargs)
            )
        finally:
            self.starts_in_flight -= 1

    def dashboard_target(self, name: str) -> str:
        """``scheme://host:port`` of a registered cluster's dashboard (blocking; run in a thread).

        Only the registry decides where the proxy may connect: the request names
        a cluster, never a host. The dashboard must be on its scheduler's own
        host, so a record cannot turn the proxy towards another machine.
        """
        from ..clusters.manager import ClusterManager
        from ..clusters.registry import Registry
        from ..errors import OperationError

        now = time.monotonic()
        with self._lock:
            cached = self._targets.get(name)
            if cached and now - cached[0] < TARGET_TTL_S:
                return cached[1]
        link = ClusterManager().dashboard(name)  # NotFoundError for names not in the registry
        parts = urlsplit(link)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OperationError(f"cluster {name!r}: dashboard link {link!r} is not an http URL")
        record = Registry().read(name) or {}
        scheduler = urlsplit(str(record.get("scheduler_address") or "")).hostname
        if not _same_host(parts.hostname, scheduler):
            raise OperationError(
                f"cluster {name!r}: dashboard {parts.hostname!r} is not on the scheduler's "
                f"host {scheduler!r}; the proxy only reaches a scheduler's own dashboard"
            )
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            raise OperationError(
                f"cluster {name!r}: dashboard link {link!r} has a bad port"
            ) from None
        target = f"{parts.scheme}://{host}{port}"  # no user:password@ from the record
        with self._lock:
            self._targets[name] = (now, target)
        return target

    def dashboard_capability(self, name: str, now: float | None = None) -> str:
        """A path token that lets a sandboxed page load ``name``'s dashboard until it expires."""
        expires = int((now if now is not None else time.time()) + CAPABILITY_TTL_S)
        return f"{expires:x}.{self._sign(name, expires)}"

    def dashboard_capability_ok(self, name: str, capability: str) -> bool:
        expires_hex, _, signature = capability.partition(".")
        if len(expires_hex) > MAX_EXPIRY_HEX or len(signature) != SIGNATURE_HEX:
            return False
        try:
            expires = int(expires_hex, 16)
        except ValueError:
            return False
        if expires < time.time():
            return False
        return hmac.compare_digest(signature, self._sign(name, expires))

    def _sign(self, name: str, expires: int) -> str:
        message = f"dashboard\n{name}\n{expires}".encode()
        return hmac.new(self._capability_key, message, hashlib.sha256).hexdigest()[:SIGNATURE_HEX]

    def forget_target(self, name: str) -> None:
        with self._lock:
            self._targets.pop(name, None)

    def close(self) -> None:
        # Pipeline runs are left running: they belong to no server (the next one adopts them).
        self.sampler.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.start_executor.shutdown(wait=False, cancel_futures=True)


def _same_host(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    a, b = a.lower().strip("[]"), b.lower().strip("[]")
    return a == b or (_loopback(a) and _loopback(b))


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _inventory() -> dict[str, Any]:
    from .. import devices

    return {"available": True, **devices.inventory()}


def _clusters() -> list[dict[str, Any]]:
    from ..clusters.manager import ClusterManager

    return ClusterManager().list_clusters().to_dict()
