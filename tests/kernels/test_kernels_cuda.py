"""Every CUDA kernel (simulator here, the real device where NVML sees one) against the
NumPy float64 reference, on fresh random inputs and on the edge cases. Tiny grids: the
simulator runs each GPU thread as a Python thread."""

from __future__ import annotations

import kernels_reference as ref
import numpy as np
import pytest

import kernels_gpu as kg
from aiinfra_magics.errors import AiinfraError
from kernels_gpu._dispatch import numba_cuda

cuda = numba_cuda()

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # uint64 wrap in the simulator
FLOATS = [np.float32, np.float64]


@pytest.fixture
def rng():
    return np.random.default_rng(20260)  # seeded: a failure reproduces


def d(a):
    return cuda.to_device(np.ascontiguousarray(a))


def h(a):
    assert getattr(a, "__cuda_ndarray__", False), "result must be a numba device array"
    return a.copy_to_host()


def special_rows(rng, dtype, cols=37):
    x = rng.standard_normal((5, cols)).astype(dtype) * 10
    x[1, 3] = np.nan
    x[2, 5] = np.inf
    x[3] = -np.inf
    x[4, :2] = -np.inf
    return x


@pytest.fixture(params=["registers", "streaming"])
def rowpath(request, monkeypatch):
    """Both GPU row layouts: the row in registers (short rows) and streamed (long rows)."""
    from kernels_gpu import _cuda_rows

    if request.param == "streaming":
        monkeypatch.setattr(_cuda_rows, "REG_MAX_K", 0)
    return request.param


@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_and_logsumexp_rows(rng, dtype, rowpath):
    x = special_rows(rng, dtype)
    got = h(kg.softmax(d(x)))
    assert got.dtype == dtype
    ref.close(got, ref.softmax(x), dtype)
    ref.close(h(kg.logsumexp(d(x))), ref.logsumexp(x), dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_other_axis_strided_and_1d(rng, dtype):
    x = rng.standard_normal((40, 3)).astype(dtype)
    ref.close(h(kg.softmax(d(x), axis=0)), ref.softmax(x, axis=0), dtype)
    wide = rng.standard_normal((2, 64)).astype(dtype)
    strided = d(wide)[:, ::2]  # a non-contiguous view, read in place
    ref.close(h(kg.logsumexp(strided)), ref.logsumexp(wide[:, ::2]), dtype)
    one = rng.standard_normal(33).astype(dtype)
    ref.close(h(kg.softmax(d(one))), ref.softmax(one), dtype)


def test_softmax_empty_and_single(rng):
    assert h(kg.softmax(d(np.zeros((0, 4), np.float32)))).shape == (0, 4)
    assert h(kg.softmax(d(np.zeros((2, 0), np.float32)))).shape == (2, 0)
    np.testing.assert_array_equal(h(kg.logsumexp(d(np.zeros((2, 0))))), [-np.inf, -np.inf])
    np.testing.assert_array_equal(h(kg.softmax(d(np.array([[3.5]])))), [[1.0]])


def test_gpu_refusals():
    with pytest.raises(AiinfraError, match="x: got 'int64'"):
        kg.softmax(d(np.ones((2, 3), np.int64)))
    with pytest.raises(AiinfraError, match="axis=-1"):
        kg.softmax(d(np.ones((2, 3, 4))), axis=1)
    with pytest.raises(AiinfraError, match="^k: got 65"):
        kg.pairwise_topk(d(np.ones((1, 2))), d(np.ones((70, 2))), 65)


@pytest.mark.parametrize("dtype", FLOATS)
def test_layer_norm(rng, dtype, rowpath):
    x = rng.standard_normal((4, 45)).astype(dtype) * 3 + 1
    x[2, 7] = np.nan
    g = rng.standard_normal(45).astype(dtype)
    b = rng.standard_normal(45).astype(dtype)
    got = h(kg.layer_norm(d(x), g, d(b)))
    assert got.dtype == dtype
    ref.close(got, ref.layer_norm(x, g, b), dtype)
    ref.close(h(kg.layer_norm(d(x[:, :1]))), ref.layer_norm(x[:, :1]), dtype)  # one column
    ref.close(h(kg.layer_norm(d(x), eps=0.5)), ref.layer_norm(x, eps=0.5), dtype)


@pytest.mark.parametrize("dtype", FLOATS + [np.int32])
def test_histogram(rng, dtype):
    x = (rng.standard_normal(300) * 4).astype(dtype)
    counts, edges = kg.histogram(d(x), 9)
    rc, re = ref.histogram(x, 9)
    np.testing.assert_array_equal(h(counts), rc)
    np.testing.assert_allclose(h(edges), re)


def test_histogram_nan_weights_many_bins_and_empty(rng):
    x = rng.standard_normal(200)
    x[::17] = np.nan
    w = rng.random(200)
    c, _ = kg.histogram(d(x), 3000, range=(-2, 2), weights=d(w))  # global-atomics path
    np.testing.assert_allclose(h(c), ref.histogram(x, 3000, (-2, 2), w)[0], atol=1e-12)
    c, e = kg.histogram(d(np.zeros(0)), 4)
    np.testing.assert_array_equal(h(c), np.zeros(4))
    np.testing.assert_allclose(h(e), np.linspace(0, 1, 5))
    c, _ = kg.histogram(d(np.array([2.5])), 3)
    np.testing.assert_array_equal(h(c), [0, 1, 0])


def ragged(rng, n_segments=6, max_len=40):
    lens = rng.integers(0, max_len, n_segments)
    lens[[1, 3]] = 0  # empty segments in the middle
    return np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)


