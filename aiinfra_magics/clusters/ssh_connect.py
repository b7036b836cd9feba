"""Reaching the hosts of an SSH cluster, and the checks that run before anything starts.

Every host is probed at once (one SSH session each, a few milliseconds of Python on
the host): a host that cannot be reached, a host key that is unknown or does not
match, a Python that is not there, or a ``distributed`` that cannot talk to ours is
refused in one line naming the host, before any scheduler or worker starts. Host keys
are never trusted on first use: an unknown key is refused unless the user names a
known-hosts file that holds it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import threading
import warnings
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import OperationError

CONNECT_TIMEOUT_S = 10.0
PROBE_TIMEOUT_S = 60.0
#: Packages the probe reports (drift is checked on them again once workers run).
PROBED = ("distributed", "dask", "cloudpickle", "msgpack", "tornado", "numpy", "aiinfra")
PROBE = (
    "import json,os,sys\n"
    "from importlib import metadata\n"
    "def v(n):\n"
    "    try:\n"
    "        return metadata.version(n)\n"
    "    except Exception:\n"
    "        return None\n"
    "g=0\n"
    "try:\n"
    "    import pynvml\n"
    "    pynvml.nvmlInit()\n"
    "    g=pynvml.nvmlDeviceGetCount()\n"
    "except Exception:\n"
    "    pass\n"
    "print(json.dumps({'python':sys.version.split()[0],'executable':sys.executable,"
    "'cpus':os.cpu_count(),'memory':os.sysconf('SC_PAGE_SIZE')*os.sysconf('SC_PHYS_PAGES'),"
    "'gpus':g,'packages':{n:v(n) for n in json.loads(sys.argv[1])}}))\n"
)


@cache
def asyncssh() -> ModuleType:
    """``asyncssh``, imported without its DSA deprecation warnings (shown in a kernel)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import asyncssh as module
    return module


@dataclass(frozen=True)
class Target:
    """Where and how to reach the hosts: the resolved flags and dask config."""

    hosts: tuple[str, ...]  # worker hosts
    scheduler_host: str | None  # None: the scheduler runs in the owning process
    python: str
    user: str | None = None
    key: str | None = None
    port: int | None = None
    known_hosts: str | None = None
    config: str | None = None

    @property
    def all_hosts(self) -> tuple[str, ...]:
        """Every distinct host, the scheduler's first."""
        first = (self.scheduler_host,) if self.scheduler_host else ()
        return tuple(dict.fromkeys((*first, *self.hosts)))

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments of ``asyncssh.connect`` (paths only: no secret is held here)."""
        options: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S}
        if self.user:
            options["username"] = self.user
        if self.key:
            options["client_keys"] = [self.key]
        if self.port:
            options["port"] = self.port
        if self.known_hosts:
            options["known_hosts"] = self.known_hosts
        if self.config:
            options["config"] = [self.config]
        return options


@dataclass
class HostFacts:
    """What the probe found on one host."""

    host: str
    python: str
    executable: str
    cpus: int
    memory: int
    gpus: int
    packages: dict[str, str | None] = field(default_factory=dict)


class Refused(OperationError):
    """A host that cannot take part: one line naming the host and what failed."""


def local_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def release(text: str | None) -> tuple[str, ...]:
    """``2026.8.0`` -> ``("2026", "8")``: distributed speaks one protocol per release."""
    return tuple((text or "").split(".")[:2])


def _known_hosts_file(target: Target) -> Path | None:
    if target.known_hosts:
        return Path(target.known_hosts).expanduser()
    default = Path("~/.ssh/known_hosts").expanduser()
    return default if default.exists() else None


def _port(target: Target) -> int:
    return target.port or 22


async def _host_key_refusal(host: str, target: Target) -> Refused:
    """Unknown or changed: which, with the key the host offered (its fingerprint)."""
    mod = asyncssh()
    where = f"{host}:{_port(target)}"
    try:
        offered = await asyncio.wait_for(
            mod.get_server_host_key(host, _port(target)), CONNECT_TIMEOUT_S
        )
        fingerprint = offered.get_fingerprint() if offered is not None else "unknown"
    except Exception:  # the refusal stands without the fingerprint
        fingerprint = "unknown"
    path = _known_hosts_file(target)
    listed = []
    if path is not None and path.exists():
        try:
            known = mod.read_known_hosts(str(path))
            listed = list(known.match(host, host, _port(target))[0])
        except (OSError, ValueError):
            listed = []
    if listed:
        return Refused(
            f"known-hosts: {where}: host key {fingerprint} does not match the one in {path}; "
            "refused (if the host was reinstalled, replace its line; otherwise someone may be "
            "in the middle)",
            field="known_hosts",
        )
    shown = str(path) if path is not None else "~/.ssh/known_hosts"
    return Refused(
        f"known-hosts: {where}: host key {fingerprint} is not in {shown}; never trusted on "
        f"first use: check the fingerprint, then add it (ssh-keyscan -p {_port(target)} {host} "
        ">> FILE) and pass --known-hosts FILE",
        field="known_hosts",
    )


async def _connect(host: str, target: Target) -> Any:
    mod = asyncssh()
    where = f"{host}:{_port(target)}"
    try:
        return await mod.connect(host, **target.connect_options())
    except mod.HostKeyNotVerifiable:
        raise await _host_key_refusal(host, target) from None
    except mod.PermissionDenied as exc:
        user = target.user or "(from ssh config or this user)"
        raise Refused(
            f"ssh-key: {where}: user {user} was refused ({exc.reason}); "
            "check --ssh-user and --ssh-key",
            field="ssh_key",
        ) from None
    except (asyncio.TimeoutError, TimeoutError):
        raise Refused(
            f"hosts: {where}: unreachable (no SSH answer within {CONNECT_TIMEOUT_S:g}s)",
            field="hosts",
        ) from None
    except mod.Error as exc:
        raise Refused(f"hosts: {where}: SSH failed ({exc.reason})", field="hosts") from None
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc))
        raise Refused(f"hosts: {where}: unreachable ({why})", field="hosts") from None


async def probe_host(host: str, target: Target) -> HostFacts:
    """Connect, run the probe with the host's Python; refuse in one line naming the host."""
    connection = await _connect(host, target)
    try:
        command = (
            f"exec {shlex.quote(target.python)} -c {shlex.quote(PROBE)} "
            f"{shlex.quote(json.dumps(PROBED))}"
        )
        done = await connection.run(command, timeout=PROBE_TIMEOUT_S)
    finally:
        connection.close()
    if done.exit_status in (126, 127):
        why = (str(done.stderr or "").strip().splitlines() or ["not found"])[-1]
        raise Refused(
            f"remote-python: {host}: no such Python {target.python!r} ({why})",
            field="remote_python",
        )
    try:
        facts = json.loads(str(done.stdout).strip().splitlines()[-1])
    except (ValueError, IndexError):
        why = (str(done.stderr or "").strip().splitlines() or ["no output"])[-1]
        raise Refused(
            f"remote-python: {host}: {target.python} did not run the probe "
            f"(exit {done.exit_status}: {why})",
            field="remote_python",
        ) from None
    found = HostFacts(
        host,
        facts["python"],
        facts["executable"],
        int(facts["cpus"] or 1),
        int(facts["memory"] or 0),
        int(facts["gpus"] or 0),
        facts["packages"],
    )
    check_distributed(found, target.python)
    return found


