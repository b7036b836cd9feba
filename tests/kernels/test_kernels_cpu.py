"""CPU twins against the NumPy float64 reference on larger inputs, the input rules
(kinds, dtypes, strides) and the one-line errors for bad arguments."""

from __future__ import annotations

import kernels_reference as ref
import numpy as np
import pytest
from fresh_python import run_python

import kernels_gpu as kg
from aiinfra_magics.errors import AiinfraError

FLOATS = [np.float32, np.float64]


@pytest.fixture
def rng():
    return np.random.default_rng(20260)  # seeded: a failure reproduces


@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_logsumexp_large(rng, dtype):
    x = (rng.standard_normal((300, 500)) * 20).astype(dtype)
    x[5, 7], x[6, 1], x[7] = np.nan, np.inf, -np.inf
    x[8, 3] = -np.nan  # sign bit set: the CPU row max finds it below -inf
    assert np.signbit(x[8, 3])
    out = kg.softmax(x)
    assert out.dtype == dtype and out.shape == x.shape
    ref.close(out, ref.softmax(x), dtype)
    ref.close(kg.logsumexp(x), ref.logsumexp(x), dtype)
    ref.close(kg.softmax(x, axis=0), ref.softmax(x, axis=0), dtype)
    x3 = x.reshape(30, 10, 500)
    ref.close(kg.logsumexp(x3, axis=1), ref.logsumexp(x3, axis=1), dtype)


@pytest.mark.parametrize("scale", [0.1, 1.0, 30.0, 100.0])
def test_logsumexp_float32_within_an_ulp_of_float64(rng, scale):
    # The float32 twin sums exp terms from a cheaper exp (clamped at -87, ln 2 as one
    # float32): the result must still be as good as rounding the exact value allows.
    cols = [7, 256, 1000, 2 * 256 + 3]
    for n in cols:
        x = (rng.standard_normal((64, n)) * scale - 3).astype(np.float32)
        got = kg.logsumexp(x).astype(np.float64)
        want = ref.logsumexp(x)
        ulp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
        assert np.all(np.abs(got - want) <= ulp + 2.0**-24), (scale, n)


def test_logsumexp_float32_terms_below_the_exp_floor():
    # Terms under exp(-87) vanish in float32; thousands of them still add nothing.
    x = np.full((3, 5000), -200.0, np.float32)
    x[:, 0] = 0.0
    x[1, 1:] = -np.inf
    x[2, 1:100] = -86.0
    got = kg.logsumexp(x)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got[:2], [0.0, 0.0])
    ref.close(got, ref.logsumexp(x), np.float32)


def test_softmax_extreme_values_and_ints(rng):
    x = np.array([[1000.0, 999.0, -1000.0], [-745.0, -800.0, -700.0]])
    ref.close(kg.softmax(x), ref.softmax(x), np.float64)
    ref.close(kg.logsumexp(x), ref.logsumexp(x), np.float64)
    got = kg.softmax(np.arange(12).reshape(3, 4))
    assert got.dtype == np.float64
    ref.close(got, ref.softmax(np.arange(12).reshape(3, 4)), np.float64)


def test_non_contiguous_host_input(rng):
    x = rng.standard_normal((200, 300))
    view = x[::2, ::3]
    ref.close(kg.softmax(view), ref.softmax(view), np.float64)
    ref.close(kg.layer_norm(view.T), ref.layer_norm(view.T), np.float64)
    v = rng.standard_normal(1000)[::2]
    ref.close(kg.segment_reduce(v, [0, 100, 500], "sum"), ref.segment_reduce(v, [0, 100, 500], "sum"), np.float64)  # fmt: skip


@pytest.mark.parametrize("dtype", FLOATS)
def test_layer_norm_large(rng, dtype):
    x = (rng.standard_normal((400, 768)) * 3 + 5).astype(dtype)
    g = rng.standard_normal(768).astype(dtype)
    b = rng.standard_normal(768).astype(dtype)
    ref.close(kg.layer_norm(x, g, b), ref.layer_norm(x, g, b), dtype)
    ref.close(kg.layer_norm(x, eps=0.0), ref.layer_norm(x, eps=0.0), dtype)