@pytest.mark.parametrize("op", ["sum", "mean", "min", "max"])
@pytest.mark.parametrize("dtype", FLOATS + [np.int64])
def test_segment_reduce(rng, op, dtype):
    off = ragged(rng)
    v = (rng.standard_normal(off[-1]) * 5).astype(dtype)
    got = h(kg.segment_reduce(d(v), d(off), op))
    assert got.dtype == (dtype if dtype in FLOATS else np.float64)
    ref.close(got, ref.segment_reduce(v, off, op), dtype)


def test_segment_reduce_nan_propagates():
    v = np.array([1.0, np.nan, 3.0, 4.0])
    off = np.array([0, 2, 4])
    for op in ("sum", "mean", "min", "max"):
        got = h(kg.segment_reduce(d(v), off, op))
        assert np.isnan(got[0]) and not np.isnan(got[1])


@pytest.fixture(params=["warp", "multi", "single"])
def layout(request, monkeypatch):
    """The GPU top-k layouts: a warp per key (its shuffles run on the simulator too),
    QB queries per block, and one query per block."""
    from kernels_gpu import _cuda_topk

    monkeypatch.setattr(_cuda_topk, "WARP", request.param == "warp")
    monkeypatch.setattr(_cuda_topk, "MULTI", request.param == "multi")
    return request.param


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
@pytest.mark.parametrize("dtype", FLOATS)
def test_pairwise_topk(rng, metric, dtype, layout):
    q = rng.standard_normal((11 if layout == "multi" else 3, 6)).astype(dtype)
    keys = rng.standard_normal((50, 6)).astype(dtype)
    vals, idx = kg.pairwise_topk(d(q), d(keys), 5, metric)
    rv, ri = ref.pairwise_topk(q, keys, 5, metric)
    ref.close(h(vals), rv, dtype)
    if dtype == np.float64:
        np.testing.assert_array_equal(h(idx), ri)


def test_pairwise_topk_k_equals_n_ties_and_nan(rng, layout):
    keys = rng.standard_normal((12, 4))
    keys[5] = keys[2]  # a tie: the lower index must come first
    keys[7, 1] = np.nan  # NaN scores rank last
    q = rng.standard_normal((2, 4))
    vals, idx = kg.pairwise_topk(d(q), d(keys), 12, "l2")
    rv, ri = ref.pairwise_topk(q, keys, 12, "l2")
    np.testing.assert_array_equal(h(idx), ri)
    assert (h(idx)[:, -1] == 7).all()
    ref.close(h(vals), rv, np.float64)


