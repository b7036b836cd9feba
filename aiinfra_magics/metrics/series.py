"""The one core call behind ``GET aiinfra/api/clusters/NAME/metrics?since=T``."""

from __future__ import annotations

from typing import Any

from .query import parse_since, scheduler_metrics


def cluster_metrics(name: str, since: Any = None) -> dict[str, Any]:
    """Each host's samples of cluster ``name`` taken after ``since`` (all kept when None).

    Raises:
        InputError: ``since`` is not a Unix time (names the field).
        NotFoundError: no live cluster has that name.
        OperationError: its scheduler did not answer.
    """
    from ..clusters.manager import ClusterManager

    when = parse_since(since)  # before any lookup: a bad value is a 400 whatever the name
    return scheduler_metrics(ClusterManager().record(name), since=when)