@pytest.mark.parametrize("dtype", FLOATS + [np.int16, np.uint8])
def test_histogram_large(rng, dtype):
    x = (rng.standard_normal(200_000) * 50).astype(dtype)
    for bins, rng_ in ((17, None), (1000, (-20, 30)), (5000, None)):
        counts, edges = kg.histogram(x, bins, range=rng_)
        rc, re = ref.histogram(x, bins, rng_)
        np.testing.assert_array_equal(counts, rc)
        np.testing.assert_allclose(edges, re)


def test_histogram_weights_nan_and_edge_values(rng):
    x = np.linspace(0, 1, 1001)  # values on the bin edges, the last on the right edge
    w = rng.random(1001)
    c, _ = kg.histogram(x, 10, weights=w)
    np.testing.assert_allclose(c, np.histogram(x, 10, weights=w)[0])
    x[::10] = np.nan
    c, _ = kg.histogram(x, 10)
    assert c.sum() == np.count_nonzero(~np.isnan(x))
    c, e = kg.histogram(np.full(5, 3.0), 2)  # zero-width range widens by 0.5 as NumPy
    np.testing.assert_allclose(e, [2.5, 3.0, 3.5])


@pytest.mark.parametrize("op", ["sum", "mean", "min", "max"])
def test_segment_reduce_large(rng, op):
    lens = rng.integers(0, 400, 3000)
    lens[::5] = 0
    off = np.concatenate([[0], np.cumsum(lens)])
    for dtype in (np.float32, np.float64, np.int32):
        v = (rng.standard_normal(off[-1]) * 100).astype(dtype)
        ref.close(kg.segment_reduce(v, off, op), ref.segment_reduce(v, off, op), dtype if dtype in FLOATS else np.float64)  # fmt: skip


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
@pytest.mark.parametrize("k", [1, 10, 300])  # 300 takes the sort-the-row path
def test_pairwise_topk_large(rng, metric, k):
    q = rng.standard_normal((150, 24))
    keys = rng.standard_normal((3000, 24))
    vals, idx = kg.pairwise_topk(q, keys, k, metric)
    rv, ri = ref.pairwise_topk(q, keys, k, metric)
    ref.close(vals, rv, np.float32)  # BLAS + norm expansion: float32-level agreement
    assert (idx == ri).mean() > 0.999  # near-ties may swap under a different summation
    got = ref.pairwise_topk(q, keys[np.sort(idx[0])], k, metric)[0][0]
    np.testing.assert_allclose(np.sort(got), np.sort(rv[0]), rtol=1e-9, atol=1e-9)


def test_pairwise_topk_k_equals_n_and_zero_vectors(rng):
    keys = rng.standard_normal((40, 5))
    keys[3] = 0.0  # cosine with a zero vector is NaN: ranked last
    q = rng.standard_normal((4, 5))
    vals, idx = kg.pairwise_topk(q, keys, 40, "cosine")
    assert (idx[:, -1] == 3).all() and np.isnan(vals[:, -1]).all()
    assert sorted(idx[0]) == list(range(40))


def test_ewma_large_matches_reference_and_pandas(rng):
    import pandas as pd  # a dependency (through dask[dataframe]): missing means a broken install

    lens = rng.integers(0, 300, 500)
    off = np.concatenate([[0], np.cumsum(lens)])
    v = rng.standard_normal(off[-1])
    v[::13] = np.nan
    got = kg.ewma(v, off, 0.15)
    ref.close(got, ref.ewma(v, off, 0.15), np.float64)
    groups = np.repeat(np.arange(lens.size), lens)
    s = pd.Series(v).groupby(groups)
    want = s.transform(lambda g: g.ewm(alpha=0.15, adjust=False, ignore_na=True).mean())
    np.testing.assert_allclose(got, want.to_numpy(), rtol=1e-12, equal_nan=True)


