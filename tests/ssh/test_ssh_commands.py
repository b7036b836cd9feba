"""What an SSH cluster runs on each host, built without a GPU or a network (pure functions)."""

from __future__ import annotations

import json

import pytest

from aiinfra_magics.clusters.spec import ClusterSpec
from aiinfra_magics.clusters.ssh import plan, target_of
from aiinfra_magics.clusters.ssh_connect import HostFacts
from aiinfra_magics.clusters.ssh_spawn import (
    BOOT,
    HostSlots,
    SshSpecCluster,
    remote_command,
    scheduler_command,
    worker_command,
)
from aiinfra_magics.errors import InputError


def facts(host: str, gpus: int = 0, cpus: int = 8) -> HostFacts:
    return HostFacts(host, "3.11.2", "/usr/bin/python3", cpus, 64 << 30, gpus, {})


def test_a_cpu_worker_is_dask_worker_bound_to_its_host():
    cmd = worker_command("tcp://10.0.0.1:8786", "gpu1-0", "10.0.0.2", 4, "0.5", 30)
    assert cmd.module == "distributed.cli.dask_worker"
    assert cmd.shown == (
        "dask worker tcp://10.0.0.1:8786 --name gpu1-0 --host 10.0.0.2 --nthreads 4 "
        "--memory-limit 0.5 --death-timeout 30s --no-dashboard"
    )
    assert cmd.env == {}


def test_a_gpu_worker_is_dask_cuda_worker_with_its_gpu_first():
    cmd = worker_command("tcp://h:1", "h-2", "h", 1, "0.25", 60, gpu="2", gpus_on_host=4)
    assert cmd.shown.startswith("dask cuda worker tcp://h:1 --name h-2 --host h --nthreads 1")
    # dask-cuda's own rotation: its device first, the others still visible to NCCL.
    assert cmd.env["CUDA_VISIBLE_DEVICES"] == "2,3,0,1"
    assert cmd.env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"


def test_the_remote_command_line_holds_only_the_fixed_bootstrap(monkeypatch):
    import dask

    with dask.config.set({"aiinfra": {"secret-token": "s3cr3t-value"}}):
        cmd = worker_command("tcp://h:1", "h-0", "h", 1, "1", 60)
        line = remote_command("/opt/py/bin/python")
        payload = json.loads(cmd.payload())
    assert "'" not in BOOT and line == f"exec /opt/py/bin/python -c '{BOOT}'"
    assert "s3cr3t-value" not in line and "tcp://h:1" not in line
    # The config and the arguments travel on stdin.
    sent = dask.config.deserialize(payload["env"]["DASK_INTERNAL_INHERIT_CONFIG"])
    assert sent["aiinfra"]["secret-token"] == "s3cr3t-value"
    assert payload["args"][0] == "tcp://h:1"


def test_the_scheduler_binds_its_host_on_free_ports():
    assert scheduler_command("10.0.0.1").shown == (
        "dask scheduler --host 10.0.0.1 --port 0 --dashboard-address 10.0.0.1:0"
    )
    assert scheduler_command("fe80::1").args[-2:] == ["--dashboard-address", "[fe80::1]:0"]


def test_plan_gpu_hosts_get_one_worker_per_gpu_cpu_hosts_per_flag():
    spec = ClusterSpec.from_options({"backend": "ssh", "hosts": "g1,c1", "workers_per_host": 2})
    target = target_of(spec)
    slots, workers = plan(spec, target, {"g1": facts("g1", gpus=4), "c1": facts("c1", cpus=8)})
    assert slots == [HostSlots("g1", 1, "0.25", 4), HostSlots("c1", 4, "0.5", 0)]
    assert workers == 4 + 2
    cpu_only = ClusterSpec.from_options({"backend": "ssh", "hosts": "g1", "gpus_per_host": "0"})
    slots, workers = plan(cpu_only, target_of(cpu_only), {"g1": facts("g1", gpus=4)})
    assert slots == [HostSlots("g1", 8, "1", 0)] and workers == 1


def test_plan_refuses_more_gpus_than_a_host_has():
    spec = ClusterSpec.from_options({"backend": "ssh", "hosts": "g1", "gpus_per_host": "2"})
    with pytest.raises(InputError, match=r"^gpus-per-host: got 2; g1 has 1 GPU\(s\) \(NVML\)"):
        plan(spec, target_of(spec), {"g1": facts("g1", gpus=1)})


def test_scaling_places_workers_on_the_least_loaded_host_and_one_per_gpu():
    slots = [HostSlots("g1", 1, "0.5", 2), HostSlots("c1", 2, "0.5", 0)]
    cluster = SshSpecCluster.__new__(SshSpecCluster)  # placement only: nothing starts
    cluster.slots, cluster._placed = slots, {}
    cluster._connect_options, cluster._python, cluster._death_timeout = {}, "python3", 30
    taken: dict = {}
    for _ in range(4):
        taken.update(cluster._next_spec(taken))
    placed = {n: (s["options"]["address"], s["options"]["gpu"]) for n, s in taken.items()}
    assert placed == {
        "g1-0": ("g1", "0"),
        "c1-0": ("c1", None),
        "g1-1": ("g1", "1"),
        "c1-1": ("c1", None),
    }
    taken.update(cluster._next_spec(taken))  # g1's GPUs are all taken: the CPU host
    assert list(taken)[-1] == "c1-2"


def test_defaults_come_from_dask_config():
    import dask

    with dask.config.set(
        {
            "aiinfra.ssh.hosts": ["a", "b"],
            "aiinfra.ssh.ssh-port": 2222,
            "aiinfra.ssh.scheduler": "local",
        }
    ):
        target = target_of(ClusterSpec.from_options({"backend": "ssh"}))
    assert target.hosts == ("a", "b") and target.port == 2222 and target.scheduler_host is None
    with dask.config.set({"aiinfra.ssh.ssh-port": "x"}):
        with pytest.raises(InputError, match=r"^aiinfra\.ssh\.ssh-port \(dask config\): ssh-port"):
            target_of(ClusterSpec.from_options({"backend": "ssh", "hosts": "a"}))
