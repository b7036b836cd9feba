"""CPU twins of the row kernels (softmax, logsumexp, layer_norm) and pairwise top-k.

``numba.njit(parallel=True, cache=True)``: ``cache=True`` writes the machine code next to
this file (or to NUMBA_CACHE_DIR), so a second process, a Dask worker for instance, loads
it instead of compiling again. The callers in ``rows.py`` have already validated and
normalised the inputs: arrays are C-contiguous, floats are float32/float64.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from . import _cpu_simd, _cpu_threads, _math
from ._cpu_bits import _FM, _elem, _exp_neg, _key_extremes, _log_pos, _prefetch

_jit = njit(inline="always", cache=True)
_better = _jit(_math.better)
_topk_push = _jit(_math.make_topk_push(_better))

# Above this k the twin sorts each query's distance row instead of insertion into a
# k-list, whose cost grows as k * (number of insertions).
_TOPK_SORT_ABOVE = 128
# Queries x keys per tile: small enough to stay in L2, large enough for BLAS to be fast.
_TILE_Q = 64
_TILE_K = 2048


@njit(inline="always", cache=True)
def _row_max(x, r):
    """(max, saw_nan) of one row, by ``_key_extremes`` (integer keys: they vectorise; a
    float max with NaN rules was the slowest pass of softmax)."""
    if x.shape[1] == 0:
        return -np.inf, False
    hi, _, bad = _key_extremes(x[r])
    return hi, bad


# Row kernels run their prange over at most this many contiguous blocks of rows: many
# per thread (a stalled thread's share is small), each many rows long. One prange
# iteration per row cost about 10% of softmax's time on one thread. (A count from
# numba.get_num_threads() inside the kernel would stop numba from caching it.)
_ROW_BLOCKS = 256


# A row's fixed cost (its max, sum and log, or its scaling), in values, for
# ``_cpu_threads.serial``: softmax on 64x32 took as long as on 16x256, logsumexp and
# layer_norm about half that (benchmarks/serial_crossover.py).
_SOFTMAX_ROW = 128
_ROW = 64


def _serial(x, row_work: int = _ROW) -> bool:
    """Whether rows of ``x`` go to the serial twin: on one numba thread (a parallel region
    there cost logsumexp 8192x1024 float32 0.08-0.17 ms of 1.7-1.85) or for small work."""
    return _cpu_threads.serial(x.size + row_work * x.shape[0])


# The exp terms of softmax/logsumexp are summed in the input precision over blocks of this
# many values (LLVM keeps 64 float32 partial sums per block, 4 terms each, then a tree),
# and the block sums in float64. A float64 sum of every term widens each float32 term
# (half the SIMD lanes, two extra operations per 16 values); the exp pass was 1.5x slower.
# Blocks keep the float32 rounding per term short whatever the row length: the row sums
# stay within a few 1e-8 relative of the float64 sums.
_SUM_BLOCK = 256

# Bytes per cache line: the stride of logsumexp's prefetch (see ``_prefetch``).
_LINE = 64
# logsumexp prefetches the row this many rows ahead during its exp pass: one row ahead
# still left the max pass waiting; 2 and 3 measured alike. softmax does not prefetch:
# with its output row in the cache as well, prefetching made it slower (3.9 vs 3.2 ms).
_PREFETCH_ROWS = 2


# Rows whose values all lie within this of their max need no clamp at the exp floor (-87).
_NEAR = np.float32(-86.0)


def _simd_rows(x) -> bool:
    """Whether an array takes the float32 SIMD loops of ``_cpu_simd`` (typing time)."""
    return x.dtype == types.float32 and x.layout == "C"


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


@njit(inline="always", cache=True, fastmath=_FM)
def _softmax_rows_simd(x, r0, r1, out):
    """float32 rows r0..r1-1: ``_cpu_simd``'s row pass and exp-and-store loop, then the
    scale pass; rows with no finite max (+inf; empty, -inf or NaN only) by the scalar
    row's rules."""
    for r in range(r0, r1):
        xr = x[r]
        orow = out[r]
        m, low = _cpu_simd.row_range(xr)
        if not abs(m) < np.inf:
            _softmax_row(x, r, out)
            continue
        # A NaN anywhere in the row makes s NaN, and with it the whole row.
        if low - m >= _NEAR:
            s = _cpu_simd.exp_store_near(xr, orow, m)
        else:
            s = _cpu_simd.exp_store(xr, orow, m)
        inv = np.float32(1.0 / s)
        for c in range(orow.size):
            orow[c] *= inv


