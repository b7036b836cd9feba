"""CPU twins of the segment and histogram kernels: histogram, minmax, segment_reduce,
segment_minmax, ewma and minhash.

``numba.njit(parallel=True, cache=True)``, as in ``_cpu_rows.py``. The callers in
``segments.py`` have already validated and normalised the inputs: arrays are
C-contiguous, floats are float32/float64, offsets are checked.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from . import _cpu_simd, _cpu_threads, _math
from ._cpu_bits import _FM, _key_extremes

_jit = njit(inline="always", cache=True)
_bin_guess = _jit(_math.bin_guess)
_bin_fix = _jit(_math.bin_fix)
_fmix64 = _jit(_math.fmix64)
_perm_hash = _jit(_math.perm_hash)


# The work of each twin for ``_cpu_threads.serial``, in values: a segment's fixed cost
# (its bounds, accumulator and store) as 16 values; an ewma value as 2 (a dependent
# chain), a segment max/min value as its bytes / 16 (float32: 16 per SIMD compare), a
# minmax value as 1/16. Fitted to where serial and parallel cross on cpu-2c, two
# threads (benchmarks/RESULTS.md, "serial under a work size").
_SEGMENT_WORK = 16


def _serial(value_work: int, offsets) -> bool:
    return _cpu_threads.serial(value_work + _SEGMENT_WORK * (offsets.size - 1))


def histogram_serial(x, out) -> bool:
    """Whether ``histogram`` runs serially: its values, and a bin's merge as one value."""
    return _cpu_threads.serial(x.size + out.size)


