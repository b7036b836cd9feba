"""On a real GPU only: every kernel through CuPy, PyTorch and JAX inputs, checked
against the NumPy float64 reference, with results of the input's own kind and on the
input library's stream. Skipped under the simulator and where NVML sees no GPU."""

from __future__ import annotations

import os

import kernels_reference as ref
import numpy as np
import pytest

import kernels_gpu as kg

SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"  # set by conftest without a GPU
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(SIMULATED, reason="needs a real GPU (running on the simulator)"),
]
cp = pytest.importorskip("cupy") if not SIMULATED else None


@pytest.fixture
def rng():
    return np.random.default_rng(20260)  # seeded: a failure reproduces


def host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_kernels_cupy(rng, dtype):
    x = rng.standard_normal((513, 1000)).astype(dtype) * 5
    x[3, 4] = np.nan
    x[7] = -np.inf
    xg = cp.asarray(x)
    out = kg.softmax(xg)
    assert isinstance(out, cp.ndarray) and out.dtype == dtype
    ref.close(host(out), ref.softmax(x), dtype)
    ref.close(host(kg.logsumexp(xg, axis=0)), ref.logsumexp(x, axis=0), dtype)
    g, b = rng.standard_normal(1000).astype(dtype), rng.standard_normal(1000).astype(dtype)
    ref.close(host(kg.layer_norm(xg, cp.asarray(g), b)), ref.layer_norm(x, g, b), dtype)


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
def test_topk_cupy(rng, metric):
    q = rng.standard_normal((300, 64))
    keys = rng.standard_normal((5000, 64))
    vals, idx = kg.pairwise_topk(cp.asarray(q), cp.asarray(keys), 10, metric)
    rv, ri = ref.pairwise_topk(q, keys, 10, metric)
    ref.close(host(vals), rv, np.float64)
    np.testing.assert_array_equal(host(idx), ri)


def test_segments_cupy(rng):
    lens = rng.integers(0, 300, 2000)
    lens[::9] = 0
    off = np.concatenate([[0], np.cumsum(lens)])
    v = rng.standard_normal(off[-1]).astype(np.float32)
    vg, og = cp.asarray(v), cp.asarray(off)
    for op in ("sum", "mean", "min", "max"):
        ref.close(host(kg.segment_reduce(vg, og, op)), ref.segment_reduce(v, off, op), np.float32)
    ref.close(host(kg.ewma(vg, og, 0.2)), ref.ewma(v, off, 0.2), np.float32)
    tok = rng.integers(0, 1 << 30, off[-1])
    np.testing.assert_array_equal(
        host(kg.minhash(cp.asarray(tok), og, 64, 5)), kg.minhash(tok, off, 64, 5)
    )
    x = rng.standard_normal(1 << 20).astype(np.float32)
    for bins in (100, 5000):
        c, e = kg.histogram(cp.asarray(x), bins)
        np.testing.assert_array_equal(host(c), ref.histogram(x, bins)[0])


def test_cupy_stream_is_used(rng):
    """The kernel is queued on CuPy's current stream, behind that stream's earlier work.

    A host callback holds the stream; behind it the input is zeroed, then the kernel is
    launched. A kernel on the default stream would run at once, on the unzeroed input
    (forced by synchronizing the default stream before the gate opens).
    """
    import threading

    x = rng.standard_normal((256, 512)).astype(np.float32)
    xg = cp.asarray(x)
    cp.cuda.Device().synchronize()
    gate = threading.Event()
    s = cp.cuda.Stream(non_blocking=True)
    with s:
        s.launch_host_func(lambda _: gate.wait(), None)
        xg *= 0  # queued behind the gate
        out = kg.softmax(xg)
        assert not s.done  # still held: nothing queued on s has run
        cp.cuda.Stream.null.synchronize()
        gate.set()
        s.synchronize()
    ref.close(host(out), np.full_like(x, 1 / x.shape[1]), np.float32)


def test_torch_inputs_give_torch_results(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((64, 300)).astype(np.float32)
    xt = torch.from_numpy(x).cuda()
    out = kg.softmax(xt)
    assert isinstance(out, torch.Tensor) and out.is_cuda and out.dtype == torch.float32
    ref.close(out.cpu().numpy(), ref.softmax(x), np.float32)
    ref.close(out.cpu().numpy(), torch.softmax(xt, -1).cpu().numpy(), np.float32)
    vals, idx = kg.pairwise_topk(xt[:5], xt, 3, "ip")
    assert idx.dtype == torch.int64 and idx.is_cuda
    torch.cuda.current_stream().synchronize()


def test_jax_inputs_give_jax_results(rng):
    jax = pytest.importorskip("jax")
    if not any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("jax sees no GPU")
    x = rng.standard_normal((32, 100)).astype(np.float32)
    xj = jax.device_put(x)
    out = kg.logsumexp(xj)
    assert isinstance(out, jax.Array)
    ref.close(np.asarray(out), ref.logsumexp(x), np.float32)


def test_numba_device_arrays_stay_numba(rng):
    from kernels_gpu._dispatch import numba_cuda

    cuda = numba_cuda()
    x = rng.standard_normal((10, 50))
    out = kg.layer_norm(cuda.to_device(x))
    assert getattr(out, "__cuda_ndarray__", False)
    ref.close(out.copy_to_host(), ref.layer_norm(x), np.float64)
