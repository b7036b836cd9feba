"""A registered adaptive cluster at 0 workers (issue 25 item 11): steps wait for workers.

The workers' resources come from dask's own config (``distributed.worker.resources``, here
through its environment variable), as a site would give them; the cluster daemon inherits it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from waiting import wait_for

from aiinfra_magics.clusters.manager import ClusterManager
from aiinfra_magics.clusters.spec import ClusterSpec
from aiinfra_magics.pipelines.runner import run_pipeline

STEP = (
    "import json, os\n"
    "os.makedirs('out', exist_ok=True)\n"
    "json.dump(os.getpid(), open('out/done.json', 'w'))"
)


@contextlib.contextmanager
def adapted_to_zero(name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A detached local cluster with ``--adapt 0:2`` whose workers offer ``slot=1``, once it
    has no worker left; stopped afterwards."""
    # Dask lower-cases config keys from the environment: the resource is "slot".
    monkeypatch.setenv("DASK_DISTRIBUTED__WORKER__RESOURCES__SLOT", "1")
    spec = {"name": name, "backend": "local", "adapt": "0:2", "threads": 1}
    ClusterManager().start_detached(ClusterSpec.from_options(spec))
    try:
        # LocalCluster starts its default workers; adaptivity then retires them all.
        wait_for(
            lambda: ClusterManager().status(name).workers == 0, 120, "the cluster to adapt to 0"
        )
        yield name
    finally:
        ClusterManager().stop(name)


def test_a_step_asking_a_resource_waits_for_the_workers_adaptive_scaling_brings(
    tmp_path, notebook, pipeline_file, monkeypatch
):
    notebook(tmp_path / "step.ipynb", "upstream = {}\nproduct = []", STEP)
    path = pipeline_file(
        tmp_path,
        {
            "name": "elastic",
            "steps": {
                "step": {
                    "notebook": "step.ipynb",
                    "resources": {"slot": 1},
                    "products": ["out/done.json"],
                }
            },
        },
    )
    with adapted_to_zero("elastic", monkeypatch) as cluster:
        run = run_pipeline(path, cluster=cluster)
    assert run.data["cluster"]["workers"] == 0  # no worker when the run opened the cluster
    assert run.status == "ok", run.summary()
    assert run.steps["step"]["status"] == "ok" and run.steps["step"]["attempts"] == 1
    assert (tmp_path / "out" / "done.json").exists()


def test_a_resource_the_first_workers_do_not_offer_is_one_error(
    tmp_path, notebook, pipeline_file, monkeypatch
):
    notebook(tmp_path / "step.ipynb", "upstream = {}\nproduct = []", STEP)
    path = pipeline_file(
        tmp_path,
        {
            "name": "elastic",
            "steps": {
                "plain": {"notebook": "step.ipynb", "products": ["out/done.json"]},
                "big": {"notebook": "step.ipynb", "after": ["plain"], "resources": {"GPU": 1}},
            },
        },
    )
    with adapted_to_zero("elastic2", monkeypatch) as cluster, pytest.raises(Exception) as caught:
        run_pipeline(path, cluster=cluster)
    error = caught.value
    assert getattr(error, "field", None) == "steps.big.resources"
    assert str(error) == (
        "steps.big.resources: got GPU=1; allowed: what a worker of this cluster offers (slot=1)"
    )
