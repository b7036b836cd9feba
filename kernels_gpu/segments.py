"""Flat and segmented kernels: histogram, segment_reduce, ewma, minhash.

Segments are CSR ``offsets``: segment i is ``values[offsets[i]:offsets[i+1]]``, so n
segments need n + 1 offsets; empty segments are allowed. Host offsets are checked
(1-D integers, non-decreasing, within the data) and bad ones refused; offsets already
on the GPU are not copied back to be checked: the kernels clamp them, so a bad one
gives an empty segment, never an out-of-bounds read. Input kinds, streams and results
follow the rules in :mod:`kernels_gpu.rows`.
"""

from __future__ import annotations

import builtins
import os
from typing import Any

import numpy as np

from aiinfra_magics.errors import field_error

from . import _checks as ck
from . import _cpu_segments
from ._dispatch import from_host

OPS = ("sum", "mean", "min", "max")
# Host min/max below this many values run on the calling thread: a thread hand-off
# costs more than it saves there.
PARALLEL_MIN = 1 << 18
_POOL: Any = None
# Read once: os.cpu_count() took ~9 us a call here, half a small histogram's host path.
_CPUS = os.cpu_count() or 1


def histogram(
    x: Any, bins: int = 10, range: tuple[float, float] | None = None, weights: Any = None,
    *, stream: Any = None,
) -> tuple[Any, Any]:  # fmt: skip
    """``np.histogram`` with ``bins`` equal bins: returns ``(counts, edges)``.

    Bin rule, edges and right-inclusive last bin are NumPy's. Differences: NaN values
    are dropped (NumPy raises on them when the range is automatic) and the arithmetic is
    float64 whatever the input dtype. Counts are int64, or float64 sums of ``weights``.
    ``range=None`` takes the finite min/max (one more pass, and on the GPU a sync);
    an infinite min or max then needs an explicit range. ``x``: any real dtype and shape
    (flattened); ``weights``: same shape (float64 on the GPU); ``bins >= 1``.

    GPU: each block counts into shared-memory bins (int32 atomics; float64 for weights)
    for up to 2048 bins and merges once with global atomics; more bins go straight to
    global atomics. CPU: per-thread private bins, then one merge. O(n + bins·blocks).
    """
    dev, xa = ck.split(x, "x", stream)
    nb = ck.integer(bins, "bins", 1)
    wa = ck.side(dev, weights, "weights")
    if wa is not None and tuple(wa.shape) != tuple(xa.shape):
        raise field_error("weights", f"shape {tuple(wa.shape)}", f"shape {tuple(xa.shape)} as x")
    if dev is None:
        xf = np.ascontiguousarray(xa).ravel()
        if xf.dtype.kind not in "biuf":
            raise field_error("x", str(xf.dtype), "real numbers")
        wf = np.empty(0) if wa is None else np.ascontiguousarray(wa, dtype=np.float64).ravel()
        lo, hi = _range(range, lambda: _cpu_segments.minmax(xf) if xf.size else (np.inf, -np.inf))
        edges = np.linspace(lo, hi, nb + 1)
        counts = np.zeros(nb, np.float64 if wa is not None else np.int64)
        if xf.size:
            nchunks = builtins.min(xf.size, 4 * _CPUS)
            _cpu_segments.histogram(xf, wf, edges, lo, hi, nchunks, counts)
        return from_host(counts, x), from_host(edges, x)
    from . import _cuda_segments as cs

    xf = _flat_device(xa, "x")
    if np.dtype(xf.dtype).kind not in "biuf":
        raise field_error("x", str(xf.dtype), "real numbers")
    wf = None if wa is None else _flat_device(wa, "weights")
    if wf is not None and np.dtype(wf.dtype) != np.float64:
        raise field_error("weights", str(wf.dtype), "float64 on the GPU")

    def gpu_minmax() -> tuple[float, float]:
        if xf.shape[0] == 0:
            return np.inf, -np.inf
        mm = dev.cuda.to_device(np.array([np.inf, -np.inf]), stream=dev.stream)
        dev.launch(cs.minmax_kernel, cs.grid_for(xf.shape[0]), cs.TPB, xf, mm)
        got = mm.copy_to_host(stream=dev.stream)
        dev.stream.synchronize()
        return float(got[0]), float(got[1])

    lo, hi = _range(range, gpu_minmax)
    # The edges go straight into the returned array, which the kernel then reads.
    eobj, edges = dev.empty((nb + 1,), np.float64)
    edges.copy_to_device(np.linspace(lo, hi, nb + 1), stream=dev.stream)
    cobj, cv = dev.empty((nb,), np.float64 if wf is not None else np.int64)
    dev.launch(cs.zero_kernel, cs.grid_for(nb), cs.TPB, cv)
    if xf.shape[0]:
        kern = cs.histogram_kernel(wf is not None, nb <= cs.SHARED_BINS)
        wv = wf if wf is not None else edges  # placeholder the kernel never reads
        grid = builtins.min(cs.grid_for(xf.shape[0], cap=1 << 30), cs.resident_blocks())
        dev.launch(kern, grid, cs.TPB, xf, wv, edges, lo, hi, cv)
    return dev.wrap(cobj), dev.wrap(eobj)


