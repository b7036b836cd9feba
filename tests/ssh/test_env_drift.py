"""Environment drift at cluster start and connect: a warning line, or an error when the
versions cannot work together; ``--env-check off`` skips it.

The hosts' Python is this one behind a wrapper whose path holds package metadata of other
versions (found first by importlib.metadata, so distributed's own version report sees them):
a second environment without a second download.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from waiting import wait_for

from aiinfra_magics.clusters.env_check import Drift, compare, judge
from aiinfra_magics.clusters.manager import ClusterManager
from aiinfra_magics.clusters.spec import ClusterSpec
from aiinfra_magics.errors import OperationError


def python_with(tmp_path: Path, **versions: str) -> Path:
    """A python whose package metadata says ``versions`` (e.g. numpy="1.26.4")."""
    site = tmp_path / "site"
    for name, version in versions.items():
        info = site / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    wrapper = tmp_path / "python-drifted"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={site} exec {sys.executable} "$@"\n')
    wrapper.chmod(0o700)
    return wrapper


def test_another_numpy_on_the_workers_is_one_warning_line(sshd, tmp_path):
    import numpy

    python = python_with(tmp_path, numpy="1.26.4")
    manager = ClusterManager()
    spec = {"name": "drift", **sshd.options(hosts="127.0.0.2", remote_python=str(python))}
    started = manager.start(ClusterSpec.from_options(spec))
    try:
        line = (
            f"env drift in cluster 'drift': numpy {numpy.__version__} here, 1.26.4 on "
            "127.0.0.2 (scheduler), 127.0.0.2 (1 worker)"
        )
        assert line in started.notes
        status = manager.status("drift")
        assert status.data["env_drift"] == [line] and line in status.data["warnings"]
        client = manager.connect("drift")  # connect compares again
        client.close()
        assert manager.env_drift == [line]
    finally:
        manager.stop("drift")


def test_a_breaking_mismatch_stops_the_start_and_env_check_off_skips_it(sshd, tmp_path):
    import cloudpickle

    python = python_with(tmp_path, cloudpickle="2.2.1")
    manager = ClusterManager()
    options = sshd.options(hosts="127.0.0.1", remote_python=str(python))
    with pytest.raises(OperationError) as err:
        manager.start(ClusterSpec.from_options({"name": "broken", **options}))
    assert str(err.value) == (
        f"env-check: cluster 'broken': cloudpickle {cloudpickle.__version__} here, 2.2.1 on "
        "127.0.0.1 (scheduler), 127.0.0.1 (1 worker): these cannot work together (pickling "
        "or protocol); install the same versions there, or pass --env-check off to skip "
        "this check"
    )
    assert err.value.field == "env_check"
    assert "broken" not in [c.name for c in manager.list_clusters()]
    started = manager.start(
        ClusterSpec.from_options({"name": "skipped", "env_check": "off", **options})
    )
    try:
        assert started.info.workers == 1 and not manager.status("skipped").data["env_drift"]
    finally:
        manager.stop("skipped")
    wait_for(lambda: not sshd.started_processes(), 60, "nothing left on the hosts")


def test_compare_names_package_versions_and_hosts():
    here = {"numpy": "2.4.6", "distributed": "2026.8.0", "jax": "0.10.2", "numba": None}
    workers = {
        "tcp://10.0.0.2:1": {"packages": {"numpy": "2.3.0", "distributed": "2026.8.1"}},
        "tcp://10.0.0.2:2": {"packages": {"numpy": "2.3.0", "distributed": "2026.8.1"}},
        "tcp://10.0.0.3:1": {"packages": {"numpy": "2.4.6", "distributed": "2026.8.0",
                                          "jax": "0.10.2"}},
        "tcp://10.0.0.4:1": "OSError: did not answer",
    }  # fmt: skip
    drifts = compare(here, {"packages": here}, workers, "tcp://10.0.0.1:8786")
    assert drifts == [
        Drift("distributed", "2026.8.0", {"2026.8.1": ["10.0.0.2 (2 workers)"]}),
        Drift("jax", "0.10.2", {"missing": ["10.0.0.2 (2 workers)"]}),
        Drift("numpy", "2.4.6", {"2.3.0": ["10.0.0.2 (2 workers)"]}),
    ]
    # A patch release of distributed speaks the same protocol: a warning, not an error.
    assert not any(d.breaking for d in drifts)
    assert judge(drifts, "c") == [
        "env drift in cluster 'c': distributed 2026.8.0 here, 2026.8.1 on 10.0.0.2 (2 workers); "
        "jax 0.10.2 here, missing on 10.0.0.2 (2 workers); numpy 2.4.6 here, 2.3.0 on "
        "10.0.0.2 (2 workers)"
    ]
    older = compare({"distributed": "2026.8.0"}, None, {"tcp://h:1": {"packages": {
        "distributed": "2026.7.1"}}})  # fmt: skip
    assert older[0].breaking
    with pytest.raises(OperationError, match=r"^env-check: cluster 'c': distributed 2026\.8\.0"):
        judge(older, "c")


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_env_check_takes_on_or_off(value):
    with pytest.raises(ValueError, match=f"^env-check: got '{value}'; allowed: on | off"):
        ClusterSpec.from_options({"backend": "local", "env_check": value})
