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

from . import _cpu_simd, _math
from ._cpu_bits import _FM, _key_extremes

_jit = njit(inline="always", cache=True)
_bin_index = _jit(_math.bin_index)
_fmix64 = _jit(_math.fmix64)
_perm_hash = _jit(_math.perm_hash)


@njit(parallel=True, cache=True)
def histogram(x, weights, edges, lo, hi, nchunks, out):
    """Per-thread private bins, then one merge; ``weights.size == 0`` means counts."""
    nbins = out.size
    norm = nbins / (hi - lo)
    n = x.size
    use_w = weights.size > 0
    local = np.zeros((nchunks, nbins), dtype=out.dtype)
    step = (n + nchunks - 1) // nchunks
    for c in prange(nchunks):
        for j in range(c * step, min(n, (c + 1) * step)):
            b = _bin_index(np.float64(x[j]), lo, hi, norm, nbins, edges)
            if b >= 0:
                if use_w:
                    local[c, b] += weights[j]
                else:
                    local[c, b] += 1
    for b in prange(nbins):
        acc = local[0, b]
        for c in range(1, nchunks):
            acc += local[c, b]
        out[b] = acc


@njit(parallel=True, cache=True)
def minmax(x):
    """(min, max) ignoring NaN, in float64; (inf, -inf) when no value is a number."""
    nchunks = 64
    n = x.size
    lo = np.full(nchunks, np.inf)
    hi = np.full(nchunks, -np.inf)
    step = (n + nchunks - 1) // nchunks
    for c in prange(nchunks):
        for j in range(c * step, min(n, (c + 1) * step)):
            v = np.float64(x[j])
            if v < lo[c]:
                lo[c] = v
            if v > hi[c]:
                hi[c] = v
    return lo.min(), hi.max()


@njit(parallel=True, cache=True, fastmath=_FM)
def segment_reduce(values, offsets, op, out):
    """op: 0 sum, 1 mean, 2 min, 3 max; float64 accumulation; empty -> 0 or NaN."""
    n = values.size
    for s in prange(offsets.size - 1):
        a = min(max(offsets[s], 0), n)
        b = min(max(offsets[s + 1], a), n)
        if op <= 1:
            acc = 0.0
            for j in range(a, b):
                acc += values[j]
            if op == 1:
                acc = acc / (b - a) if b > a else np.nan
            out[s] = acc
        elif b == a:
            out[s] = np.nan
        else:
            # numba's own min/max reductions propagate NaN and vectorise better than a
            # hand loop that must also watch for NaN.
            seg = values[a:b]
            out[s] = np.min(seg) if op == 2 else np.max(seg)


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


@njit(parallel=True, cache=True)
def segment_minmax(values, offsets, is_max, nblocks, out):
    """min or max of each segment of float values: NaN propagates, empty -> NaN. The
    NaN-aware float max does not vectorise and NumPy's ``reduceat`` pays a call per
    segment; these loops do neither. prange over ``nblocks`` contiguous blocks of segments
    (1: serial)."""
    n = values.size
    nseg = offsets.size - 1
    for blk in prange(nblocks):
        for s in range(blk * nseg // nblocks, (blk + 1) * nseg // nblocks):
            a = min(max(offsets[s], 0), n)
            b = min(max(offsets[s + 1], a), n)
            out[s] = np.nan if b == a else _extreme(values[a:b], is_max)


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


@njit(parallel=True, cache=True)
def ewma(values, offsets, alpha, out):
    """Sequential scan per segment, float64 state; NaN inputs repeat the last mean.

    One segment's scan is a chain of dependent multiply-adds (about 6 cycles per value
    on one core), so four segments are scanned in lockstep: four independent chains
    fill the pipeline. Each segment sees exactly the serial operations (no fastmath,
    no reordering), so results are bitwise those of a one-segment-at-a-time loop.
    """
    n = values.size
    beta = 1.0 - alpha
    nseg = offsets.size - 1
    for g in prange((nseg + 3) // 4):
        s0 = 4 * g
        if s0 + 4 > nseg:
            for s in range(s0, nseg):
                a = min(max(offsets[s], 0), n)
                b = min(max(offsets[s + 1], a), n)
                _ewma_tail(values[a:b], out[a:b], np.nan, alpha, beta)
            continue
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