def _range(rng: Any, auto: Any) -> tuple[float, float]:
    if rng is None:
        lo, hi = auto()
        if lo > hi:  # empty or all NaN: NumPy's default
            lo, hi = 0.0, 1.0
        elif not (np.isfinite(lo) and np.isfinite(hi)):
            raise field_error("range", f"auto [{lo}, {hi}]", "a finite (min, max); pass one")
    else:
        try:
            lo, hi = (float(v) for v in rng)
        except (TypeError, ValueError):
            raise field_error("range", rng, "None or (min, max) numbers") from None
        if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
            raise field_error("range", rng, "finite (min, max) with min <= max")
    if lo == hi:  # NumPy widens a zero-width range
        lo, hi = lo - 0.5, hi + 0.5
    return float(lo), float(hi)


def _flat_device(av: Any, field: str) -> Any:
    if av.ndim == 1:
        return av
    if not ck._contiguous(av):
        raise field_error(field, "a strided N-d GPU array", "1-D or C-contiguous")
    return av.reshape(int(np.prod(av.shape)))


def segment_reduce(values: Any, offsets: Any, op: str = "sum", *, stream: Any = None) -> Any:
    """Reduce each CSR segment of the 1-D ``values``: ``op`` in sum, mean, min, max.

    Output: one value per segment, float32/float64 as the input, float64 for integer
    input. Accumulation is float64. Empty segments give 0 (sum) or NaN (mean, min, max);
    NaN inside a segment propagates. GPU: one block per segment, shared-memory tree;
    CPU: sum/mean one thread per segment, min/max of floats integer max/min of
    order-preserving keys per segment, of integers NumPy's ``reduceat`` over contiguous
    chunks of segments on a thread pool (see ``_minmax_host``). O(n + segments).
    """
    dev, va = ck.split(values, "values", stream)
    ck.one_dim(va, "values")
    code = ck.choice(op, "op", OPS)
    dt = ck.real_dtype(va, "values", gpu=False)  # GPU kernels read any real dtype
    if dev is None:
        v = np.ascontiguousarray(va)
        o = ck.offsets_host(ck.to_host(offsets, "offsets"), v.shape[0])
        out = np.empty(o.size - 1, dt)
        if out.size:
            if code >= 2:
                _minmax_host(v, o, code, out)
            else:
                _cpu_segments.segment_reduce(v, o, code, out)
        return from_host(out, values)
    from . import _cuda_segments as cs

    ov = ck.offsets_device(dev, offsets, va.shape[0])
    obj, outv = dev.empty((ov.shape[0] - 1,), dt)
    if ov.shape[0] > 1:
        nseg = ov.shape[0] - 1
        tpb = cs.threads_for(va.shape[0] // nseg)  # about a quarter of a mean segment
        dev.launch(cs.segment_reduce_kernel, builtins.min(nseg, 65535), tpb, va, ov, code, outv)
    return dev.wrap(obj)


def _minmax_host(v: np.ndarray, o: np.ndarray, code: int, out: np.ndarray) -> None:
    """min/max per segment: float input by ``_cpu_segments.segment_minmax`` (float32 max:
    2.1x ``reduceat`` on one thread, 4.4x on two, cpu-2c 2026-12-02), integers by NumPy's
    SIMD ``reduceat`` over chunks of whole segments, as follows.

    The earlier numba twin (``np.max`` of each segment in a prange) was 0.56x
    ``reduceat`` on one thread and slower again on two: the per-segment NaN-checking max does not vectorise,
    and prange gives each thread one equal share, so on a loaded machine the region
    waits for the descheduled thread. Here ``reduceat`` (NaN-propagating, releases the
    GIL) runs on contiguous chunks of segments of about equal value counts, four per
    thread, handed out by a pool so a stalled thread's share is picked up by the other;
    under ``PARALLEL_MIN`` values it runs serially.
    """
    import numba

    if v.dtype in (np.float32, np.float64) and out.dtype == v.dtype:
        # Float input: the numba twin (float32: explicit SIMD loops; float64: integer
        # max/min of order-preserving keys) beats reduceat on one thread too.
        _cpu_segments.segment_minmax(v, o, code == 3, out)
        return
    nseg = o.size - 1
    threads = numba.get_num_threads()
    serial = threads < 2 or int(o[-1] - o[0]) < PARALLEL_MIN
    ufunc = np.minimum if code == 2 else np.maximum
    if serial:
        _reduceat_chunk(ufunc, v, o, out, 0, nseg)
        return
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(_CPUS, thread_name_prefix="kernels_gpu")
    targets = np.linspace(o[0], o[-1], 4 * threads + 1)
    bounds = np.unique(np.clip(np.searchsorted(o, targets), 0, nseg))
    bounds[0], bounds[-1] = 0, nseg
    jobs = [
        _POOL.submit(_reduceat_chunk, ufunc, v, o, out, int(a), int(b))
        for a, b in zip(bounds[:-1], bounds[1:])
        if b > a
    ]
    for job in jobs:
        job.result()


def _reduceat_chunk(ufunc: Any, v: np.ndarray, o: np.ndarray, out: np.ndarray, s0: int, s1: int) -> None:  # fmt: skip
    """Segments s0..s1: empty ones NaN, the rest by one ``reduceat`` (a segment ends where
    the next non-empty one starts, since only empty segments lie between them)."""
    oo = o[s0 : s1 + 1]
    full = oo[1:] > oo[:-1]
    res = out[s0:s1]
    starts = oo[:-1][full]
    if starts.size == res.size:
        res[...] = ufunc.reduceat(v[: oo[-1]], starts)
        return
    res[...] = np.nan
    if starts.size:
        res[full] = ufunc.reduceat(v[: oo[-1]], starts)


def ewma(values: Any, offsets: Any, alpha: float, *, stream: Any = None) -> Any:
    """Exponentially weighted moving average restarting at every segment.

    ``y[first] = x[first]``, then ``y[i] = (1 - alpha) * y[i-1] + alpha * x[i]`` (pandas
    ``ewm(alpha=alpha, adjust=False, ignore_na=True).mean()`` per group). NaN inputs
    leave the state alone and repeat the last mean (NaN before the first number).
    ``0 < alpha <= 1``. State is float64; output float32/float64 as the input, float64
    for integers. One thread per segment on either side: the scan is sequential.
    """
    dev, va = ck.split(values, "values", stream)
    ck.one_dim(va, "values")
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise field_error("alpha", alpha, "a number with 0 < alpha <= 1") from None
    if not (0.0 < a <= 1.0):
        raise field_error("alpha", alpha, "a number with 0 < alpha <= 1")
    dt = ck.real_dtype(va, "values", gpu=False)
    if dev is None:
        v = np.ascontiguousarray(va)
        o = ck.offsets_host(ck.to_host(offsets, "offsets"), v.shape[0])
        # Checked offsets are non-decreasing, so the segments cover o[0]:o[-1] exactly;
        # only the positions outside them are set to NaN (no fill pass over the rest).
        out = np.empty(v.shape[0], dt)
        lo, hi = int(o[0]), int(o[-1])
        out[:lo] = np.nan
        out[hi:] = np.nan
        if o.size > 1:
            _cpu_segments.ewma(v, o, a, out)
        return from_host(out, values)
    from . import _cuda_segments as cs

    ov = ck.offsets_device(dev, offsets, va.shape[0])
    obj, outv = dev.empty((va.shape[0],), dt)
    if va.shape[0]:
        dev.launch(cs.fill_nan_kernel, cs.grid_for(va.shape[0]), cs.TPB, outv)
    if ov.shape[0] > 1:
        dev.launch(cs.ewma_kernel, cs.grid_for(ov.shape[0] - 1, 128), 128, va, ov, a, outv)
    return dev.wrap(obj)


def minhash_params(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) of each permutation's multiply-shift hash; a is odd."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2**64, num_perm, dtype=np.uint64, endpoint=False) | np.uint64(1)
    b = rng.integers(0, 2**64, num_perm, dtype=np.uint64, endpoint=False)
    return a, b


def minhash(
    token_ids: Any, offsets: Any, num_perm: int = 128, seed: int = 0, *, stream: Any = None
) -> Any:
    """MinHash signatures, one row of ``num_perm`` uint32 per document (CSR segment).

    Each token id (any integer dtype, taken as its 64-bit two's complement) is mixed
    with MurmurHash3's fmix64, then permutation p hashes it as the high 32 bits of
    ``a_p * h + b_p mod 2**64`` with (a_p, b_p) drawn from ``seed``. Identical on CPU
    and GPU for a seed. The share of equal entries between two rows estimates the
    Jaccard similarity of the two token sets. Empty documents give all 0xFFFFFFFF.
    GPU: a block per (document, 256 permutations), token hashes staged in shared memory.
    O(tokens · num_perm).
    """
    dev, ta = ck.split(token_ids, "token_ids", stream)
    ck.one_dim(ta, "token_ids")
    if np.dtype(ta.dtype).kind not in "iu":
        raise field_error("token_ids", str(ta.dtype), "an integer dtype")
    npm = ck.integer(num_perm, "num_perm", 1, 1 << 16)
    sd = ck.integer(seed, "seed", 0)
    a, b = minhash_params(npm, sd)
    if dev is None:
        t = np.ascontiguousarray(ta)
        o = ck.offsets_host(ck.to_host(offsets, "offsets"), t.shape[0])
        out = np.empty((o.size - 1, npm), np.uint32)
        if out.shape[0]:
            _cpu_segments.minhash(t, o, a, b, out)
        return from_host(out, token_ids)
    from . import _cuda_segments as cs

    ov = ck.offsets_device(dev, offsets, ta.shape[0])
    ndocs = ov.shape[0] - 1
    obj, outv = dev.empty((ndocs, npm), np.uint32)
    if ndocs:
        tpb = builtins.min(cs.TPB, 32 * ((npm + 31) // 32))
        grid = (builtins.min(ndocs, 65535), (npm + tpb - 1) // tpb)
        av, bv = dev.view(a, "a"), dev.view(b, "b")
        dev.launch(cs.minhash_kernel, grid, tpb, ta, ov, av, bv, outv)
    return dev.wrap(obj)
