"""The explicit SIMD loops of logsumexp's float32 path (``kernels_gpu._cpu_simd``): both
exp variants (the AVX-512 table, the portable polynomial), every tail length, NaN and
infinities, the batched log, and the choice of variant on a machine without AVX-512."""

from __future__ import annotations

import os
import sys

import kernels_reference as ref
import numpy as np
import pytest
from fresh_python import run_python
from numba import njit

import kernels_gpu as kg
from kernels_gpu import _cpu_bits, _cpu_simd

# Lengths around the loop's steps (64 values) and blocks (256): every tail mask, whole
# steps only, part of a block, several blocks.
LENGTHS = [0, 1, 15, 16, 17, 63, 64, 65, 127, 255, 256, 257, 1000, 4099]


@pytest.fixture
def rng():
    return np.random.default_rng(20261)  # seeded: a failure reproduces


def _one(intrinsic):
    """A jitted caller of a one-argument intrinsic (intrinsics run inside jitted code)."""

    def call(x):
        return intrinsic(x)

    call.__name__ = call.__qualname__ = intrinsic._name
    return njit(call)


def _three(intrinsic):
    def call(x, other, m):
        return intrinsic(x, other, m)

    call.__name__ = call.__qualname__ = intrinsic._name
    return njit(call)


_row_range = _one(_cpu_simd.row_range)


def _row_max(x):
    return _row_range(x)[0]


_sum_table = _three(_cpu_simd.exp_sum)
_sum_portable = _three(_cpu_simd.exp_sum_portable)
_sum_near = _three(_cpu_simd.exp_sum_near)
_sum_near_portable = _three(_cpu_simd.exp_sum_near_portable)
CLAMPED = [_sum_table, _sum_portable]
ALL_SUMS = CLAMPED + [_sum_near, _sum_near_portable]  # near: no value under m - 86


@njit
def _logs(s):
    out = np.empty_like(s)
    for i in range(s.size):
        out[i] = _cpu_bits._log_pos(s[i])
    return out


def _has_table() -> bool:
    from numba.core.registry import cpu_target

    return _cpu_simd._has_table(cpu_target.target_context)