def test_minhash_large_and_jaccard(rng):
    lens = rng.integers(0, 200, 300)
    off = np.concatenate([[0], np.cumsum(lens)])
    tok = rng.integers(0, 1 << 20, off[-1]).astype(np.int32)
    sig = kg.minhash(tok, off, 64, seed=11)
    np.testing.assert_array_equal(sig, ref.minhash(tok, off, 64, 11))
    a = np.arange(0, 600)
    b = np.arange(300, 900)  # Jaccard(a, b) = 300 / 900
    s = kg.minhash(np.concatenate([a, b]), [0, 600, 1200], 512, seed=1)
    assert abs((s[0] == s[1]).mean() - 1 / 3) < 0.08
    assert not np.array_equal(kg.minhash(a, [0, 600], 8, 1), kg.minhash(a, [0, 600], 8, 2))


def test_jax_cpu_arrays_come_back_as_jax(rng):
    jnp = pytest.importorskip("jax.numpy")
    x = jnp.asarray(rng.standard_normal((3, 4)).astype(np.float32))
    out = kg.softmax(x)
    assert type(out).__module__.startswith("jax")
    ref.close(np.asarray(out), ref.softmax(np.asarray(x)), np.float32)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: kg.softmax(np.ones((2, 2)), axis=2), "axis"),
        (lambda: kg.softmax(np.array(1.0)), "x"),
        (lambda: kg.softmax(np.ones(3, complex)), "x"),
        (lambda: kg.layer_norm(np.ones((2, 3)), gamma=np.ones(4)), "gamma"),
        (lambda: kg.layer_norm(np.ones((2, 3)), eps=-1), "eps"),
        (lambda: kg.histogram(np.ones(3), 0), "bins"),
        (lambda: kg.histogram(np.ones(3), True), "bins"),
        (lambda: kg.histogram(np.ones(3), 4, range=(2, 1)), "range"),
        (lambda: kg.histogram(np.array([1.0, np.inf]), 4), "range"),
        (lambda: kg.histogram(np.ones(3), 4, weights=np.ones(2)), "weights"),
        (lambda: kg.segment_reduce(np.ones(5), [0, 3, 2], "sum"), "offsets"),
        # long offsets: a decrease in the vectorised loop's last values, and in its first
        (lambda: kg.segment_reduce(np.ones(2000), np.r_[np.arange(1001), 999], "sum"), "offsets"),
        (lambda: kg.segment_reduce(np.ones(2000), np.r_[5, np.arange(1001)], "sum"), "offsets"),
        (lambda: kg.segment_reduce(np.ones(5), [0, 6], "sum"), "offsets"),
        (lambda: kg.segment_reduce(np.ones(5), [], "sum"), "offsets"),
        (lambda: kg.segment_reduce(np.ones(5), [0.0, 5.0], "sum"), "offsets"),
        (lambda: kg.segment_reduce(np.ones(5), [0, 5], "median"), "op"),
        (lambda: kg.segment_reduce(np.ones((5, 2)), [0, 5]), "values"),
        (lambda: kg.pairwise_topk(np.ones((2, 3)), np.ones((4, 3)), 5), "k"),
        (lambda: kg.pairwise_topk(np.ones((2, 3)), np.ones((4, 3)), 0), "k"),
        (lambda: kg.pairwise_topk(np.ones((2, 3)), np.ones((4, 2)), 1), "keys"),
        (lambda: kg.pairwise_topk(np.ones((2, 3)), np.ones((4, 3)), 1, "l1"), "metric"),
        (lambda: kg.pairwise_topk(np.ones(3), np.ones((4, 3)), 1), "queries"),
        (lambda: kg.ewma(np.ones(4), [0, 4], 0.0), "alpha"),
        (lambda: kg.ewma(np.ones(4), [0, 4], 1.5), "alpha"),
        (lambda: kg.minhash(np.ones(4), [0, 4]), "token_ids"),
        (lambda: kg.minhash(np.ones(4, int), [0, 4], num_perm=0), "num_perm"),
        (lambda: kg.minhash(np.ones(4, int), [0, 4], seed=-1), "seed"),
    ],
)
def test_bad_arguments_are_one_line_errors(call, field):
    with pytest.raises(AiinfraError) as exc:
        call()
    assert exc.value.field == field
    assert str(exc.value).startswith(f"{field}: ") and "\n" not in str(exc.value)