@njit(inline="always", cache=True, fastmath=_FM)
def _softmax_rows_scalar(x, r0, r1, out):
    for r in range(r0, r1):
        _softmax_row(x, r, out)


def _softmax_rows(x, r0, r1, out):
    """Rows r0..r1-1 of softmax: the SIMD loops for float32, the scalar ones otherwise."""


@overload(_softmax_rows, inline="always")
def _softmax_rows_impl(x, r0, r1, out):
    if _simd_rows(x) and _simd_rows(out):
        return lambda x, r0, r1, out: _softmax_rows_simd(x, r0, r1, out)
    return lambda x, r0, r1, out: _softmax_rows_scalar(x, r0, r1, out)


@njit(parallel=True, cache=True, fastmath=_FM)
def _softmax_parallel(x, out):
    rows = x.shape[0]
    nb = _row_blocks(rows)
    for b in prange(nb):
        _softmax_rows(x, b * rows // nb, (b + 1) * rows // nb, out)


@njit(cache=True, fastmath=_FM)
def _softmax_serial(x, out):
    _softmax_rows(x, 0, x.shape[0], out)


def softmax(x: np.ndarray, out: np.ndarray) -> None:
    """Rows of a 2-D array. Max pass, then exp-and-sum pass, then scale pass.

    The row is read from memory once; the later passes hit the cache. On the CPU this
    beats the online max/sum of the GPU kernel, which pays two exp per element.
    A row with NaN or +inf, or with only -inf (0/0), becomes NaN.
    """
    (_softmax_serial if _serial(x, _SOFTMAX_ROW) else _softmax_parallel)(x, out)


@njit(inline="always", cache=True, fastmath=_FM)
def _logsumexp_row(x, r, out):
    """One row, in the loops LLVM vectorises: float64 rows (float32 ones take the SIMD
    loops of ``_logsumexp_rows_simd``)."""
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
        xn = x[min(r + _PREFETCH_ROWS, x.shape[0] - 1)]
        step = _LINE // x.itemsize
        s = 0.0
        for b in range(nb):
            xb = xr[b * _SUM_BLOCK : (b + 1) * _SUM_BLOCK]
            for c in range(b * _SUM_BLOCK, (b + 1) * _SUM_BLOCK, step):
                _prefetch(xn, c)
            t = _elem(x, 0.0)
            for c in range(_SUM_BLOCK):
                t += _exp_neg(xb[c] - mt)
            s += t
        for c in range(nb * _SUM_BLOCK, n, step):
            _prefetch(xn, c)
        for c in range(nb * _SUM_BLOCK, n):
            s += _exp_neg(xr[c] - mt)
        out[r] = m + math.log(s)


# Marks, in logsumexp's row sums, a float32 row with no finite max.
_NO_FINITE_MAX = -1.0


@njit(inline="always", cache=True, fastmath=_FM)
def _logsumexp_rows_simd(x, r0, r1, out, sums):
    """float32 rows r0..r1-1 by the explicit SIMD loops of ``_cpu_simd``, in three loops:
    max and exp sum per row (``out`` holds the max meanwhile), the logs (vectorised), then
    the rare rows with no finite max (+inf; or nothing above -inf: empty, -inf, NaN) by
    the keys' NaN rules. That last one inside the first loop cost 12% (0.20 vs 0.18 ns
    per value, measured): keep the first loop to the two SIMD calls."""
    last = x.shape[0] - 1
    for r in range(r0, r1):
        xr = x[r]
        m, low = _cpu_simd.row_range(xr)
        out[r] = m
        # A NaN anywhere in the row makes the sum NaN.
        ahead = x[min(r + _PREFETCH_ROWS, last)]
        if not abs(m) < np.inf:
            sums[r] = _NO_FINITE_MAX
        elif low - m >= _NEAR:
            sums[r] = _cpu_simd.exp_sum_near(xr, ahead, m)
        else:
            sums[r] = _cpu_simd.exp_sum(xr, ahead, m)
    for r in range(r0, r1):
        s = sums[r]
        out[r] = out[r] + _log_pos(1.0 if s == _NO_FINITE_MAX else s)
    for r in range(r0, r1):
        if sums[r] == _NO_FINITE_MAX:
            mk, bad = _row_max(x, r)
            out[r] = np.nan if bad else mk


@njit(inline="always", cache=True, fastmath=_FM)
def _logsumexp_rows_scalar(x, r0, r1, out, sums):
    for r in range(r0, r1):
        _logsumexp_row(x, r, out)


def _logsumexp_rows(x, r0, r1, out, sums):
    """Rows r0..r1-1 of logsumexp: the SIMD loops for float32, the scalar ones otherwise."""


def _logsumexp_sums(x):
    """The row sums buffer of ``_logsumexp_rows_simd`` (empty for the scalar loops)."""


@overload(_logsumexp_rows, inline="always")
def _logsumexp_rows_impl(x, r0, r1, out, sums):
    if _simd_rows(x):
        return lambda x, r0, r1, out, sums: _logsumexp_rows_simd(x, r0, r1, out, sums)
    return lambda x, r0, r1, out, sums: _logsumexp_rows_scalar(x, r0, r1, out, sums)


@overload(_logsumexp_sums, inline="always")
def _logsumexp_sums_impl(x):
    if _simd_rows(x):
        return lambda x: np.empty(x.shape[0])
    return lambda x: np.empty(0)


@njit(parallel=True, cache=True, fastmath=_FM)
def _logsumexp_parallel(x, out):
    rows = x.shape[0]
    nb = _row_blocks(rows)
    sums = _logsumexp_sums(x)
    for b in prange(nb):
        _logsumexp_rows(x, b * rows // nb, (b + 1) * rows // nb, out, sums)


@njit(cache=True, fastmath=_FM)
def _logsumexp_serial(x, out):
    _logsumexp_rows(x, 0, x.shape[0], out, _logsumexp_sums(x))


def logsumexp(x: np.ndarray, out: np.ndarray) -> None:
    """Rows of a 2-D array: NaN -> NaN, +inf -> +inf, only -inf or empty -> -inf."""
    (_logsumexp_serial if _serial(x) else _logsumexp_parallel)(x, out)


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
def _layer_norm_parallel(x, gamma, beta, eps, out):
    rows = x.shape[0]
    nb = _row_blocks(rows)
    for b in prange(nb):
        for r in range(b * rows // nb, (b + 1) * rows // nb):
            _layer_norm_row(x, r, gamma, beta, eps, out)


@njit(cache=True, fastmath=_FM)
def _layer_norm_serial(x, gamma, beta, eps, out):
    for r in range(x.shape[0]):
        _layer_norm_row(x, r, gamma, beta, eps, out)


def layer_norm(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float, out: np.ndarray
) -> None:
    """Rows of a 2-D array; biased variance; gamma/beta of size 0 mean 1 and 0.

    Mean then squared deviations over the cached row: the same statistics as Welford
    (both stable), but vectorisable on the CPU.
    """
    (_layer_norm_serial if _serial(x) else _layer_norm_parallel)(x, gamma, beta, eps, out)


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