def check_distributed(facts: HostFacts, python: str) -> None:
    """Refuse a host whose ``distributed`` is missing or of another release than ours."""
    ours, theirs = local_version("distributed"), facts.packages.get("distributed")
    if theirs is None:
        raise Refused(
            f"remote-python: {facts.host}: {python} has no distributed installed "
            f"(here: {ours}); install distributed=={ours} there or point --remote-python at a "
            "Python that has it",
            field="remote_python",
        )
    if release(theirs) != release(ours):
        raise Refused(
            f"remote-python: {facts.host}: distributed {theirs} there cannot talk to {ours} here "
            f"(the release, {'.'.join(release(ours))}, must match); install distributed=={ours} "
            "there",
            field="remote_python",
        )


def preflight(target: Target) -> dict[str, HostFacts]:
    """Probe every host at once; the first refusal (in host order) is raised."""

    async def every() -> list[Any]:
        return await asyncio.gather(
            *(probe_host(h, target) for h in target.all_hosts), return_exceptions=True
        )

    results = run_async(every)
    for result in results:
        if isinstance(result, BaseException):
            if isinstance(result, Refused):
                raise result
            raise OperationError(f"hosts: probing failed: {type(result).__name__}: {result}")
    return {facts.host: facts for facts in results}


def why_not(host: str, target: Target, timeout: float) -> str | None:
    """Why ``host`` cannot run a worker now, in the start refusals' words; None if it can.

    The same probe as at start (connect, host key, Python, distributed), bounded by
    ``timeout``: asked while something waits (an SPMD cell's start barrier).
    """

    async def one() -> HostFacts:
        return await asyncio.wait_for(probe_host(host, target), timeout)

    try:
        run_async(one)
    except Refused as exc:
        return str(exc)
    except (asyncio.TimeoutError, TimeoutError):
        return (
            f"hosts: {host}:{_port(target)}: unreachable (no answer to the probe within "
            f"{timeout:g}s)"
        )
    except Exception as exc:  # noqa: BLE001 - said, not raised: the caller reports it
        return f"hosts: {host}:{_port(target)}: probing failed ({type(exc).__name__}: {exc})"
    return None


def run_async(factory: Any) -> Any:
    """Run a coroutine to completion from sync code, also inside a running loop (a kernel)."""
    box: dict[str, Any] = {}

    def runner() -> None:
        try:
            box["value"] = asyncio.run(factory())
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=runner, name="aiinfra-ssh-probe", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def route_address(host: str, port: int = 22) -> str:
    """This machine's address on the route to ``host`` (where its workers reach our scheduler)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((host, port))  # UDP: no packet is sent
            return sock.getsockname()[0]
    except OSError:
        return "127.0.0.1" if family == socket.AF_INET else "::1"


def expand(path: str | None) -> str | None:
    return os.path.expanduser(path) if path else None