def test_empty_inputs():
    assert kg.softmax(np.zeros((0, 3))).shape == (0, 3)
    np.testing.assert_array_equal(kg.logsumexp(np.zeros((2, 0))), [-np.inf, -np.inf])
    assert kg.layer_norm(np.zeros((0, 4))).shape == (0, 4)
    c, e = kg.histogram(np.zeros(0), 3)
    np.testing.assert_array_equal(c, [0, 0, 0])
    assert kg.segment_reduce(np.zeros(0), [0]).shape == (0,)
    np.testing.assert_array_equal(kg.segment_reduce(np.zeros(0), [0, 0], "max"), [np.nan])
    assert kg.ewma(np.zeros(0), [0], 0.5).shape == (0,)
    assert kg.minhash(np.zeros(0, int), [0, 0], 4).tolist() == [[0xFFFFFFFF] * 4]
    v, i = kg.pairwise_topk(np.zeros((0, 3)), np.ones((4, 3)), 2)
    assert v.shape == (0, 2) and i.shape == (0, 2)


def test_import_needs_no_cuda():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = "import sys, kernels_gpu, kernels_gpu.dask; assert 'numba.cuda' not in sys.modules"
    subprocess.run(
        [sys.executable, "-c", code], check=True, env={"PATH": "/usr/bin:/bin"}, cwd=root
    )


@pytest.mark.parametrize("dtype", FLOATS)
def test_out_is_written_in_place_and_returned(rng, dtype):
    x = (rng.standard_normal((40, 70)) * 10).astype(dtype)
    x[3, 4] = np.nan
    out = np.empty_like(x)
    for _ in range(2):  # reused: the second call overwrites the first's result
        assert kg.softmax(x, out=out) is out
        ref.close(out, ref.softmax(x), dtype)
        x = x[::-1].copy()
    assert kg.softmax(x, axis=0, out=out) is out  # another axis: through a temporary
    ref.close(out, ref.softmax(x, axis=0), dtype)
    lse = np.empty(40, dtype)
    assert kg.logsumexp(x, out=lse) is lse
    ref.close(lse, ref.logsumexp(x), dtype)
    strided = np.empty((40, 140), dtype)[:, ::2]
    assert kg.layer_norm(x, out=strided) is strided
    ref.close(strided, ref.layer_norm(x), dtype)


def test_host_rows_are_views_of_c_contiguous_input_and_results_keep_the_axis(rng):
    from kernels_gpu import _checks as ck

    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    rows = ck.rows_host(x, 2)
    assert rows.shape == (12, 5) and np.shares_memory(rows, x)  # no copy on the fast path
    assert ck.rows_host(x[0, 0], 0).shape == (1, 5)
    moved = ck.rows_host(x, 1)  # another axis: a C-contiguous copy, that axis last
    assert moved.shape == (15, 4) and not np.shares_memory(moved, x)
    assert np.array_equal(moved, np.moveaxis(x, 1, -1).reshape(15, 4))
    for axis in (0, 1, 2, -1):
        got = kg.softmax(x, axis=axis)
        assert got.shape == x.shape
        ref.close(got, ref.softmax(x, axis=axis), np.float32)
        ref.close(kg.logsumexp(x, axis=axis), ref.logsumexp(x, axis=axis), np.float32)
    assert kg.softmax(x[:, ::2], axis=-1).shape == (3, 2, 5)  # strided: copied first


def test_out_refused_with_a_one_line_error(rng):
    x = rng.standard_normal((4, 5))
    for bad in (np.empty((5, 4)), np.empty((4, 5), np.float32), [0.0] * 20):
        with pytest.raises(AiinfraError, match=r"^out: .*shape \(4, 5\) and dtype float64$"):
            kg.softmax(x, out=bad)
    with pytest.raises(AiinfraError, match=r"^out: .*shape \(4,\)"):
        kg.logsumexp(x, out=np.empty(5))


