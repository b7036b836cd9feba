"""``address``: attach to a scheduler that runs elsewhere (any host on the network).

The scheduler is not ours: we never scale or stop it. Its dashboard is only what
the user registered (``--dashboard PORT``, on the scheduler's own host), never a
port the remote process reports about itself: the lab proxies that dashboard
with the user's session, so a hostile scheduler must not choose where it points.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ..checks import as_int, matches
from ..errors import InputError, OperationError
from .backends import ClusterBackend, Launched, Option
from .rpc import check_dask_handshake, scheduler_identity
from .spec import ClusterSpec

CONNECT_TIMEOUT_S = 5.0
ADDRESS_ALLOWED = "a scheduler URL like tcp://host:8786"


ADDRESS_PATTERN = re.compile(r"(tcp|tls|ucx|inproc)://\[?[A-Za-z0-9_.:-]+\]?:\d{1,5}")


def _check_address(value: str) -> str:
    if not matches(ADDRESS_PATTERN, value):
        raise InputError(
            f"address: got {value[:80]!r}; allowed: {ADDRESS_ALLOWED}", field="address"
        )
    return value


def dashboard_link(address: str, port: int | None) -> str | None:
    """The dashboard the user registered: ``http://<scheduler host>:PORT/status``."""
    if port is None:
        return None
    host = urlsplit(address).hostname or ""
    return f"http://{host if ':' not in host else '[' + host + ']'}:{port}/status"


class AddressBackend(ClusterBackend):
    name = "address"
    description = "a Dask scheduler that already runs (its workers are managed where it runs)"
    manages_workers = False
    options = (
        Option("address", ADDRESS_ALLOWED, check=_check_address, metavar="URL"),
        Option(
            "dashboard",
            "port of the scheduler's dashboard, on the scheduler's host (shown and proxied)",
            type="integer",
            check=lambda v: as_int("dashboard", v, minimum=1, maximum=65535),
            metavar="PORT",
        ),
    )

    def validate(self, spec: ClusterSpec) -> None:
        if not spec.option("address"):
            raise InputError(
                "address: required with --backend address (e.g. tcp://host:8786)", field="address"
            )

    def launch(self, spec: ClusterSpec, *, death_timeout: float) -> Launched:
        address = spec.option("address")
        # One message whatever is (or is not) listening there: this must not work as a port probe.
        failure = OperationError(
            f"address: no Dask scheduler answers at {address} within {CONNECT_TIMEOUT_S:g}s; "
            "check the host, the port and that the scheduler is running",
            field="address",
        )
        try:
            check_dask_handshake(address, timeout=CONNECT_TIMEOUT_S)
            scheduler_identity(address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError):
            raise failure from None
        notes = [note] if (note := _sample_workers(address, spec)) else []
        if spec.option("dashboard") is None:
            notes.append(
                "no dashboard registered for this scheduler; add --dashboard PORT to see it"
            )
        return Launched(address, dashboard_link(address, spec.option("dashboard")), notes=notes)


def _sample_workers(address: str, spec: ClusterSpec) -> str | None:
    """Add the workers' metrics to the scheduler when it accepts plugins; else a note why not."""
    from ..metrics.plugins import install_remote  # late: imports distributed

    try:
        install_remote(address, spec=spec)
    except Exception as exc:  # a scheduler that refuses pickled plugins, an older distributed
        return (
            f"no per-host metrics: the scheduler did not accept the metrics plugin "
            f"({type(exc).__name__}: {str(exc)[:120]})"
        )
    return None
