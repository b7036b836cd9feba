"""The cuda backend's translation from ClusterSpec to LocalCUDACluster arguments.

Runs everywhere with a stated GPU probe; the real LocalCUDACluster is started by
test_cuda_cluster_on_real_gpu when NVML sees a GPU (on the lent GPU machine).
"""

from __future__ import annotations

import pytest

from aiinfra_magics.clusters.cuda import CudaBackend, select_gpus
from aiinfra_magics.clusters.spec import ClusterSpec
from aiinfra_magics.devices.nvml import GpuProbe, gpu_probe
from aiinfra_magics.errors import AiinfraError

FOUR = GpuProbe(
    4, "test machine with 4 GPUs", ("GPU-aaaa-1", "GPU-bbbb-2", "GPU-cccc-3", "GPU-dddd-4")
)


def kwargs(**options):
    spec = ClusterSpec.from_options({"backend": "cuda", "name": "g", **options})
    return CudaBackend(FOUR).launch_kwargs(spec, death_timeout=42)


def test_defaults_one_worker_per_gpu():
    kw = kwargs()
    assert kw["CUDA_VISIBLE_DEVICES"] == "0,1,2,3"
    assert kw["n_workers"] == 4 and kw["threads_per_worker"] == 1
    assert (
        kw["protocol"] == "tcp"
        and kw["death_timeout"] == 42
        and kw["dashboard_address"] == "127.0.0.1:0"
    )
    assert "rmm_pool_size" not in kw and kw["memory_limit"] == "auto"


def test_every_option_is_translated():
    kw = kwargs(
        gpus="0,2",
        threads="4",
        memory="8GB",
        rmm_pool="20GB",
        device_memory_limit="0.8",
        protocol="ucx",
    )
    assert kw["CUDA_VISIBLE_DEVICES"] == "0,2" and kw["n_workers"] == 2
    assert (
        kw["threads_per_worker"],
        kw["memory_limit"],
        kw["rmm_pool_size"],
        kw["device_memory_limit"],
        kw["protocol"],
    ) == (4, "8GB", "20GB", 0.8, "ucx")


@pytest.mark.parametrize(
    ("gpus", "visible"),
    [
        ("all", ["0", "1", "2", "3"]),
        ("2", ["0", "1"]),
        ("3,1", ["3", "1"]),
        ("1,", ["1"]),
        ("GPU-bbbb-2", ["GPU-bbbb-2"]),
    ],
)
def test_gpu_selection(gpus, visible):
    assert select_gpus(gpus, FOUR) == visible


def test_workers_trim_the_selection_and_may_not_exceed_it():
    assert kwargs(gpus="1,2,3", workers="2")["CUDA_VISIBLE_DEVICES"] == "1,2"
    with pytest.raises(
        AiinfraError, match="workers: got 5; the cuda backend runs one worker per GPU"
    ):
        kwargs(workers="5")


@pytest.mark.parametrize(
    ("gpus", "message"),
    [
        ("5", "gpus: got 5; this machine has 4 GPU"),
        ("0,7", "gpus: index 7 does not exist"),
        ("GPU-ffff", "gpus: no GPU with UUID GPU-ffff"),
    ],
)
def test_gpu_selection_errors(gpus, message):
    with pytest.raises(AiinfraError, match=message):
        select_gpus(gpus, FOUR)


def test_no_gpu_is_a_clear_error():
    backend = CudaBackend(GpuProbe(0, "NVML unavailable (NVML Shared Library Not Found)"))
    with pytest.raises(AiinfraError, match=r"backend: cuda needs an NVIDIA GPU \(NVML unavailable"):
        backend.check(ClusterSpec.from_options({"backend": "cuda", "name": "g"}))


@pytest.mark.gpu
@pytest.mark.skipif(
    gpu_probe().count == 0, reason="needs an NVIDIA GPU (runs on the lent GPU machine)"
)
def test_cuda_cluster_on_real_gpu(ip):
    import importlib.util

    rmm = " --rmm-pool 1GB" if importlib.util.find_spec("rmm") else ""
    # --force: earlier GPU tests in this process may have started JAX on these GPUs, and the
    # overlap guard (tested below without it) would rightly refuse.
    info = ip.run_line_magic("aiinfra", f"cluster start gpu --backend cuda --force{rmm}")
    assert info.backend == "cuda" and info.workers == gpu_probe().count and info.gpus
    client = ip.user_ns["client"]
    env = client.run(lambda: __import__("os").environ.get("XLA_PYTHON_CLIENT_PREALLOCATE"))
    assert set(env.values()) == {"false"}
    visible = client.run(lambda: __import__("os").environ["CUDA_VISIBLE_DEVICES"])
    assert sorted(v.split(",")[0] for v in visible.values()) == sorted(info.gpus)
    # Independently of the spec: the device each worker computes on, by PCI bus id (CUDA in
    # the worker), is one GPU per worker and together every GPU NVML sees here.
    import pynvml

    def bus(text: str) -> str:
        return text.upper()[-7:]  # "3B:00.0": CUDA writes 4 domain digits, NVML 8

    used = client.run(lambda: __import__("cupy").cuda.Device(0).pci_bus_id)
    pynvml.nvmlInit()
    try:
        here = set()
        for gpu in info.gpus:  # an index or a GPU-/MIG- UUID
            handle = (
                pynvml.nvmlDeviceGetHandleByIndex(int(gpu))
                if gpu.isdigit()
                else pynvml.nvmlDeviceGetHandleByUUID(gpu)
            )
            bus_id = pynvml.nvmlDeviceGetPciInfo(handle).busId
            here.add(bus(bus_id.decode() if isinstance(bus_id, bytes) else bus_id))
    finally:
        pynvml.nvmlShutdown()
    assert len({bus(b) for b in used.values()}) == len(used) == info.workers
    assert {bus(b) for b in used.values()} == here
    from aiinfra_magics.clusters import host

    assert host.gpus_held_here() == info.gpus
    import cupy

    assert client.submit(lambda: float(cupy.arange(1000).sum())).result() == 499500.0
    ip.run_line_magic("aiinfra", "cluster stop gpu")


@pytest.mark.gpu
@pytest.mark.skipif(
    gpu_probe().count == 0, reason="needs an NVIDIA GPU (runs on the lent GPU machine)"
)
def test_cuda_cluster_refuses_gpus_held_by_this_kernels_jax(ip):
    import jax

    if jax.default_backend() != "gpu":
        pytest.skip("JAX here has no GPU backend")
    from IPython.core.error import UsageError

    with pytest.raises(
        UsageError, match="gpus: GPU\\(s\\) 0 are used by this kernel's JAX session"
    ):
        ip.run_line_magic("aiinfra", "cluster start held --backend cuda --gpus 0,")