@pytest.mark.parametrize("op", ["min", "max"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_segment_minmax_in_parallel_chunks(rng, monkeypatch, op, dtype):
    from kernels_gpu import segments

    monkeypatch.setattr(segments, "PARALLEL_MIN", 1)  # take the pool path on a small input
    lens = rng.integers(0, 6, 3000)
    lens[::7] = 0  # empty segments, some at chunk boundaries
    off = np.concatenate([[5], 5 + np.cumsum(lens)])  # data before the first and after the last
    v = (rng.standard_normal(int(off[-1]) + 9) * 100).astype(dtype)
    if dtype != np.int32:
        v[off[10]] = np.nan
    got = kg.segment_reduce(v, off, op)  # on 2+ numba threads: chunks on the pool
    want = ref.segment_reduce(v, off, op)
    np.testing.assert_array_equal(got, want.astype(got.dtype))
    assert np.isnan(got[lens == 0]).all()


@pytest.mark.parametrize("dtype", FLOATS)
def test_serial_twins_match_the_parallel_kernels(rng, dtype):
    # One numba thread takes the serial twins (no parallel region): the same rows, to the
    # rounding of a reordered sum. The kernels allow reassociation (fastmath "reassoc"), so
    # LLVM may vectorise a row's sum differently in the two compiled functions: bit equality
    # held when both compiled in one process, and failed (3 ulp, whole rows) in a process
    # that loaded some kernels from numba's cache after compiling others. A row of n terms:
    # within n machine epsilons
    # (relative, and absolute for the values near 0 that layer norm gives).
    from kernels_gpu import _cpu_rows

    x = (rng.standard_normal((67, 300)) * 10).astype(dtype)
    x[3, 4], x[5] = np.nan, -np.inf
    g = rng.standard_normal(300).astype(dtype)
    for serial, parallel, args in (
        (_cpu_rows._softmax_serial, _cpu_rows._softmax_parallel, (x,)),
        (_cpu_rows._logsumexp_serial, _cpu_rows._logsumexp_parallel, (x,)),
        (_cpu_rows._layer_norm_serial, _cpu_rows._layer_norm_parallel, (x, g, g, 1e-5)),
    ):
        shape = x.shape[:1] if serial is _cpu_rows._logsumexp_serial else x.shape
        a, b = np.empty(shape, dtype), np.empty(shape, dtype)
        serial(*args, a)
        parallel(*args, b)
        tol = x.shape[1] * np.finfo(dtype).eps
        assert np.allclose(a, b, rtol=tol, atol=tol, equal_nan=True), serial.__name__
        assert np.array_equal(np.isnan(a), np.isnan(b)), serial.__name__


def test_one_numba_thread_or_small_work_takes_the_serial_twins(rng):
    import numba

    from kernels_gpu import _cpu_rows, _cpu_segments, _cpu_threads

    small = rng.standard_normal((4, 256)).astype(np.float32)
    big = rng.standard_normal((64, 1024)).astype(np.float32)
    big_offsets = np.arange(0, big.size + 1, 64)
    before = numba.get_num_threads()
    # Small work: serial on any number of threads; more: parallel unless on one thread.
    assert _cpu_rows._serial(small)
    assert _cpu_rows._serial(big) == (before == 1)
    assert _cpu_segments._serial(big.size, big_offsets) == (before == 1)
    assert _cpu_threads.serial(_cpu_threads.SERIAL_WORK)
    assert _cpu_threads.serial(_cpu_threads.SERIAL_WORK + 1) == (before == 1)
    try:
        numba.set_num_threads(1)
        assert _cpu_rows._serial(big) and _cpu_segments._serial(big.size, big_offsets)
        ref.close(kg.softmax(big), ref.softmax(big), np.float32)
        ref.close(kg.logsumexp(big), ref.logsumexp(big), np.float32)
        ref.close(kg.layer_norm(big), ref.layer_norm(big), np.float32)
        flat = big.ravel()
        ref.close(
            kg.segment_reduce(flat, big_offsets),
            ref.segment_reduce(flat, big_offsets, "sum"),
            np.float32,
        )
    finally:
        numba.set_num_threads(before)
    assert _cpu_rows._serial(big) == (before == 1)


@pytest.mark.parametrize("dtype", FLOATS)
def test_segment_serial_twins_match_the_parallel_kernels(rng, dtype):
    # Small work takes the serial twins (no parallel region): same segments, same bits.
    from kernels_gpu import _cpu_segments as cs

    lens = rng.integers(0, 40, 301)
    lens[[3, 50, 300]] = 0
    lens[[7, 9, 11]] = 5
    off = np.concatenate([[2], 2 + np.cumsum(lens)]).astype(np.int64)
    v = (rng.standard_normal(int(off[-1]) + 5) * 10).astype(dtype)
    v[off[7]], v[off[9] + 1], v[off[11]] = np.nan, np.inf, -np.inf
    nseg = off.size - 1

    def both(serial, parallel, args, shape, fill=0.0, blocks=()):
        a, b = np.full(shape, fill, dtype), np.full(shape, fill, dtype)
        serial(*args, a)
        parallel(*args, *blocks, b)
        assert np.array_equal(a, b, equal_nan=True), serial
        return a

    for op in (0, 1):  # sum, mean (min and max: segment_minmax)
        ser, par = cs._segment_reduce_serial, cs._segment_reduce_parallel
        got = both(ser, par, (v, off, op), nseg)
        assert np.isnan(got[7]) and (got[3] == 0 if op == 0 else np.isnan(got[3]))
    for is_max in (False, True):
        ser, par = cs._segment_minmax_serial, cs._segment_minmax_parallel
        got = both(ser, par, (v, off, is_max), nseg, blocks=(64,))
        assert np.isnan(got[[3, 7, 50, 300]]).all()
    got = both(cs._ewma_serial, cs._ewma_parallel, (v, off, 0.25), v.size, fill=7.0)
    assert (got[:2] == 7.0).all() and (got[off[-1] :] == 7.0).all()  # outside every segment

    edges = np.linspace(-30.0, 30.0, 17)
    w = rng.random(v.size)
    for weights, bins in ((np.empty(0), np.int64), (w, np.float64)):
        a, b = np.zeros(16, bins), np.zeros(16, bins)
        cs._histogram_serial(v, weights, edges, -30.0, 30.0, a)
        cs._histogram_parallel(v, weights, edges, -30.0, 30.0, 8, b)
        np.testing.assert_allclose(a, b, rtol=1e-12)  # weights: the merge adds in another order
        want = np.histogram(
            v[np.isfinite(v)], edges, weights=None if bins is np.int64 else w[np.isfinite(v)]
        )[0]
        np.testing.assert_allclose(a, want, rtol=1e-12)
    assert cs._minmax_serial(v) == cs._minmax_parallel(v) == (np.nanmin(v), np.nanmax(v))


_FIRST_COMPILE = """
import warnings
import numpy as np
from numba.core.errors import NumbaWarning
import kernels_gpu as kg
with warnings.catch_warnings(record=True) as got:
    warnings.simplefilter("always")
    for dt in (np.float32, np.float64):
        x = np.ones((2, 8), dt)
        kg.softmax(x)
        kg.logsumexp(x)
print("numba warnings:", [str(w.message)[:200] for w in got if issubclass(w.category, NumbaWarning)])
"""


def test_a_first_compile_shows_the_user_no_numba_warnings(tmp_path):
    # A user's first call compiles the twins. The inlined exp's conditional expression
    # made numba print six "NumbaIRAssumptionWarning ... please report" blocks there.
    done = run_python(_FIRST_COMPILE, tmp_path)  # an empty cache: everything compiles
    assert "numba warnings: []" in done.stdout, done.stdout[-2000:]
