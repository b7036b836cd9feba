"""Environment drift at cluster start and connect: a warning line, or an error when the
versions cannot work together; ``--env-check off`` skips it.

Another numpy is a real second venv (``numpy_venv``): its own site-packages hold the numpy
pip installed, and a ``.pth`` file adds this venv's site-packages after them, so the
editable aiinfra and distributed are found but its own numpy wins. Its python is the hosts'
``--remote-python``. Each is built once into ``<this venv>/drift-venvs/`` (git-ignored; a
temp folder when tests run outside a venv), under a file lock, and reused; the tests skip
only when pip cannot download that numpy (no index reachable).

- numpy 2.2.6 there (2.x here): one warning line, and the workers compute with arrays sent
  from here.
- numpy 1.26.4 there: an error, since numpy 2's pickles name ``numpy._core``, which numpy 1
  lacks; with ``--env-check off`` the cluster starts and a task holding an array really
  fails to deserialize. (This venv's pandas and jax do not import beside numpy 1.26, as
  they need numpy 2; a Dask worker does not import them.)

The cloudpickle mismatch is this python behind a wrapper whose path holds cloudpickle
metadata of another version (found first by importlib.metadata, so distributed's own
version report sees it): a real cloudpickle 2 could not load what distributed sends.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from waiting import wait_for

from aiinfra_magics.clusters.env_check import Drift, compare, judge
from aiinfra_magics.clusters.manager import ClusterManager
from aiinfra_magics.clusters.spec import ClusterSpec
from aiinfra_magics.errors import OperationError

#: Another numpy 2 (a warning), and a numpy 1 (an error: it cannot load numpy 2's pickles).
NUMPY_2 = "2.2.6"
NUMPY_1 = "1.26.4"


def _venvs_folder() -> Path:
    """Where second venvs are kept between runs: inside this venv (git-ignored), else tmp."""
    if sys.prefix != sys.base_prefix and os.access(sys.prefix, os.W_OK):
        return Path(sys.prefix) / "drift-venvs"
    return Path(tempfile.gettempdir()) / "aiinfra-drift-venvs"


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def _build_venv(final: Path, numpy_version: str) -> None:
    """Build the venv in a sibling temp folder, then rename it into place (atomic)."""
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        wheels = work / "wheels"
        got = _pip("download", "--no-deps", "--only-binary=:all:", "-d", str(wheels),
                   f"numpy=={numpy_version}")  # fmt: skip
        if got.returncode != 0:
            last = (got.stderr.strip() or got.stdout.strip()).splitlines()[-1:] or ["?"]
            pytest.skip(f"pip cannot download numpy=={numpy_version} for a second venv: {last[0]}")
        venv = work / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                       capture_output=True, timeout=120)  # fmt: skip
        done = _pip("--python", str(venv / "bin" / "python"), "install", "--no-index",
                    "--no-deps", *map(str, wheels.glob("numpy-*.whl")))  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        os.rename(venv, final)  # its python finds pyvenv.cfg beside it: the venv moves
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _second_venv(numpy_version: str) -> Path:
    folder = _venvs_folder()
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"numpy-{numpy_version}-py{sys.version_info[0]}{sys.version_info[1]}"
    python = final / "bin" / "python"
    # One builder at a time (pytest-xdist workers, two sessions): the others wait, then reuse.
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not final.exists():
            _build_venv(final, numpy_version)
        site = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout.strip()  # fmt: skip
        # This venv's packages after the second venv's own (its numpy wins); rewritten when
        # this venv's path changed, atomically.
        pth = Path(site) / "zz-aiinfra-main-venv.pth"
        line = f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n"
        if not pth.exists() or pth.read_text() != line:
            fd, tmp = tempfile.mkstemp(dir=site, suffix=".tmp")
            with os.fdopen(fd, "w") as fh:
                fh.write(line)
            os.replace(tmp, pth)
    found = subprocess.run(
        [str(python), "-c", "import numpy, distributed, aiinfra_magics; print(numpy.__version__)"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr[-3000:]
    assert found.stdout.strip() == numpy_version, found.stdout
    return python


@pytest.fixture(scope="session")
def numpy_venv() -> Callable[[str], Path]:
    """``numpy_venv("1.26.4")``: the python of a real second venv with that numpy."""
    return _second_venv


def python_with(tmp_path: Path, **versions: str) -> Path:
    """A python whose package metadata says ``versions`` (e.g. cloudpickle="2.2.1")."""
    site = tmp_path / "site"
    for name, version in versions.items():
        info = site / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    wrapper = tmp_path / "python-drifted"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={site} exec {sys.executable} "$@"\n')
    wrapper.chmod(0o700)
    return wrapper


def numpy_there(client) -> tuple[str, str]:
    """The numpy really imported by the (one) worker and by the scheduler."""
    (worker,) = client.run(lambda: __import__("numpy").__version__).values()
    return worker, client.run_on_scheduler(lambda: __import__("numpy").__version__)


def test_another_numpy_on_the_workers_is_one_warning_line(sshd, numpy_venv):
    import numpy

    assert numpy.__version__ != NUMPY_2, "pick another NUMPY_2: this venv has that one"
    python = numpy_venv(NUMPY_2)
    manager = ClusterManager()
    spec = {"name": "drift", **sshd.options(hosts="127.0.0.2", remote_python=str(python))}
    started = manager.start(ClusterSpec.from_options(spec))
    try:
        line = (
            f"env drift in cluster 'drift': numpy {numpy.__version__} here, {NUMPY_2} on "
            "127.0.0.2 (scheduler), 127.0.0.2 (1 worker)"
        )
        assert line in started.notes
        status = manager.status("drift")
        assert status.data["env_drift"] == [line] and line in status.data["warnings"]
        client = manager.connect("drift")  # connect compares again
        try:
            assert manager.env_drift == [line]
            assert numpy_there(client) == (NUMPY_2, NUMPY_2)
            # Only a warning: the workers compute with arrays sent from here.
            assert client.submit(lambda a: int((a * 2).sum()), numpy.arange(4)).result() == 12
        finally:
            client.close()
    finally:
        manager.stop("drift")
    wait_for(lambda: not sshd.started_processes(), 60, "nothing left on the hosts")


def test_numpy_1_on_the_workers_stops_the_start_as_it_cannot_load_our_arrays(sshd, numpy_venv):
    import numpy

    assert numpy.__version__.split(".")[0] != "1", "this venv has numpy 1: nothing to compare"
    python = numpy_venv(NUMPY_1)
    manager = ClusterManager()
    options = sshd.options(hosts="127.0.0.1", remote_python=str(python))
    with pytest.raises(OperationError) as err:
        manager.start(ClusterSpec.from_options({"name": "old", **options}))
    assert str(err.value) == (
        f"env-check: cluster 'old': numpy {numpy.__version__} here, {NUMPY_1} on 127.0.0.1 "
        "(scheduler), 127.0.0.1 (1 worker): these cannot work together (pickling or "
        "protocol); install the same versions there, or pass --env-check off to skip this check"
    )
    assert err.value.field == "env_check"
    assert "old" not in [c.name for c in manager.list_clusters()]
    wait_for(lambda: not sshd.started_processes(), 60, "the refused cluster to leave the hosts")
    # Why it is an error: skipped, the cluster starts, and a task holding an array fails.
    manager.start(ClusterSpec.from_options({"name": "unchecked", "env_check": "off", **options}))
    try:
        client = manager.connect("unchecked")
        try:
            assert numpy_there(client) == (NUMPY_1, NUMPY_1)
            task = client.submit(lambda a: int(a.sum()), numpy.arange(4))
            with pytest.raises(Exception, match="deserializ"):
                task.result()
        finally:
            client.close()
    finally:
        manager.stop("unchecked")
    wait_for(lambda: not sshd.started_processes(), 60, "nothing left on the hosts")


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
    # numpy 1 cannot load numpy 2's pickles (numpy._core); numpy 2 loads numpy 1's.
    assert Drift("numpy", "2.4.6", {"1.26.4": ["h (1 worker)"]}).breaking
    assert not Drift("numpy", "1.26.4", {"2.4.6": ["h (1 worker)"]}).breaking
    assert not Drift("numpy", "2.4.6", {"missing": ["h (1 worker)"], "2.2.6": ["g"]}).breaking


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_env_check_takes_on_or_off(value):
    with pytest.raises(ValueError, match=f"^env-check: got '{value}'; allowed: on | off"):
        ClusterSpec.from_options({"backend": "local", "env_check": value})