@pytest.mark.parametrize("n", LENGTHS)
def test_row_range_ignores_nan_over_every_tail(rng, n):
    x = rng.standard_normal(n).astype(np.float32)
    assert _row_range(x) == ((x.max(), x.min()) if n else (-np.inf, np.inf))
    if n:
        x[rng.integers(n)] = 50.0  # the max in any lane, the tail included
        x[rng.integers(n)] = -50.0
        assert _row_range(x) == (x.max(), x.min())
        x[rng.integers(n, size=max(1, n // 3))] = np.nan
        rest = x[~np.isnan(x)]
        assert _row_range(x) == ((rest.max(), rest.min()) if rest.size else (-np.inf, np.inf))
        assert _row_range(np.full(n, np.nan, np.float32)) == (-np.inf, np.inf)


@pytest.mark.parametrize("n", LENGTHS)
def test_exp_sum_both_variants_match_float64(rng, n):
    x = (rng.standard_normal(n) * 8).astype(np.float32)  # within 86 of the max
    if n == 0:
        assert all(f(x, x, np.float32(0)) == 0.0 for f in ALL_SUMS)
        return
    m = x.max()
    want = np.exp(x.astype(np.float64) - m).sum()
    # Each term within about an ulp, the block sums in float32: a few 1e-8 of the sum.
    for f in ALL_SUMS:
        got = f(x, x, m)
        assert abs(got - want) <= 1e-7 * want, (f.__name__, n, got, want)


@pytest.mark.parametrize("n", [1, 64, 65, 300, 1000])
def test_exp_sum_is_nan_with_a_nan_anywhere(rng, n):
    base = rng.standard_normal(n).astype(np.float32)
    for at in sorted({0, n // 2, n - 1}):  # a whole step, and the last (masked) values
        x = base.copy()
        x[at] = np.nan
        m = np.float32(np.nanmax(x)) if n > 1 else np.float32(0)
        assert all(np.isnan(f(x, x, m)) for f in ALL_SUMS), at


def test_exp_sum_terms_below_the_floor_and_minus_inf():
    x = np.full(300, -np.inf, np.float32)
    x[0] = 0.0
    x[1:50] = -1000.0
    for f in CLAMPED:
        got = f(x, x, np.float32(0))
        assert 1.0 <= got <= 1.0 + 1e-30  # exp(-87) per term at most
    x[299] = np.float32(-1.0)  # in the masked tail
    assert abs(_sum_table(x, x, np.float32(0)) - (1 + np.exp(-1.0))) < 1e-7


def test_prefetching_another_row_changes_nothing(rng):
    x = rng.standard_normal((3, 1000)).astype(np.float32)
    m = x[0].max()
    assert _sum_table(x[0], x[2], m) == _sum_table(x[0], x[0], m)


def test_log_pos_matches_numpy():
    s = np.concatenate([np.geomspace(1e-300, 1e300, 20001), [1.0, 2.0, np.sqrt(2), 1024.0]])
    s = np.concatenate([s, np.nextafter(s, 0), np.nextafter(s, np.inf)])
    want = np.log(s)
    got = _logs(s)
    assert np.all(np.abs(got - want) <= 1e-15 * np.maximum(np.abs(want), 1.0))
    assert np.isnan(_logs(np.array([np.nan]))[0])


def _rows_with_specials(rng, n):
    """9 float32 rows of n values: plain (0, 7, 8), one NaN (1), +inf last (2), all -inf
    (3), all NaN (4), a negative NaN first (5), one value far above all others (6)."""
    x = (rng.standard_normal((9, n)) * 20 - 3).astype(np.float32)
    x[1, n // 2] = np.nan
    x[2, n - 1] = np.inf
    x[3] = -np.inf
    x[4] = np.nan
    x[5, 0] = -np.nan
    x[6, :] = np.float32(-1e30)  # every other term far below the exp floor
    x[6, n // 3] = 5.0
    return x


def test_logsumexp_float32_rows_of_every_length(rng):
    for n in LENGTHS[1:]:
        x = _rows_with_specials(rng, n)
        got = kg.logsumexp(x)
        ref.close(got, ref.logsumexp(x), np.float32)
        assert np.isnan(got[[1, 4, 5]]).all() and got[3] == -np.inf
        assert got[2] == np.inf and got[6] == 5.0


def test_the_table_is_used_on_this_machine_when_it_has_avx512():
    import llvmlite.binding as llb

    features = os.environ.get("NUMBA_CPU_FEATURES")  # what numba builds for, if set
    if features:
        avx512 = "+avx512f" in features.split(",")
    else:
        avx512 = llb.get_host_cpu_features().get("avx512f", False)
    assert _has_table() == (avx512 and llb.get_process_triple().startswith("x86_64"))


_WITHOUT_AVX512 = """
import numpy as np
from numba.core.registry import cpu_target
import kernels_gpu as kg
from kernels_gpu import _cpu_simd
assert not _cpu_simd._has_table(cpu_target.target_context)
rng = np.random.default_rng(5)
x = (rng.standard_normal((40, 1000)) * 10).astype(np.float32)
x[3, 999] = np.nan
got = kg.logsumexp(x).astype(np.float64)
m = x.max(axis=1, keepdims=True).astype(np.float64)
want = (np.log(np.exp(x - m).sum(axis=1, keepdims=True)) + m)[:, 0]
assert np.isnan(got[3])
ok = np.delete(np.arange(40), 3)
assert np.allclose(got[ok], want[ok], rtol=2e-7, atol=0), abs(got[ok] - want[ok]).max()
print("portable ok")
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.uname().machine != "x86_64",
    reason="builds for an x86-64 CPU without AVX-512",
)
def test_a_machine_without_avx512_gets_the_portable_loop(tmp_path):
    # numba builds for NUMBA_CPU_NAME/NUMBA_CPU_FEATURES: as for a Haswell (AVX2, no
    # AVX-512). Emitting the AVX-512 permute there would fail in LLVM's code generator.
    done = run_python(
        _WITHOUT_AVX512,
        tmp_path,
        NUMBA_CPU_NAME="haswell",
        NUMBA_CPU_FEATURES="+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+f16c,+fma,+fxsr,"
        "+lzcnt,+mmx,+movbe,+popcnt,+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,+xsave",
    )
    assert "portable ok" in done.stdout


def test_masked_lanes_add_nothing_whatever_the_max():
    # The lanes past a row's end must add 0 whatever the row's max: read as 0.0 they made
    # exp(0 - m) overflow the exponent bits into NaN for some m (these did; -1e30 not).
    for m in (-214177.03, -3.9166387e08, -5.3561927e22, -1e30, 1e30):
        for n in (1, 17, 65, 100):
            x = np.full((1, n), np.float32(m))
            assert kg.logsumexp(x)[0] == np.float32(np.log(n) + np.float64(np.float32(m)))
            for f in ALL_SUMS:
                assert f(x[0], x[0], x[0, 0]) == n, (m, n)


def test_rows_on_either_side_of_the_clamp_free_range():
    # Rows within 86 of their max take the loop without the clamp; the others clamp.
    for low in (-85.9, -86.0, -86.1, -87.2, -88.0, -89.0, -150.0, -300.0):
        for n in (2, 70, 300):
            x = np.zeros((1, n), np.float32)
            x[0, 1:] = np.float32(low)
            want = np.log1p((n - 1) * np.exp(np.float64(np.float32(low))))
            assert abs(kg.logsumexp(x)[0] - want) <= 2.0**-24 + 1e-7 * want, (low, n)


_store_table = _three(_cpu_simd.exp_store)
_store_near = _three(_cpu_simd.exp_store_near)
_store_portable = _three(_cpu_simd.exp_store_portable)
_store_near_portable = _three(_cpu_simd.exp_store_near_portable)
STORES = [_store_table, _store_near, _store_portable, _store_near_portable]


@pytest.mark.parametrize("n", LENGTHS)
def test_exp_store_writes_each_value_and_nothing_past_the_row(rng, n):
    x = (rng.standard_normal(n) * 8).astype(np.float32)  # within 86 of the max
    m = x.max() if n else np.float32(0)
    want = np.exp((x - m).astype(np.float64))  # x - m rounds in float32, as in the loops
    ulp = np.spacing(want.astype(np.float32)).astype(np.float64)
    for f in STORES:
        buf = np.full(n + 80, 7.0, np.float32)  # the row, then a guard the loop must not touch
        s = f(x, buf[:n], m)
        got = buf[:n].astype(np.float64)
        assert np.all(np.abs(got - want) <= ulp), (f.__name__, n)  # each within an ulp
        assert abs(s - want.sum()) <= 1e-7 * max(want.sum(), 1.0), (f.__name__, n)
        assert np.all(buf[n:] == 7.0), f.__name__


def test_exp_store_zero_below_the_floor_and_nan_everywhere():
    x = np.array([0.0, -86.9, -87.5, -200.0, -np.inf] * 14, np.float32)  # 70: a tail too
    for f in (_store_table, _store_portable):  # the clamped loops
        out = np.empty_like(x)
        s = f(x, out, np.float32(0))
        assert np.all(out[2::5] == 0) and np.all(out[3::5] == 0) and np.all(out[4::5] == 0)
        assert np.all(out[1::5] > 0) and np.all(out[::5] == 1.0)
        assert abs(s - 14 * (1 + np.exp(-86.9))) < 1e-12
        x2 = x.copy()
        x2[67] = np.nan  # in the masked tail
        out = np.empty_like(x2)
        assert np.isnan(f(x2, out, np.float32(0))) and np.isnan(out[67])


def test_softmax_float32_rows_of_every_length(rng):
    for n in LENGTHS[1:]:
        x = _rows_with_specials(rng, n)
        got = kg.softmax(x)
        ref.close(got, ref.softmax(x), np.float32)
        assert np.isnan(got[[1, 2, 3, 4, 5]]).all()
        assert got[6, n // 3] == 1.0 and np.count_nonzero(got[6]) == 1
        np.testing.assert_allclose(got[[0, 7, 8]].sum(axis=1), 1.0, rtol=1e-6)


_seg_max = _one(_cpu_simd.segment_max)
_seg_min = _one(_cpu_simd.segment_min)


@pytest.mark.parametrize("n", LENGTHS[1:])
def test_segment_extremes_propagate_nan_and_ignore_what_follows(rng, n):
    buf = rng.standard_normal(n + 70).astype(np.float32)
    buf[n:] = np.nan  # right after the segment: the masked tail must not see it
    seg = buf[:n]
    assert _seg_max(seg) == seg.max() and _seg_min(seg) == seg.min()
    if n > 1:
        seg[n - 1] = np.inf
        seg[0] = -np.inf
        assert _seg_max(seg) == np.inf and _seg_min(seg) == -np.inf
    for at in {0, n // 2, n - 1}:
        s = seg.copy()
        s[at] = np.nan
        assert np.isnan(_seg_max(s)) and np.isnan(_seg_min(s)), at


def test_segment_reduce_float32_max_min_over_segments_of_every_length(rng):
    lens = np.array(LENGTHS * 3)
    off = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    v = rng.standard_normal(int(off[-1])).astype(np.float32)
    v[off[5] + 3] = np.nan  # one segment with NaN
    for op, ufunc in (("max", np.maximum), ("min", np.minimum)):
        got = kg.segment_reduce(v, off, op)
        nonempty = lens > 0
        want = np.full(lens.size, np.nan, np.float32)
        want[nonempty] = ufunc.reduceat(v, off[:-1][nonempty])
        np.testing.assert_array_equal(got, want)