def test_ewma(rng):
    off = ragged(rng)
    v = rng.standard_normal(off[-1] + 3)  # 3 trailing values outside any segment
    v[::7] = np.nan
    got = h(kg.ewma(d(v), d(off), 0.3))
    want = ref.ewma(v, off, 0.3)
    ref.close(got, want, np.float64)
    assert np.isnan(got[-3:]).all()


def test_ewma_float32_and_alpha_one(rng):
    off = np.array([0, 5, 5, 9])
    v = rng.standard_normal(9).astype(np.float32)
    ref.close(h(kg.ewma(d(v), off, 0.5)), ref.ewma(v, off, 0.5), np.float32)
    np.testing.assert_array_equal(h(kg.ewma(d(v), off, 1.0)), v)


def test_minhash_matches_cpu_and_reference(rng):
    off = ragged(rng, 5, 30)
    tokens = rng.integers(-(2**40), 2**40, off[-1])
    gpu = h(kg.minhash(d(tokens), d(off), 40, seed=3))
    np.testing.assert_array_equal(gpu, kg.minhash(tokens, off, 40, seed=3))
    np.testing.assert_array_equal(gpu, ref.minhash(tokens, off, 40, 3))
    assert (gpu[1] == 0xFFFFFFFF).all()  # an empty document


def test_explicit_stream(rng):
    s = cuda.stream()
    x = rng.standard_normal((2, 40))
    got = kg.softmax(cuda.to_device(x, stream=s), stream=s)
    s.synchronize()
    ref.close(got.copy_to_host(), ref.softmax(x), np.float64)


def test_device_offsets_are_clamped_not_read_out_of_bounds():
    v = np.arange(6.0)
    bad = np.array([0, 4, 2, 99])  # decreasing, then past the end
    got = h(kg.segment_reduce(d(v), d(bad), "sum"))
    np.testing.assert_array_equal(got, [6.0, 0.0, 14.0])  # [2, 99) -> [2, 6)


def test_out_is_written_and_returned_and_checked(rng):
    x = rng.standard_normal((3, 50)).astype(np.float32)
    dx = d(x)
    for fn, want, shape in (
        (kg.softmax, ref.softmax(x), x.shape),
        (kg.logsumexp, ref.logsumexp(x), (3,)),
        (kg.layer_norm, ref.layer_norm(x), x.shape),
    ):
        out = cuda.device_array(shape, np.float32)
        assert fn(dx, out=out) is out
        ref.close(out.copy_to_host(), want, np.float32)
        with pytest.raises(AiinfraError, match="^out: .*shape"):
            fn(dx, out=cuda.device_array((2, 2), np.float32))
        with pytest.raises(AiinfraError, match="^out: .*dtype float32"):
            fn(dx, out=cuda.device_array(shape, np.float64))
        with pytest.raises(AiinfraError, match="^out: got .a host array.; allowed: a GPU array"):
            fn(dx, out=np.empty(shape, np.float32))


def test_repeated_calls_reuse_the_launch_and_the_plan():
    from kernels_gpu import _cuda_rows, _dispatch

    x = d(np.arange(64.0).reshape(2, 32))
    out = cuda.device_array((2, 32))
    s = cuda.stream()
    kg.softmax(x, out=out, stream=s)
    before = _dispatch.launch_cache_info()
    plans = _cuda_rows._row_plan.cache_info()
    got = kg.softmax(x, out=out, stream=s)
    after = _dispatch.launch_cache_info()
    assert after["hits"] == before["hits"] + 1 and after["misses"] == before["misses"]
    assert _cuda_rows._row_plan.cache_info().hits == plans.hits + 1
    s.synchronize()
    ref.close(got.copy_to_host(), ref.softmax(np.arange(64.0).reshape(2, 32)), np.float64)
    kg.softmax(d(np.ones((3, 32))))  # another shape: a new launch, not a stale one
    assert _dispatch.launch_cache_info()["misses"] == after["misses"] + 1
