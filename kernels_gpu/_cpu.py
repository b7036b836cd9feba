"""CPU twins: ``numba.njit(parallel=True, cache=True)`` versions of every kernel.

``cache=True`` writes the machine code next to this file (or to NUMBA_CACHE_DIR), so a
second process, a Dask worker for instance, loads it instead of compiling again.
The callers in ``api.py`` have already validated and normalised the inputs: arrays
are C-contiguous, floats are float32/float64, offsets are checked.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from . import _math

# Let LLVM reorder sums so reductions vectorise; never "nnan"/"ninf": the NaN and inf
# rules are part of each kernel's contract.
_FM = {"contract", "reassoc"}

_jit = njit(inline="always", cache=True)
_bin_index = _jit(_math.bin_index)
_better = _jit(_math.better)
_topk_push = _jit(_math.make_topk_push(_better))
_fmix64 = _jit(_math.fmix64)
_perm_hash = _jit(_math.perm_hash)

# Above this k the twin sorts each query's distance row instead of insertion into a
# k-list, whose cost grows as k * (number of insertions).
_TOPK_SORT_ABOVE = 128
# Queries x keys per tile: small enough to stay in L2, large enough for BLAS to be fast.
_TILE_Q = 64
_TILE_K = 2048


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


@intrinsic
def _f64_bits(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _bits_f64(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453
_ROUND = 6755399441055744.0  # 1.5 * 2**52: adding it rounds to an integer in the low bits


@njit(inline="always", fastmath={"contract"}, cache=True)
def _exp_le0(d):
    """exp(d) for d <= 0 (or -inf) in float64, within ~1e-14 relative.

    ``math.exp`` compiles to a scalar libm call (no SVML in PyPI's llvmlite), which
    made the twin slower than NumPy's SIMD exp. Written as 2**n * 2**f with n from the
    rounding trick, 2**f by its Taylor series on |f| <= 1/2 and 2**n built from bits,
    the loop vectorises. Results under 2**-1022 (d < -708) are flushed to 0.
    """
    t = d * _LOG2E
    r = t + _ROUND
    y = (t - (r - _ROUND)) * _LN2
    p = 1.0 / 6227020800.0
    p = p * y + 1.0 / 479001600.0
    p = p * y + 1.0 / 39916800.0
    p = p * y + 1.0 / 3628800.0
    p = p * y + 1.0 / 362880.0
    p = p * y + 1.0 / 40320.0
    p = p * y + 1.0 / 5040.0
    p = p * y + 1.0 / 720.0
    p = p * y + 1.0 / 120.0
    p = p * y + 1.0 / 24.0
    p = p * y + 1.0 / 6.0
    p = p * y + 0.5
    p = p * y + 1.0
    p = p * y + 1.0
    scale = _bits_f64((_f64_bits(r) + 1023) << 52)
    return p * scale if t >= -1022.0 else 0.0


_LOG2E_F = np.float32(_LOG2E)
_LN2_HI_F = np.float32(0.693145751953125)  # ln 2 split so n * _LN2_HI_F is exact
_LN2_LO_F = np.float32(1.428606765330187e-06)
_ROUND_F = np.float32(12582912.0)  # 1.5 * 2**23


@intrinsic
def _f32_bits(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(types.float32), codegen


@intrinsic
def _bits_f32(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


# Near-minimax coefficients of exp(y) = 1 + y + y**2 * q(y) on |y| <= ln2/2 (relative
# error 3.1e-9, under the 5.2e-9 of the degree-7 Taylor series they replace, one FMA fewer).
_EXP_C2 = np.float32(0.49999993451625846)
_EXP_C3 = np.float32(0.16666520688656894)
_EXP_C4 = np.float32(0.04166838737390884)
_EXP_C5 = np.float32(0.008368709961330016)
_EXP_C6 = np.float32(0.0013814613092826597)


@njit(inline="always", fastmath={"contract"}, cache=True)
def _exp_le0_f32(d):
    """exp(d) for float32 d <= 0 (or -inf) in float32 arithmetic, within 0.9 ulp.

    Twice the SIMD lanes of the float64 version, which made softmax and logsumexp of
    float32 input compute-bound. Cody-Waite reduction (ln 2 in two parts) keeps the
    reduced argument exact; a degree-6 polynomial on |y| <= ln2/2; 2**n is added to
    the result's exponent bits (an integer add, not a multiply: the FMA units are the
    bottleneck). Results under about 2**-125.5 (d < -86.99) are flushed to 0.
    Measured over 17M arguments in [-88, 0]: max 0.87 ulp, mean 0.26 ulp (the Taylor
    version: 0.93 / 0.26).
    """
    r = d * _LOG2E_F + _ROUND_F
    n = r - _ROUND_F
    y = d - n * _LN2_HI_F
    y = y - n * _LN2_LO_F
    p = _EXP_C6
    p = p * y + _EXP_C5
    p = p * y + _EXP_C4
    p = p * y + _EXP_C3
    p = p * y + _EXP_C2
    p = p * y + np.float32(1.0)
    p = p * y + np.float32(1.0)
    # p lies in [0.70, 1.42], so for n >= -125 the sum of exponents stays normal.
    e = _bits_f32(_f32_bits(p) + (_f32_bits(r) << np.int32(23)))
    return e if n >= np.float32(-125.0) else np.float32(0.0)


def _exp_neg(d):
    """exp(d) for d <= 0 in the precision of d (float32 stays float32)."""


@overload(_exp_neg, inline="always")
def _exp_neg_impl(d):
    if d == types.float32:
        return lambda d: _exp_le0_f32(d)
    return lambda d: _exp_le0(np.float64(d))


def _elem(x, v):
    """``v`` converted to the element type of the array ``x``."""


@overload(_elem, inline="always")
def _elem_impl(x, v):
    dt = x.dtype
    return lambda x, v: dt(v)


def _key(v):
    """An int64 whose signed order is the float order of ``v`` (NaN: beyond +-inf)."""


@overload(_key, inline="always")
def _key_impl(v):
    if v == types.float32:
        # int32 keys for float32: 16 lanes per AVX-512 register instead of 8.
        def k32(v):
            b = _f32_bits(v)
            return b ^ ((b >> np.int32(31)) & np.int32(0x7FFFFFFF))

        return k32

    def k64(v):
        b = _f64_bits(np.float64(v))
        return b ^ ((b >> 63) & 0x7FFFFFFFFFFFFFFF)

    return k64


def _unkey(k, like):
    """The float64 value of a key made by ``_key`` from a value of ``like``'s type."""


