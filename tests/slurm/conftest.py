from __future__ import annotations

from slurm_fixture import slurm, slurm_cluster  # noqa: F401 - fixtures for this folder
