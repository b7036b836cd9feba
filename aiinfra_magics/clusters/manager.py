"""The one core behind the magic, the CLI and the REST handlers for clusters.

A :class:`ClusterManager` works over one :class:`Registry` (injectable in tests
and handlers) and on any registered cluster from any process: clusters this
process owns are called directly, others through the control handler on their
scheduler. ``ClusterManager()`` works on the default registry (``$AIINFRA_HOME``);
clusters this process owns are closed by ``host.close_all`` (at exit too).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import AiinfraError, AiinfraException, InputError, NotFoundError, OperationError
from ..metrics.query import latest_hosts
from . import env_check, gateway_store, host
from .backends import ClusterBackend, backend_class, get_backend
from .info import ClusterInfo, ClusterList, cluster_to_dict, observed_state, published_to_dict
from .registry import DamagedRecord, Registry, heartbeat_age, record_alive
from .rpc import CONTROL_OP, observe_many, scheduler_call
from .spec import ClusterSpec, check_adapt

DAEMON_START_TIMEOUT_S = 180.0
IDENTITY_TIMEOUT_S = 3.0
#: How long ``cluster scale`` waits for the workers it asked for (then says how many came);
#: dask config ``aiinfra.scale-wait`` overrides it (a site whose queue is slow, a test).
SCALE_WAIT_S = 60.0


def _scale_wait() -> float:
    """Seconds ``scale`` waits for its workers: dask config ``aiinfra.scale-wait`` ("2m")."""
    import dask.config
    from dask.utils import parse_timedelta

    value = dask.config.get("aiinfra.scale-wait", None)
    try:
        return SCALE_WAIT_S if value is None else float(parse_timedelta(value, default="s"))
    except (TypeError, ValueError, KeyError) as error:
        raise InputError(
            f"aiinfra.scale-wait: got {value!r}; allowed: a duration such as 30s or 2m",
            field="aiinfra.scale-wait",
        ) from error


@dataclass
class Started:
    """What ``start`` started: the cluster as shown, and the notes to say about it."""

    info: ClusterInfo
    notes: list[str] = field(default_factory=list)

    @property
    def scheduler_address(self) -> str:
        return self.info.scheduler_address

    def __iter__(self):  # noqa: ANN204 - ``info, notes = manager.start(...)`` keeps working
        return iter((self.info, self.notes))


class ClusterManager:
    """Start, find, control and stop clusters registered in ``registry``.

    Raises (every public method):
        InputError: a field is not allowed (names the field).
        NotFoundError: no live cluster has that name.
        OperationError: a valid request that failed (start failed, scheduler gone).
    """

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry or Registry()
        #: The drift warning of the last ``connect`` (env_check.py), for the door to show.
        self.env_drift: list[str] = []

    # -- starting ---------------------------------------------------------------------------

    def prepare(self, spec: ClusterSpec, check: bool = True) -> tuple[ClusterSpec, list[str]]:
        """Resolve ``auto``, pick a free name and run the backend's checks; nothing starts yet.

        ``check=False`` leaves the backend's checks to the caller (a cluster daemon runs them).
        """
        spec, note = resolve_backend(spec)
        if spec.name is None:
            spec = spec.with_changes(name=self.registry.free_name(spec.backend))
        if check:
            get_backend(spec.backend).check(spec)
        return spec, [note] if note else []

    def start(self, spec: ClusterSpec, owner_kind: str = "kernel") -> Started:
        """Start a cluster owned by this process; return it and the notes to show.

        A cuda cluster may not take GPUs this process's JAX already uses, unless
        its ``force`` option is set.
        """
        spec, notes = self.prepare(spec)
        if spec.backend == "cuda" and not spec.option("force", False):
            _refuse_jax_overlap(spec)
        launched, record = host.host(spec, owner_kind, self.registry)
        return Started(self._info(record), [*notes, *launched.notes])

    def start_detached(
        self, spec: ClusterSpec, owner_kind: str = "cli", owner_pid: int | None = None
    ) -> Started:
        """Start a cluster in a daemon process that outlives the caller (unless ``owner_pid`` dies)."""
        # The backend's checks run in the daemon, which imports the backend's libraries anyway
        # (dask-jobqueue and distributed for slurm, ~1 s): here they would be paid twice.
        spec, notes = self.prepare(spec, check=False)
        backend = get_backend(spec.backend)
        if not backend.manages_workers:  # nothing to host: register it
            backend.check(spec)
            launched, record = host.host(spec, owner_kind, self.registry)
            return Started(self._info(record), [*notes, *launched.notes])
        # The spec goes through a pipe, not argv: argv is world-readable (ps, /proc/PID/cmdline)
        # and a spec can hold secrets (a prologue exporting an API key, gateway options).
        cmd = [sys.executable, "-m", "aiinfra_magics.clusters.daemon"]
        cmd += ["--owner-kind", owner_kind, "--registry", str(self.registry.root), "--check"]
        if owner_pid is not None:
            cmd += ["--owner-pid", str(owner_pid)]
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # detached: no signal from our terminal reaches it
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            text=True,
        )
        try:
            try:
                proc.stdin.write(json.dumps(spec.to_dict()))
                proc.stdin.close()
            except BrokenPipeError:  # it died before reading: reported below as an exit
                pass
            line = _read_first_line(proc, DAEMON_START_TIMEOUT_S)
        finally:
            proc.stdout.close()
        if not line:
            raise OperationError(
                f"cluster {spec.name!r}: the daemon exited ({proc.poll()}) before reporting; "
                f"see {self.registry.root / (spec.name + '.log')}"
            )
        reply = json.loads(line)
        if not reply["ok"]:
            if reply.get("usage"):
                raise InputError(reply["error"], field=reply.get("field"))
            raise OperationError(reply["error"], field=reply.get("field"))
        shown = ClusterInfo(reply["info"]) if reply.get("info") else self._info(reply["record"])
        return Started(shown, [*notes, *reply.get("notes", [])])

    # -- finding ----------------------------------------------------------------------------

    def record(self, name: str) -> dict[str, Any]:
        """The live record of ``name``; NotFoundError (listing the names there are) if none."""
        try:
            record = self.registry.load(name)
        except DamagedRecord as exc:
            raise OperationError(
                f"cluster {name!r}: its registry record is damaged ({exc}); if its owner still "
                f"runs, the record is rewritten within seconds; `cluster stop {name}` removes it"
            ) from None
        if record is None or not record_alive(record):
            if record is not None:
                self.registry.prune()
            found = _gateway_discovery().find(name) if gateway_store.entries() else None
            if found is not None:  # on a registered gateway, started elsewhere
                return found
            known = [r["name"] for r in self.registry.records()]
            raise NotFoundError(
                f"name: no cluster named {name!r}; registered: {', '.join(known) or 'none'}",
                field="name",
            )
        return record

    def _info(self, record: dict[str, Any]) -> ClusterInfo:
        if "identity" in record:  # found on a registered gateway: read already
            return ClusterInfo(cluster_to_dict(record, record["identity"], record.get("cost")))
        identity = figures = None
        if record.get("status") == "running" and record.get("scheduler_address"):
            try:
                backend = get_backend(record["backend"])
                identity, figures = backend.observe(record, IDENTITY_TIMEOUT_S)
            except (OSError, TimeoutError, AiinfraException):
                identity = None
        if identity is not None:
            self._refresh(record, observed_state(identity, figures))
        data = cluster_to_dict(record, identity, figures)
        data.update(_live_details(record))
        return ClusterInfo(data)

    def _refresh(self, record: dict[str, Any], seen: dict[str, Any]) -> None:
        """A live look (status, scale, adapt) from any process also updates what listings
        show, when it saw other figures than the record holds: a gateway cluster scaled
        from here is listed at its new size at once, not after its owner's next look.
        The owner's ``heartbeat`` is left alone; older figures never replace newer ones.
        """
        if heartbeat_age(record) is None:  # nobody publishes this record: nothing to refresh
            return
        shown = ("answered", "workers", "threads", "memory")
        try:
            with self.registry.lock():
                current = self.registry.read(record["name"])
                held = (current or {}).get("observed")
                if (
                    not isinstance(held, dict)
                    or current.get("scheduler_address") != record.get("scheduler_address")
                    or held.get("at", 0) >= seen["at"]
                    or all(held.get(k) == seen[k] for k in shown)
                ):
                    return
                self.registry.write({**current, "observed": seen})
        except OSError:  # a listing shows the owner's figures a little longer
            pass

    def list_clusters(self) -> ClusterList:
        """Every live cluster; damaged records are named in ``problems`` and skipped.

        A cluster whose owner publishes its state (every cluster aiinfra hosts) is shown
        from its record, without asking its scheduler or importing distributed; an owner
        gone quiet makes it ``unknown``. Only records nobody here publishes (an external
        scheduler) are asked, one identity call per distinct scheduler, all at once.
        ``cluster status NAME`` always asks.
        """
        records, damaged = self.registry.scan()
        # Each owner looked up once; each address not vouched for probed once, concurrently.
        records, lost = self.registry.live_and_lost(records)

        def asked(r: dict[str, Any]) -> str | None:
            running = r.get("status") == "running" and not _published(r)
            return r.get("scheduler_address") if running else None

        # Backends that read their schedulers their own way (a gateway's TLS proxy) go one by one.
        own = [r for r in records if not _published(r) and _observes_itself(r)]
        wanted = sorted({a for a in map(asked, records) if a and not _observes_itself_at(own, a)})
        seen = observe_many(wanted, IDENTITY_TIMEOUT_S)  # identity and cost figures

        others = [i for i, r in enumerate(records) if r not in own]
        details = dict(zip(others, _live_details_many([records[i] for i in others])))

        def listed(i: int, r: dict[str, Any]) -> ClusterInfo:
            if r in own:
                return self._info(r)
            if _published(r):
                data = published_to_dict(r)
            else:
                data = cluster_to_dict(r, *seen.get(asked(r) or "", (None, None)))
            data.update(details[i])  # a batch backend's jobs, as `status` shows them
            return ClusterInfo(data)

        infos = [listed(i, r) for i, r in enumerate(records)]
        problems = [
            f"cluster {n!r}: damaged registry record skipped ({why})" for n, why in damaged.items()
        ]
        problems += [
            f"cluster {r['name']!r}: lost, its owner ({(r.get('owner') or {}).get('kind', '?')} "
            f"pid {(r.get('owner') or {}).get('pid', '?')}) is gone; removed from the registry "
            "and recorded in `cluster history`"
            for r in lost
        ]
        if gateway_store.entries():  # clusters the user has on registered gateways
            ours = {
                r["scheduler_address"].rsplit("/", 1)[-1]
                for r in records
                if r.get("backend") == "gateway"
            }
            found, notes = _gateway_discovery().discover(ours)
            infos += [self._info(r) for r in found]
            problems += notes
        return ClusterList(infos, problems)

    def status(self, name: str) -> ClusterInfo:
        """The cluster as its scheduler says now, with each host's latest sample (``hosts``)."""
        record = self.record(name)
        info = self._info(record)
        info.data["hosts"] = latest_hosts(record)
        return info

    def dashboard(self, name: str) -> str:
        link = self.record(name).get("dashboard_link")
        if not link:
            raise OperationError(f"cluster {name!r} has no registered dashboard")
        return link

    def connect(self, name: str, timeout: str = "10s") -> Any:
        """A connected synchronous ``distributed.Client`` for the named cluster.

        Its packages are compared with this process's first (env_check.py): a breaking
        mismatch raises OperationError; other drift is left in ``self.env_drift``.
        """
        record = self.record(name)
        if record.get("backend") == "gateway":  # through the gateway's TLS proxy
            from .gateway import where

            client = _gateway_discovery().connect_client(*where(record))
        else:
            client = connect_address(record["scheduler_address"], name, timeout)
        self.env_drift = []
        if env_check.wanted(record):
            try:
                self.env_drift = env_check.check_client(client, name)
            except BaseException:
                client.close()
                raise
        return client

    # -- controlling ------------------------------------------------------------------------

    @staticmethod
    def _refuse_external(record: dict[str, Any], action: str) -> None:
        """An external scheduler's workers are not ours: say so before any other check."""
        if (record.get("owner") or {}).get("kind") == "external":
            raise InputError(
                f"name: cluster {record['name']!r} is an external scheduler "
                f"({record['scheduler_address']}); its workers are managed where it runs, "
                f"so {action} is not available",
                field="name",
            )

    def _control(self, record: dict[str, Any], action: str, **kwargs: Any) -> str | None:
        """Carry out ``action``; return a note (e.g. the gateway capped the request) or None."""
        name = record["name"]
        self._refuse_external(record, action)
        backend = get_backend(record["backend"])
        # Backends with their own service (a gateway) take scale/adapt/stop from any process;
        # a stop of a cluster owned here still goes through host (history, record).
        if type(backend).control is not ClusterBackend.control and (
            action != "stop" or host.hosted(name) is None
        ):
            if action == "stop" and name in self.registry.names():
                self.registry.update(name, stop_requested=time.time())  # tells the owner why
            return backend.control(record, action, **kwargs)
        if host.hosted(name) is not None:  # owned here: call directly
            host.apply(name, action, **kwargs)
            return None
        try:
            reply = scheduler_call(
                record["scheduler_address"], CONTROL_OP, timeout=30, action=action, **kwargs
            )
        except (OSError, TimeoutError) as exc:
            raise OperationError(f"cluster {name!r}: scheduler did not answer ({exc})") from None
        if not isinstance(reply, dict) or not reply.get("ok"):
            error = reply.get("error") if isinstance(reply, dict) else reply
            raise OperationError(f"cluster {name!r}: {action}: {error}")
        return None

    def scale(self, name: str, n: int) -> ClusterInfo:
        """Set the number of workers (ends adaptivity); returns once the scheduler sees them."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise InputError(f"n: got {n!r}; allowed: an integer >= 0", field="n")
        record = self.record(name)
        self._refuse_external(record, "scale")
        spec = _spec_of(record)
        if spec is not None:
            # validated(): the backend's rules and the common caps (--max-workers)
            spec.with_changes(workers=n or None, adapt=None).validated()
        note = self._control(record, "scale", n=n)
        # The reply from the record as it is now: the scale ended adaptivity (adapt: none).
        record = self._reread(record)
        info = self._wait_for_workers(record, min(n, cap_of(note) or n), _scale_wait())
        if note:
            info.data["notes"] = [note, *info.data.get("notes", [])]
        return info

    def _reread(self, record: dict[str, Any]) -> dict[str, Any]:
        """The registry's record of the same cluster after a change; the old one if gone."""
        try:
            return self.registry.load(record["name"]) or record
        except DamagedRecord:  # rewritten within seconds by its owner; the reply can wait
            return record

    def _wait_for_workers(self, record: dict[str, Any], n: int, timeout: float) -> ClusterInfo:
        """The cluster once ``n`` workers joined; after ``timeout``, as it is, saying so."""
        deadline = time.monotonic() + timeout
        while True:
            info = self._info(record)
            if info.workers == n or info.status != "running":
                return info
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        # Not silently the wrong count: how many came, and (batch backends) why not the rest.
        note = f"{info.workers} of {n} workers joined within {timeout:g}s"
        queue = info.data.get("queue")
        if queue:
            note += f"; jobs: {queue}"
        else:
            note += "; the rest may still come (see cluster status)"
        info.data["notes"] = [*info.data.get("notes", []), note]
        return info

    def adapt(self, name: str, minimum: int, maximum: int) -> ClusterInfo:
        """Scale between ``minimum`` and ``maximum`` workers with the load."""
        check_adapt(minimum, maximum)
        record = self.record(name)
        self._refuse_external(record, "adapt")
        spec = _spec_of(record)
        if spec is not None:
            spec.with_changes(adapt=(minimum, maximum)).validated()
        note = self._control(record, "adapt", minimum=minimum, maximum=maximum)
        info = self.status(name)
        if note:
            info.data["notes"] = [note]
        return info

    def stop(self, name: str) -> str:
        """Stop the cluster (or, for an external scheduler, forget it); return a one-line note."""
        try:
            record = self.record(name)
        except OperationError:  # damaged record: nothing can be reached through it
            self.registry.remove(name)
            return f"removed the damaged registry record of {name!r}"
        if (record.get("owner") or {}).get("kind") == "external":
            self.registry.remove(name)
            return (
                f"forgot external cluster {name!r}; "
                f"its scheduler at {record['scheduler_address']} keeps running"
            )
        self._control(record, "stop")
        if host.hosted(name) is None:
            self._wait_gone(name)
        return f"stopped cluster {name!r}"

    def _wait_gone(self, name: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.registry.read(name)
            if record is None or not record_alive(record):
                self.registry.remove(name)
                return
            time.sleep(0.05)
        raise OperationError(f"cluster {name!r} did not stop within {timeout:g}s")

    def stop_all(self) -> list[str]:
        return [self.stop(info.name) for info in self.list_clusters()]


def _published(record: dict[str, Any]) -> bool:
    """Its owner publishes what it sees (host.py's keeper): shown from the record."""
    running = record.get("status") == "running" and isinstance(record.get("observed"), dict)
    return running and heartbeat_age(record) is not None


def _observes_itself(record: dict[str, Any]) -> bool:
    try:
        return type(get_backend(record["backend"])).observe is not ClusterBackend.observe
    except AiinfraException:
        return False


def _observes_itself_at(own: list[dict[str, Any]], address: str) -> bool:
    return any(r.get("scheduler_address") == address for r in own)


def cap_of(note: str | None) -> int | None:
    """The worker limit a gateway's "capped" note names."""
    from .gateway_client import cap_of as parse

    return parse(note) if note else None


def _spec_of(record: dict[str, Any]) -> ClusterSpec | None:
    """The spec a record was started from (None for records written before specs were kept)."""
    try:
        return ClusterSpec.from_options(record.get("spec") or {})
    except InputError:
        return None


def _refuse_jax_overlap(spec: ClusterSpec) -> None:
    from ..jax.session import gpus_held_by_jax
    from .cuda import CudaBackend

    held = set(gpus_held_by_jax())
    if not held:
        return
    wanted = CudaBackend().launch_kwargs(spec, death_timeout=0)["CUDA_VISIBLE_DEVICES"].split(",")
    overlap = sorted(held & set(wanted))
    if overlap:
        free = [g for g in wanted if g not in held]
        raise InputError(
            f"gpus: GPU(s) {','.join(overlap)} are used by this kernel's JAX session; "
            f"choose others with --gpus{' (free: ' + ','.join(free) + ')' if free else ''} or add --force",
            field="gpus",
        )


def _read_first_line(proc: subprocess.Popen, timeout: float) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        proc.kill()
        raise OperationError(f"cluster daemon did not start within {timeout:g}s")
    return result[0].strip() if result else ""


def connect_address(address: str, name: str, timeout: str = "10s") -> Any:
    """A connected synchronous Client of the scheduler at ``address`` (cluster ``name``)."""
    from distributed import Client

    try:
        return Client(address, timeout=timeout, set_as_default=True)
    except (OSError, TimeoutError) as exc:
        raise OperationError(f"cluster {name!r}: cannot connect to {address} ({exc})") from None


def _live_details(record: dict[str, Any]) -> dict[str, Any]:
    """The backend's live extras (a batch queue's jobs); never fails a status call."""
    try:
        return get_backend(record.get("backend") or "").live_details(record)
    except Exception as exc:  # a broken plugin must not hide the cluster
        return {"details_error": f"{type(exc).__name__}: {exc}"}


def _live_details_many(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``_live_details`` of each record, in order, one call per backend (one squeue for all
    SLURM clusters of a listing, however many there are)."""
    by_backend: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        by_backend.setdefault(r.get("backend") or "", []).append(i)
    found: dict[int, dict[str, Any]] = {}
    for name, indices in by_backend.items():
        try:
            listed = get_backend(name).live_details_many([records[i] for i in indices])
        except Exception as exc:  # a broken plugin must not hide the clusters
            listed = [{"details_error": f"{type(exc).__name__}: {exc}"}] * len(indices)
        found.update(zip(indices, listed))
    return [found[i] for i in range(len(records))]


def resolve_backend(spec: ClusterSpec) -> tuple[ClusterSpec, str | None]:
    """Turn ``auto`` into a concrete backend and say which and why (the manager decides:
    it needs the GPU probe and the cuda backend, which the registry must not import)."""
    if spec.backend != "auto":
        return spec, None
    from ..devices.nvml import gpu_probe
    from .cuda import dask_cuda_importable

    probe = gpu_probe()
    if probe.count > 0 and dask_cuda_importable():
        note = f"auto: {probe.count} NVIDIA GPU(s) found, starting a cuda cluster"
        return spec.with_changes(backend="cuda"), note
    if probe.count > 0:
        why = (
            f"{probe.count} GPU(s) seen but dask-cuda is not installed (pip install 'aiinfra[gpu]')"
        )
    else:
        why = f"no GPU: {probe.reason}"
    local_names = {o.name for o in backend_class("local").options}
    gpu_only = [k for k in spec.options if k not in local_names]
    if gpu_only:
        option = gpu_only[0].replace("_", "-")
        raise AiinfraError(
            f"{option}: needs the cuda backend, which is unavailable here ({why})",
            field=gpu_only[0],
        )
    # Calm and plain: a CPU machine is no fault; `aiinfra devices` keeps the probe's reason.
    calm = (
        "no NVIDIA GPU found"
        if probe.count == 0
        else f"{probe.count} GPU(s) found but dask-cuda is not installed (pip install 'aiinfra[gpu]')"
    )
    return (
        spec.with_changes(backend="local").validated(),
        f"auto: {calm}, starting a local CPU cluster",
    )


def _gateway_discovery() -> Any:
    """Imported on use: only a listing with registered gateways needs the gateway client."""
    from . import gateway_discovery

    return gateway_discovery