def minmax_serial(x) -> bool:
    return _cpu_threads.serial(x.size // 16)


def segment_reduce_serial(values, offsets) -> bool:
    return _serial(values.size, offsets)


def segment_minmax_serial(values, offsets) -> bool:
    return _serial(values.size * values.itemsize // 16, offsets)  # float32 1/4, float64 1/2


def ewma_serial(values, offsets) -> bool:
    return _serial(2 * values.size, offsets)


@njit(inline="always", cache=True)
def _count(x, weights, edges, lo, hi, j0, j1, bins):
    """Values j0..j1-1 into ``bins``; ``weights.size == 0`` means counts."""
    nbins = bins.size
    norm = nbins / (hi - lo)
    use_w = weights.size > 0
    for j in range(j0, j1):
        # The edges are read here, not in a helper (see _math.bin_guess).
        v = np.float64(x[j])
        b = _bin_guess(v, lo, hi, norm, nbins)
        if b >= 0:
            b = _bin_fix(v, b, nbins, edges[b], edges[b + 1])
        if b >= 0:
            if use_w:
                bins[b] += weights[j]
            else:
                bins[b] += 1


@njit(parallel=True, cache=True)
def _histogram_parallel(x, weights, edges, lo, hi, nchunks, out):
    """Per-thread private bins, then one merge."""
    nbins = out.size
    n = x.size
    local = np.zeros((nchunks, nbins), dtype=out.dtype)
    step = (n + nchunks - 1) // nchunks
    for c in prange(nchunks):
        _count(x, weights, edges, lo, hi, c * step, min(n, (c + 1) * step), local[c])
    for b in prange(nbins):
        acc = local[0, b]
        for c in range(1, nchunks):
            acc += local[c, b]
        out[b] = acc


@njit(cache=True)
def _histogram_serial(x, weights, edges, lo, hi, out):
    _count(x, weights, edges, lo, hi, 0, x.size, out)


def histogram(x, weights, edges, lo, hi, nchunks, out) -> None:
    """Counts (or sums of ``weights``, when it is not empty) of ``x`` in the equal bins
    of ``edges`` into the zeroed ``out``: in ``nchunks`` private sets of bins in parallel,
    or serially for small work."""
    if histogram_serial(x, out):
        _histogram_serial(x, weights, edges, lo, hi, out)
    else:
        _histogram_parallel(x, weights, edges, lo, hi, nchunks, out)


@njit(inline="always", cache=True)
def _extremes(x, j0, j1):
    lo, hi = np.inf, -np.inf
    for j in range(j0, j1):
        v = np.float64(x[j])
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    return lo, hi


@njit(parallel=True, cache=True)
def _minmax_parallel(x):
    nchunks = 64
    n = x.size
    lo = np.full(nchunks, np.inf)
    hi = np.full(nchunks, -np.inf)
    step = (n + nchunks - 1) // nchunks
    for c in prange(nchunks):
        lo[c], hi[c] = _extremes(x, c * step, min(n, (c + 1) * step))
    return lo.min(), hi.max()


@njit(cache=True)
def _minmax_serial(x):
    return _extremes(x, 0, x.size)


def minmax(x) -> tuple[float, float]:
    """(min, max) ignoring NaN, in float64; (inf, -inf) when no value is a number."""
    return _minmax_serial(x) if minmax_serial(x) else _minmax_parallel(x)


@njit(inline="always", cache=True, fastmath=_FM)
def _reduce_segment(values, offsets, op, s, out):
    """op: 0 sum, 1 mean; float64 accumulation; empty -> 0 or NaN. (min and max go to
    ``segment_minmax``: inside a prange numba turns ``np.min`` of a slice into a
    reduction of its own, which drops NaN.)"""
    n = values.size
    a = min(max(offsets[s], 0), n)
    b = min(max(offsets[s + 1], a), n)
    acc = 0.0
    for j in range(a, b):
        acc += values[j]
    if op == 1:
        acc = acc / (b - a) if b > a else np.nan
    out[s] = acc


@njit(parallel=True, cache=True, fastmath=_FM)
def _segment_reduce_parallel(values, offsets, op, out):
    for s in prange(offsets.size - 1):
        _reduce_segment(values, offsets, op, s, out)


@njit(cache=True, fastmath=_FM)
def _segment_reduce_serial(values, offsets, op, out):
    for s in range(offsets.size - 1):
        _reduce_segment(values, offsets, op, s, out)


def segment_reduce(values, offsets, op, out) -> None:
    """op: 0 sum, 1 mean per CSR segment; float64 accumulation; empty segments give 0
    (sum) or NaN (mean)."""
    if segment_reduce_serial(values, offsets):
        _segment_reduce_serial(values, offsets, op, out)
    else:
        _segment_reduce_parallel(values, offsets, op, out)


@njit(inline="always", cache=True)
def _extreme_by_keys(seg, is_max):
    """max or min of a non-empty segment by ``_key_extremes``: NaN propagates."""
    hi, lo, bad = _key_extremes(seg)
    if bad:
        return np.nan
    return hi if is_max else lo


def _extreme(seg, is_max):
    """max or min of a non-empty segment, NaN if it holds NaN."""


@overload(_extreme, inline="always")
def _extreme_impl(seg, is_max):
    if seg.dtype == types.float32 and seg.layout == "C":
        # The explicit SIMD loops: vmaxps/vminps and a NaN compare per 16 values.
        def simd(seg, is_max):
            return _cpu_simd.segment_max(seg) if is_max else _cpu_simd.segment_min(seg)

        return simd
    return lambda seg, is_max: _extreme_by_keys(seg, is_max)


@njit(inline="always", cache=True)
def _minmax_segments(values, offsets, is_max, s0, s1, out):
    n = values.size
    for s in range(s0, s1):
        a = min(max(offsets[s], 0), n)
        b = min(max(offsets[s + 1], a), n)
        out[s] = np.nan if b == a else _extreme(values[a:b], is_max)


@njit(parallel=True, cache=True)
def _segment_minmax_parallel(values, offsets, is_max, nblocks, out):
    nseg = offsets.size - 1
    for blk in prange(nblocks):
        s0, s1 = blk * nseg // nblocks, (blk + 1) * nseg // nblocks
        _minmax_segments(values, offsets, is_max, s0, s1, out)


@njit(cache=True)
def _segment_minmax_serial(values, offsets, is_max, out):
    _minmax_segments(values, offsets, is_max, 0, offsets.size - 1, out)


def segment_minmax(values, offsets, is_max, out) -> None:
    """min or max of each segment of float values: NaN propagates, empty -> NaN. The
    NaN-aware float max does not vectorise and NumPy's ``reduceat`` pays a call per
    segment; these loops do neither. In parallel over up to 256 contiguous blocks of
    segments (many per thread: a stalled thread's share is small), or serially."""
    if segment_minmax_serial(values, offsets):
        _segment_minmax_serial(values, offsets, is_max, out)
    else:
        nblocks = min(offsets.size - 1, 256)
        _segment_minmax_parallel(values, offsets, is_max, nblocks, out)


@njit(inline="always", cache=True)
def _ewma_step(m, v, alpha, beta):
    """One step of the scan: a NaN input leaves the state alone, the first number sets it.

    Written with selects, not branches, so four interleaved scans stay branch-free.
    """
    u = beta * m + alpha * v
    u = v if m != m else u
    return u if v == v else m


@njit(inline="always", cache=True)
def _ewma_tail(vs, os, m, alpha, beta):
    for j in range(vs.size):
        m = _ewma_step(m, np.float64(vs[j]), alpha, beta)
        os[j] = m


@njit(inline="always", cache=True)
def _ewma_group(values, offsets, alpha, g, out):
    """Segments 4g..4g+3 (those that exist) by ``ewma``'s lockstep scan."""
    n = values.size
    beta = 1.0 - alpha
    nseg = offsets.size - 1
    s0 = 4 * g
    if s0 + 4 > nseg:
        for s in range(s0, nseg):
            a = min(max(offsets[s], 0), n)
            b = min(max(offsets[s + 1], a), n)
            _ewma_tail(values[a:b], out[a:b], np.nan, alpha, beta)
        return
    a0 = min(max(offsets[s0], 0), n)
    b0 = min(max(offsets[s0 + 1], a0), n)
    a1 = min(max(offsets[s0 + 1], 0), n)
    b1 = min(max(offsets[s0 + 2], a1), n)
    a2 = min(max(offsets[s0 + 2], 0), n)
    b2 = min(max(offsets[s0 + 3], a2), n)
    a3 = min(max(offsets[s0 + 3], 0), n)
    b3 = min(max(offsets[s0 + 4], a3), n)
    v0, v1, v2, v3 = values[a0:b0], values[a1:b1], values[a2:b2], values[a3:b3]
    o0, o1, o2, o3 = out[a0:b0], out[a1:b1], out[a2:b2], out[a3:b3]
    common = min(min(v0.size, v1.size), min(v2.size, v3.size))
    m0 = m1 = m2 = m3 = np.nan
    for j in range(common):
        m0 = _ewma_step(m0, np.float64(v0[j]), alpha, beta)
        m1 = _ewma_step(m1, np.float64(v1[j]), alpha, beta)
        m2 = _ewma_step(m2, np.float64(v2[j]), alpha, beta)
        m3 = _ewma_step(m3, np.float64(v3[j]), alpha, beta)
        o0[j] = m0
        o1[j] = m1
        o2[j] = m2
        o3[j] = m3
    _ewma_tail(v0[common:], o0[common:], m0, alpha, beta)
    _ewma_tail(v1[common:], o1[common:], m1, alpha, beta)
    _ewma_tail(v2[common:], o2[common:], m2, alpha, beta)
    _ewma_tail(v3[common:], o3[common:], m3, alpha, beta)


@njit(parallel=True, cache=True)
def _ewma_parallel(values, offsets, alpha, out):
    for g in prange((offsets.size + 2) // 4):
        _ewma_group(values, offsets, alpha, g, out)


@njit(cache=True)
def _ewma_serial(values, offsets, alpha, out):
    for g in range((offsets.size + 2) // 4):
        _ewma_group(values, offsets, alpha, g, out)


def ewma(values, offsets, alpha, out) -> None:
    """Sequential scan per segment, float64 state; NaN inputs repeat the last mean.

    One segment's scan is a chain of dependent multiply-adds (about 6 cycles per value
    on one core), so four segments are scanned in lockstep: four independent chains
    fill the pipeline. Each segment sees exactly the serial operations (no fastmath,
    no reordering), so results are bitwise those of a one-segment-at-a-time loop.
    """
    if ewma_serial(values, offsets):
        _ewma_serial(values, offsets, alpha, out)
    else:
        _ewma_parallel(values, offsets, alpha, out)


@njit(parallel=True, cache=True)
def minhash(tokens, offsets, a, b, out):
    """One signature row per document: min over tokens of each permutation's hash."""
    n = tokens.size
    nperm = a.size
    empty = np.uint32(0xFFFFFFFF)
    for doc in prange(offsets.size - 1):
        lo = min(max(offsets[doc], 0), n)
        hi = min(max(offsets[doc + 1], lo), n)
        sig = np.full(nperm, empty, dtype=np.uint32)
        for j in range(lo, hi):
            base = _fmix64(np.uint64(tokens[j]))
            for p in range(nperm):
                h = _perm_hash(base, a[p], b[p])
                if h < sig[p]:
                    sig[p] = h
        for p in range(nperm):
            out[doc, p] = sig[p]
