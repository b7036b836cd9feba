"""``address``: attach to a scheduler that runs elsewhere (any host on the network)."""

from __future__ import annotations

from ..errors import AiinfraError
from .backends import ClusterBackend, Launched
from .rpc import scheduler_identity
from .spec import ClusterSpec

CONNECT_TIMEOUT_S = 5.0


def dashboard_from_identity(address: str, identity: dict) -> str | None:
    port = identity.get("services", {}).get("dashboard")
    if not port:
        return None
    host = address.split("://", 1)[-1].rsplit(":", 1)[0]
    return f"http://{host}:{port}/status"


class AddressBackend(ClusterBackend):
    name = "address"
    manages_workers = False

    def launch(self, spec: ClusterSpec, *, death_timeout: float) -> Launched:
        assert spec.address is not None  # the spec guarantees it for this backend
        try:
            identity = scheduler_identity(spec.address, timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:
            raise AiinfraError(
                f"address: no Dask scheduler answers at {spec.address} "
                f"within {CONNECT_TIMEOUT_S:g}s ({type(exc).__name__}); "
                "check the host, the port and that the scheduler is running",
                field="address",
            ) from None
        return Launched(spec.address, dashboard_from_identity(spec.address, identity))
