"""``ssh``: Dask workers on plain hosts over SSH (GPU workstations, cloud VMs, TPU VM slices).

Built on distributed's SSH deployment (``distributed.deploy.ssh``, asyncssh): the
scheduler runs on the first host (or, with ``--scheduler local``, in the owning
kernel or daemon) and workers on every host, ``--workers-per-host`` each, or one
``dask cuda worker`` per GPU on a GPU host. Defaults come from dask config
(``aiinfra.ssh``: ``hosts``, ``ssh-user``, ``ssh-key``, ``ssh-port``, ``known-hosts``,
``ssh-config``, ``remote-python``, ``workers-per-host``, ``gpus-per-host``,
``scheduler``); flags override it. OpenSSH's client config (``~/.ssh/config`` or
``--ssh-config``) is honoured through asyncssh: host aliases, ports, users, keys,
known-hosts files, ProxyJump.

Before anything starts every host is probed (ssh_connect.py) and refused in one line
when it cannot take part. Only paths and names are kept (the registry holds the
spec); keys stay in their files or the agent, and nothing but a fixed bootstrap is on
any remote command line (ssh_spawn.py).
"""

from __future__ import annotations

import importlib.util
import re
import time
from typing import Any

from ..checks import as_int, as_line, as_word
from ..errors import InputError, OperationError, field_error
from .backends import ClusterBackend, Launched, Option
from .spec import ClusterSpec
from .ssh_hosts import check_hosts, check_project, check_source, check_zone, hosts_from

PATH_ALLOWED = "a file path (one line)"
SCHEDULER_CHOICES = ("first", "local")
GPUS_ALLOWED = "auto (ask each host's NVML) or a count N >= 0 (0: CPU workers only)"
#: Probed hosts are reused by the launch that follows the check (same process, same target).
PROBE_REUSE_S = 120.0
WORKERS_JOIN_S = 120.0
_PROBED: dict[Any, tuple[float, dict[str, Any]]] = {}


def check_path(field: str):
    def check(value: str) -> str:
        if not value.strip():
            raise field_error(field, value, PATH_ALLOWED)
        return as_line(field, value, PATH_ALLOWED)

    return check


def check_gpus(value: str) -> str:
    text = str(value).strip().lower()
    if text == "auto":
        return text
    try:
        as_int("gpus-per-host", text, minimum=0, maximum=64)
    except InputError:
        raise field_error("gpus-per-host", value, GPUS_ALLOWED) from None
    return text


def _user(value: str) -> str:
    return as_word(
        "ssh-user", value, re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}"), "a user name"
    )


SSH_OPTIONS = (
    Option(
        "hosts",
        "hosts to run workers on, comma separated (workers on every one; the scheduler on the "
        "first unless --scheduler local); default: aiinfra.ssh.hosts",
        check=check_hosts,
        metavar="a,b,c",
    ),
    Option(
        "hosts_from",
        "take the hosts from file:PATH (one per line) or tpu:NAME (a TPU VM slice's workers, "
        "from gcloud; with --zone, --project)",
        check=check_source,
        metavar="file:PATH|tpu:NAME",
    ),
    Option("zone", "the TPU's zone (--hosts-from tpu:NAME)", check=check_zone),
    Option("project", "the TPU's project (default: gcloud's)", check=check_project),
    Option(
        "scheduler",
        "where the scheduler runs: first (the first host) or local (this kernel or daemon; "
        "the hosts must reach this machine)",
        choices=SCHEDULER_CHOICES,
    ),
    Option("ssh_user", "user on the hosts (default: ssh config, then this user)", check=_user),
    Option(
        "ssh_key",
        "private key file (default: ssh config, the agent, ~/.ssh/id_*)",
        check=check_path("ssh-key"),
        metavar="FILE",
    ),
    Option(
        "ssh_port",
        "SSH port of the hosts (default: ssh config, then 22)",
        type="integer",
        check=lambda v: as_int("ssh-port", v, minimum=1, maximum=65535),
        metavar="PORT",
    ),
    Option(
        "known_hosts",
        "known-hosts file holding the hosts' keys (default: ssh config, ~/.ssh/known_hosts); "
        "an unknown host key is refused, never trusted on first use",
        check=check_path("known-hosts"),
        metavar="FILE",
    ),
    Option(
        "ssh_config",
        "OpenSSH client config to read (default: ~/.ssh/config)",
        check=check_path("ssh-config"),
        metavar="FILE",
    ),
    Option(
        "remote_python",
        "python on the hosts, with distributed of this release (default: this python's path)",
        check=check_path("remote-python"),
        metavar="PATH",
    ),
    Option(
        "workers_per_host",
        "CPU worker processes per host (threads: the host's cores shared among them)",
        type="integer",
        check=lambda v: as_int("workers-per-host", v, minimum=1, maximum=1024),
    ),
    Option(
        "gpus_per_host",
        "GPUs per host, one dask cuda worker each: auto (each host's NVML) or N; 0: CPU only",
        check=check_gpus,
        metavar="auto|N",
    ),
)