@overload(_unkey, inline="always")
def _unkey_impl(k, like):
    if like == types.float32:

        def u32(k, like):
            b = k ^ ((k >> np.int32(31)) & np.int32(0x7FFFFFFF))
            return np.float64(_bits_f32(b))

        return u32
    return lambda k, like: _bits_f64(k ^ ((k >> 63) & 0x7FFFFFFFFFFFFFFF))


@njit(parallel=True, cache=True)
def segment_minmax(values, offsets, is_max, nblocks, out):
    """min or max of each segment of float values as integer max/min of order-preserving
    keys (see ``_row_max``): NaN propagates, empty -> NaN. The NaN-aware float max does
    not vectorise and NumPy's ``reduceat`` pays a call per segment; this loop does
    neither. prange over ``nblocks`` contiguous blocks of segments (1: serial)."""
    n = values.size
    nseg = offsets.size - 1
    kinf = _key(_elem(values, np.inf))
    kninf = _key(_elem(values, -np.inf))
    for blk in prange(nblocks):
        for s in range(blk * nseg // nblocks, (blk + 1) * nseg // nblocks):
            a = min(max(offsets[s], 0), n)
            b = min(max(offsets[s + 1], a), n)
            if b == a:
                out[s] = np.nan
                continue
            seg = values[a:b]
            hi = lo = _key(seg[0])
            for j in range(seg.size):
                k = _key(seg[j])
                hi = max(hi, k)
                lo = min(lo, k)
            if hi > kinf or lo < kninf:
                out[s] = np.nan
            else:
                out[s] = _unkey(hi if is_max else lo, seg[0])


@njit(inline="always", cache=True)
def _row_max(x, r):
    """(max, saw_nan) of one row, as integer max/min of order-preserving keys.

    A float max with NaN rules is a select chain LLVM cannot vectorise (it was the
    slowest pass of softmax); integer max and min are. A NaN key lies above +inf's
    (positive NaN) or below -inf's (negative NaN), so the two extremes reveal it.
    """
    if x.shape[1] == 0:
        return -np.inf, False
    hi = lo = _key(x[r, 0])
    for c in range(x.shape[1]):
        k = _key(x[r, c])
        hi = max(hi, k)
        lo = min(lo, k)
    bad = hi > _key(_elem(x, np.inf)) or lo < _key(_elem(x, -np.inf))
    return _unkey(hi, x[r, 0]), bad


# Row kernels run their prange over at most this many contiguous blocks of rows: many
# per thread (a stalled thread's share is small), each many rows long. One prange
# iteration per row cost about 10% of softmax's time on one thread. (A count from
# numba.get_num_threads() inside the kernel would stop numba from caching it.)
_ROW_BLOCKS = 256


# The exp terms of softmax/logsumexp are summed in the input precision over blocks of this
# many values (LLVM keeps 64 float32 partial sums per block, 4 terms each, then a tree),
# and the block sums in float64. A float64 sum of every term widens each float32 term
# (half the SIMD lanes, two extra operations per 16 values); the exp pass was 1.5x slower.
# Blocks keep the float32 rounding per term short whatever the row length: the row sums
# stay within a few 1e-8 relative of the float64 sums.
_SUM_BLOCK = 256


@njit(inline="always", cache=True)
def _row_blocks(rows):
    return min(rows, _ROW_BLOCKS)


@njit(inline="always", cache=True, fastmath=_FM)
def _softmax_row(x, r, out):
    xr = x[r]
    orow = out[r]
    m, bad = _row_max(x, r)
    if bad or m == np.inf or m == -np.inf:
        for c in range(orow.size):
            orow[c] = np.nan
        return
    mt = _elem(x, m)
    n = xr.size
    nb = n // _SUM_BLOCK
    s = 0.0
    for b in range(nb):
        xb = xr[b * _SUM_BLOCK : (b + 1) * _SUM_BLOCK]
        ob = orow[b * _SUM_BLOCK : (b + 1) * _SUM_BLOCK]
        t = _elem(x, 0.0)
        for c in range(_SUM_BLOCK):
            e = _exp_neg(xb[c] - mt)
            ob[c] = e
            t += e
        s += t
    for c in range(nb * _SUM_BLOCK, n):
        e = _exp_neg(xr[c] - mt)
        orow[c] = e
        s += e
    inv = _elem(out, 1.0 / s)
    for c in range(orow.size):
        orow[c] *= inv


@njit(parallel=True, cache=True, fastmath=_FM)
def softmax(x, out):
    """Rows of a 2-D array. Max pass, then exp-and-sum pass, then scale pass.

    The row is read from memory once; the later passes hit the cache. On the CPU this
    beats the online max/sum of the GPU kernel, which pays two exp per element.
    A row with NaN or +inf, or with only -inf (0/0), becomes NaN.
    """
    rows = x.shape[0]
    nb = _row_blocks(rows)
    for b in prange(nb):
        for r in range(b * rows // nb, (b + 1) * rows // nb):
            _softmax_row(x, r, out)


@njit(inline="always", cache=True, fastmath=_FM)
def _logsumexp_row(x, r, out):
    m, bad = _row_max(x, r)
    if bad:
        out[r] = np.nan
    elif m == np.inf or m == -np.inf:
        out[r] = m
    else:
        xr = x[r]
        mt = _elem(x, m)
        n = xr.size
        nb = n // _SUM_BLOCK
        s = 0.0
        for b in range(nb):
            xb = xr[b * _SUM_BLOCK : (b + 1) * _SUM_BLOCK]
            t = _elem(x, 0.0)
            for c in range(_SUM_BLOCK):
                t += _exp_neg(xb[c] - mt)
            s += t
        for c in range(nb * _SUM_BLOCK, n):
            s += _exp_neg(xr[c] - mt)
        out[r] = m + math.log(s)


@njit(parallel=True, cache=True, fastmath=_FM)
def logsumexp(x, out):
    """Rows of a 2-D array: NaN -> NaN, +inf -> +inf, only -inf or empty -> -inf."""
    rows = x.shape[0]
    nb = _row_blocks(rows)
    for b in prange(nb):
        for r in range(b * rows // nb, (b + 1) * rows // nb):
            _logsumexp_row(x, r, out)


@njit(inline="always", cache=True, fastmath=_FM)
def _layer_norm_row(x, r, gamma, beta, eps, out):
    xr = x[r]
    orow = out[r]
    cols = xr.size
    if cols == 0:
        return
    acc = 0.0
    for c in range(cols):
        acc += xr[c]
    mean = acc / cols
    m2 = 0.0
    for c in range(cols):
        d = xr[c] - mean
        m2 += d * d
    rstd = 1.0 / math.sqrt(m2 / cols + eps)
    # The last pass in the input's precision (float32 stays float32: 2x the lanes).
    scale = _elem(x, rstd)
    shift = _elem(x, -mean * rstd)
    if gamma.size > 0 and beta.size > 0:
        for c in range(cols):
            orow[c] = (xr[c] * scale + shift) * gamma[c] + beta[c]
    elif gamma.size > 0:
        for c in range(cols):
            orow[c] = (xr[c] * scale + shift) * gamma[c]
    elif beta.size > 0:
        for c in range(cols):
            orow[c] = (xr[c] * scale + shift) + beta[c]
    else:
        for c in range(cols):
            orow[c] = xr[c] * scale + shift


@njit(parallel=True, cache=True, fastmath=_FM)
def layer_norm(x, gamma, beta, eps, out):
    """Rows of a 2-D array; biased variance; gamma/beta of size 0 mean 1 and 0.

    Mean then squared deviations over the cached row: the same statistics as Welford
    (both stable), but vectorisable on the CPU.
    """
    rows = x.shape[0]
    nb = _row_blocks(rows)
    for b in prange(nb):
        for r in range(b * rows // nb, (b + 1) * rows // nb):
            _layer_norm_row(x, r, gamma, beta, eps, out)


@njit(parallel=True, cache=True, fastmath=_FM)
def pairwise_topk(queries, keys, k, metric, out_vals, out_idx):
    """metric: 0 l2 (squared), 1 ip, 2 cosine. Scores are ranked smaller-first.

    Distances come tile by tile from one BLAS product (queries x a slice of keys),
    so no (m, n) matrix is ever held; each tile is folded into per-query top-k lists.
    """
    m, d = queries.shape
    n = keys.shape[0]
    qn = np.empty(m)
    for i in prange(m):
        acc = 0.0
        for c in range(d):
            acc += np.float64(queries[i, c]) * queries[i, c]
        qn[i] = acc
    kn = np.empty(n)
    for t in prange(n):
        acc = 0.0
        for c in range(d):
            acc += np.float64(keys[t, c]) * keys[t, c]
        kn[t] = acc
    q64 = queries.astype(np.float64)
    nblocks = (m + _TILE_Q - 1) // _TILE_Q
    sort_rows = k > _TOPK_SORT_ABOVE
    for qb in prange(nblocks):
        q0 = qb * _TILE_Q
        q1 = min(m, q0 + _TILE_Q)
        nq = q1 - q0
        vals = np.empty((nq, k))
        idxs = np.empty((nq, k), dtype=np.int64)
        counts = np.zeros(nq, dtype=np.int64)
        rowbuf = np.empty((nq, n if sort_rows else 0))
        for t0 in range(0, n, _TILE_K):
            t1 = min(n, t0 + _TILE_K)
            tile = np.dot(q64[q0:q1], keys[t0:t1].astype(np.float64).T)
            for qi in range(nq):
                for tj in range(t1 - t0):
                    t = t0 + tj
                    dot = tile[qi, tj]
                    if metric == 0:
                        score = max(qn[q0 + qi] + kn[t] - 2.0 * dot, 0.0)
                    elif metric == 1:
                        score = -dot
                    else:
                        score = -dot / (math.sqrt(qn[q0 + qi]) * math.sqrt(kn[t]))
                    if sort_rows:
                        rowbuf[qi, t] = score
                    elif counts[qi] < k or _better(score, t, vals[qi, k - 1], idxs[qi, k - 1]):
                        # Test against the k-th first: most candidates stop here, and the
                        # row views passed to _topk_push cost reference counting.
                        counts[qi] = _topk_push(vals[qi], idxs[qi], counts[qi], k, score, t)
        for qi in range(nq):
            if sort_rows:
                order = np.argsort(rowbuf[qi], kind="mergesort")
                for j in range(k):
                    idxs[qi, j] = order[j]
                    vals[qi, j] = rowbuf[qi, order[j]]
            for j in range(k):
                v = vals[qi, j]
                out_vals[q0 + qi, j] = v if metric == 0 else -v
                out_idx[q0 + qi, j] = idxs[qi, j]


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