def config(key: str, default: Any = None) -> Any:
    """``aiinfra.ssh.<key>`` from dask config (``~/.config/dask/aiinfra.yaml``)."""
    import dask

    return dask.config.get(f"aiinfra.ssh.{key}", default)


def _value(spec: ClusterSpec, name: str, check: Any = None) -> Any:
    """The flag, else dask config ``aiinfra.ssh.<name>`` checked as the flag would be."""
    if name in spec.options:
        return spec.options[name]
    key = name.replace("_", "-")
    found = config(key)
    if found is None or found == "":
        return None
    if isinstance(found, (list, tuple)) and name == "hosts":
        found = ",".join(str(h) for h in found)
    option = SshBackend.option(name)
    try:
        return option.parse(found) if option is not None else found
    except InputError as exc:
        raise InputError(f"aiinfra.ssh.{key} (dask config): {exc}", field=name) from None


def _config_source(spec: ClusterSpec) -> str | None:
    """``aiinfra.ssh.hosts-from`` (with ``zone``, ``project``) when no hosts were given."""
    source = _value(spec, "hosts_from")
    if source is None:
        return None
    return ",".join(hosts_from(source, _value(spec, "zone"), _value(spec, "project")))


def target_of(spec: ClusterSpec) -> Any:
    """The hosts and how to reach them, from the flags and dask config (pure but for config)."""
    source = spec.options.get("hosts_from")
    hosts_text = None
    if source is not None:
        hosts_text = ",".join(
            hosts_from(source, spec.options.get("zone"), spec.options.get("project"))
        )
    else:
        hosts_text = _value(spec, "hosts") or _config_source(spec)
    if not hosts_text:
        raise InputError(
            "hosts: required with --backend ssh (e.g. --hosts gpu1,gpu2 or --hosts-from "
            "file:PATH), or set aiinfra.ssh.hosts in dask config",
            field="hosts",
        )
    return reach(spec, tuple(dict.fromkeys(hosts_text.split(","))))


def reach(spec: ClusterSpec, hosts: tuple[str, ...]) -> Any:
    """How to reach ``hosts`` as ``spec`` says (its flags, else dask config): a Target.

    Also for a cluster already running (its registry record's spec), where the hosts are
    known without asking ``--hosts-from`` again (a ``gcloud`` call per question).
    """
    import sys

    from .ssh_connect import Target, expand

    where = _value(spec, "scheduler") or "first"
    return Target(
        hosts=hosts,
        scheduler_host=hosts[0] if where == "first" else None,
        python=_value(spec, "remote_python") or sys.executable,
        user=_value(spec, "ssh_user"),
        key=expand(_value(spec, "ssh_key")),
        port=_value(spec, "ssh_port"),
        known_hosts=expand(_value(spec, "known_hosts")),
        config=expand(_value(spec, "ssh_config")),
    )


def probed(target: Any, fresh: bool = False) -> dict[str, Any]:
    """The preflight facts of every host (reused for ``PROBE_REUSE_S`` unless ``fresh``)."""
    from .ssh_connect import preflight

    now = time.monotonic()
    cached = _PROBED.get(target)
    if cached is not None and not fresh and now - cached[0] < PROBE_REUSE_S:
        return cached[1]
    facts = preflight(target)
    _PROBED[target] = (now, facts)
    return facts


def plan(spec: ClusterSpec, target: Any, facts: dict[str, Any]) -> tuple[list[Any], int]:
    """(one HostSlots per worker host, the number of workers to start): pure given the facts."""
    from .ssh_spawn import HostSlots

    per_host = _value(spec, "workers_per_host") or 1
    gpus_wanted = _value(spec, "gpus_per_host") or "auto"
    slots = []
    for host in target.hosts:
        found = facts[host]
        gpus = found.gpus if gpus_wanted == "auto" else int(gpus_wanted)
        if gpus > found.gpus:
            raise InputError(
                f"gpus-per-host: got {gpus}; {host} has {found.gpus} GPU(s) (NVML)",
                field="gpus_per_host",
            )
        share = gpus or per_host
        threads = spec.threads or (1 if gpus else max(1, found.cpus // per_host))
        memory = spec.memory or f"{1 / share:.4g}"  # a fraction of the host's memory
        slots.append(HostSlots(host, threads, memory, gpus))
    default = sum(s.gpus or per_host for s in slots)
    workers = spec.workers or default
    gpu_total = sum(s.gpus for s in slots)
    if gpu_total and len(slots) == sum(1 for s in slots if s.gpus) and workers > gpu_total:
        raise InputError(
            f"workers: got {workers}; the hosts have {gpu_total} GPU(s), one worker each",
            field="workers",
        )
    return slots, workers


class SshBackend(ClusterBackend):
    name = "ssh"
    description = "workers on plain hosts over SSH (distributed's SSHCluster, asyncssh)"
    options = SSH_OPTIONS

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("asyncssh") is None:
            return "needs asyncssh (pip install 'aiinfra[ssh]')"
        return None

    def validate(self, spec: ClusterSpec) -> None:
        given = spec.options
        if "hosts" in given and "hosts_from" in given:
            raise InputError(
                "hosts-from: give --hosts or --hosts-from, not both", field="hosts_from"
            )
        source = str(given.get("hosts_from") or "")
        for key in ("zone", "project"):
            if key in given and not source.startswith("tpu:"):
                raise InputError(f"{key}: only with --hosts-from tpu:NAME", field=key)
        if source.startswith("tpu:") and "zone" not in given:
            raise InputError(
                "zone: required with --hosts-from tpu:NAME (e.g. --zone us-central2-b)",
                field="zone",
            )
        if spec.memory is not None:
            from ..checks import as_size

            as_size("memory", spec.memory)

    def check(self, spec: ClusterSpec) -> None:
        super().check(spec)
        target = target_of(spec)
        plan(spec, target, probed(target, fresh=True))

    def launch(self, spec: ClusterSpec, *, death_timeout: float) -> Launched:
        from .ssh_connect import route_address
        from .ssh_spawn import RemoteScheduler, SshSpecCluster

        target = target_of(spec)
        facts = probed(target)
        slots, workers = plan(spec, target, facts)
        from .cost import arm_idle, install_remote, scheduler_kwargs  # late: imports distributed

        if target.scheduler_host is None:  # in this process, on the address the hosts reach
            scheduler = {
                "cls": "distributed.Scheduler",
                "options": {
                    "host": route_address(target.hosts[0], target.port or 22),
                    "port": 0,
                    "dashboard_address": "127.0.0.1:0",
                    **scheduler_kwargs(),
                },
            }
        else:
            scheduler = {
                "cls": RemoteScheduler,
                "options": {
                    "address": target.scheduler_host,
                    "connect_options": target.connect_options(),
                    "remote_python": target.python,
                },
            }
        try:
            cluster = SshSpecCluster(
                slots,
                workers,
                target.connect_options(),
                target.python,
                death_timeout,
                scheduler,
                name=f"aiinfra-{spec.name}",
            )
        except Exception as exc:
            raise OperationError(
                f"cluster {spec.name!r} failed to start: {_first_line(exc)}"
            ) from None
        try:
            # A worker says "Start worker at" before the scheduler has it: wait for all of them,
            # so the start reports what runs.
            cluster.wait_for_workers(workers, timeout=WORKERS_JOIN_S)
            if target.scheduler_host is None:
                cluster.loop.add_callback(arm_idle, cluster.scheduler, spec.idle_timeout)
            else:
                from .ssh_relay import Owner, install

                install_remote(cluster.scheduler_address, idle_timeout=spec.idle_timeout)
                install(cluster.scheduler_address)
                Owner(spec.name, cluster).start()
        except BaseException:
            cluster.close(timeout=20)
            raise
        where = target.scheduler_host or "this process"
        notes = [f"scheduler on {where}; {workers} worker(s) on {', '.join(s.host for s in slots)}"]
        return Launched(
            cluster.scheduler_address, _dashboard(cluster), cluster=cluster, notes=notes
        )

    def live_details(self, record: dict[str, Any]) -> dict[str, Any]:
        """Per host: its workers (from the scheduler, so any process may ask) and, in the
        owning process, whether each worker's SSH session still runs."""
        from . import host
        from .rpc import scheduler_identity

        hosts: dict[str, dict[str, Any]] = {}
        for name in str((record.get("spec") or {}).get("hosts") or "").split(","):
            if name:
                hosts[name] = {"workers": []}
        try:
            identity = scheduler_identity(record["scheduler_address"], timeout=3)
        except (OSError, TimeoutError, KeyError):
            identity = {}
        for address, worker in sorted((identity.get("workers") or {}).items()):
            where = worker.get("host") or address.split("//")[-1].rsplit(":", 1)[0]
            hosts.setdefault(where, {"workers": []})["workers"].append(
                {
                    "name": str(worker.get("name")),
                    "address": address,
                    "threads": worker.get("nthreads"),
                    "memory": worker.get("memory_limit"),
                }
            )
        entry = host.hosted(record.get("name") or "")
        cluster = entry.launched.cluster if entry is not None else None
        if cluster is not None and hasattr(cluster, "sessions"):
            for where, sessions in cluster.sessions().items():
                hosts.setdefault(where, {"workers": []})["sessions"] = sessions
        return {"ssh_hosts": hosts}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    # SpecCluster wraps: "Cluster failed to start: <the worker's own error>"
    text = text.removeprefix("Cluster failed to start: ")
    return (text.splitlines() or [type(exc).__name__])[0]


def _dashboard(cluster: Any) -> str | None:
    try:
        return cluster.dashboard_link
    except (AttributeError, KeyError):
        return None
