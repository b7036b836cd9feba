"""CUDA kernels over flat data and CSR segments: histogram, minmax, segment_reduce,
ewma, minhash.

Imported only when a GPU array arrives (see ``_cuda_rows``). Segments are given by
offsets that may sit on the device; they are clamped to the data inside the kernel
(an out-of-order or out-of-range offset gives an empty segment, never a stray read),
because checking them on the host would cost a copy and a sync.
"""

from __future__ import annotations

import functools

import numpy as np

from . import _math
from ._dispatch import numba_cuda

cuda = numba_cuda()

TPB = 256
SHARED_BINS = 2048  # bins privatised per block; more bins go straight to global atomics
MINHASH_CHUNK = 256  # token hashes staged in shared memory per round

_dev = cuda.jit(device=True)
_bin_guess = _dev(_math.bin_guess)
_bin_fix = _dev(_math.bin_fix)
_fmix64 = _dev(_math.fmix64)
_perm_hash = _dev(_math.perm_hash)


def threads_for(length: int) -> int:
    """A power of two from 32 to TPB, about a quarter of ``length``."""
    t = 32
    while t < TPB and t * 4 < length:
        t *= 2
    return t


def grid_for(n: int, per_block: int = TPB, cap: int = 4096) -> int:
    return max(1, min(cap, (n + per_block - 1) // per_block))


@functools.cache
def histogram_kernel(weighted: bool, shared: bool):
    """Grid-stride over x, four elements per thread per round (four independent loads in
    flight before the first is used); each block counts into shared-memory bins, then
    one atomic add per non-empty bin merges it into the global result."""
    acc_t = np.float64 if weighted else np.int32  # int32 shared atomics are the fast ones
    out_t = np.float64 if weighted else np.int64
    one = acc_t(1)
    nan = np.float64(np.nan)

    @cuda.jit(device=True)
    def count(v, j, weights, edges, lo, hi, norm, nbins, sm, out):
        b = _bin_guess(v, lo, hi, norm, nbins)
        if b >= 0:
            b = _bin_fix(v, b, nbins, edges[b], edges[b + 1])
        if b >= 0:  # one call per case, so no branch mixes the value types
            if weighted:
                if shared:
                    cuda.atomic.add(sm, b, weights[j])
                else:
                    cuda.atomic.add(out, b, weights[j])
            elif shared:
                cuda.atomic.add(sm, b, one)
            else:
                cuda.atomic.add(out, b, out_t(1))

    @cuda.jit
    def kernel(x, weights, edges, lo, hi, out):
        sm = cuda.shared.array(SHARED_BINS, acc_t)
        nbins = out.size
        norm = nbins / (hi - lo)
        tid = cuda.threadIdx.x
        if shared:
            for b in range(tid, nbins, cuda.blockDim.x):
                sm[b] = 0
            cuda.syncthreads()
        n = x.size
        stride = cuda.gridsize(1)
        for j0 in range(cuda.grid(1), n, 4 * stride):
            j1 = j0 + stride
            j2 = j1 + stride
            j3 = j2 + stride
            v0 = np.float64(x[j0])
            v1 = np.float64(x[j1]) if j1 < n else nan  # NaN is dropped by the bin rule
            v2 = np.float64(x[j2]) if j2 < n else nan
            v3 = np.float64(x[j3]) if j3 < n else nan
            count(v0, j0, weights, edges, lo, hi, norm, nbins, sm, out)
            count(v1, j1, weights, edges, lo, hi, norm, nbins, sm, out)
            count(v2, j2, weights, edges, lo, hi, norm, nbins, sm, out)
            count(v3, j3, weights, edges, lo, hi, norm, nbins, sm, out)
        if shared:
            cuda.syncthreads()
            for b in range(tid, nbins, cuda.blockDim.x):
                if sm[b] != 0:
                    cuda.atomic.add(out, b, out_t(sm[b]))

    return kernel


@functools.cache
def resident_blocks(tpb: int = TPB) -> int:
    """Blocks of ``tpb`` threads the whole device holds at once: a grid of this size
    keeps every multiprocessor busy while each block merges its private bins once."""
    try:
        sms = int(cuda.get_current_device().MULTIPROCESSOR_COUNT)
    except Exception:  # the simulator's device has no such attribute
        sms = 1
    return max(1, sms * (2048 // tpb))


@cuda.jit
def zero_kernel(out):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = 0


@cuda.jit
def fill_nan_kernel(out):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = np.nan


@cuda.jit
def minmax_kernel(x, out):
    """out[0] = min, out[1] = max over x ignoring NaN (out starts at +inf, -inf)."""
    lo_s = cuda.shared.array(TPB, np.float64)
    hi_s = cuda.shared.array(TPB, np.float64)
    tid = cuda.threadIdx.x
    lo = np.inf
    hi = -np.inf
    for j in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        v = np.float64(x[j])
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    lo_s[tid] = lo
    hi_s[tid] = hi
    cuda.syncthreads()
    step = cuda.blockDim.x // 2
    while step > 0:
        if tid < step:
            lo_s[tid] = min(lo_s[tid], lo_s[tid + step])
            hi_s[tid] = max(hi_s[tid], hi_s[tid + step])
        cuda.syncthreads()
        step //= 2
    if tid == 0:
        cuda.atomic.min(out, 0, lo_s[0])
        cuda.atomic.max(out, 1, hi_s[0])


@cuda.jit
def segment_reduce_kernel(values, offsets, op, out):
    """One block per segment (grid-stride); float64 partials; op as in ``_cpu_segments``."""
    sm = cuda.shared.array(TPB, np.float64)
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    n = values.size
    for s in range(cuda.blockIdx.x, offsets.size - 1, cuda.gridDim.x):
        a = min(max(offsets[s], 0), n)
        b = min(max(offsets[s + 1], a), n)
        if op <= 1:
            acc = 0.0
            for j in range(a + tid, b, nt):
                acc += values[j]
        else:
            acc = np.inf if op == 2 else -np.inf
            for j in range(a + tid, b, nt):
                v = np.float64(values[j])
                if acc == acc and (v != v or (op == 2 and v < acc) or (op == 3 and v > acc)):
                    acc = v
        sm[tid] = acc
        cuda.syncthreads()
        step = nt // 2
        while step > 0:
            if tid < step:
                u = sm[tid]
                v = sm[tid + step]
                if op <= 1:
                    sm[tid] = u + v
                elif u == u and (v != v or (op == 2 and v < u) or (op == 3 and v > u)):
                    sm[tid] = v
            cuda.syncthreads()
            step //= 2
        if tid == 0:
            r = sm[0]
            if op == 1:
                r = r / (b - a) if b > a else np.nan
            elif op >= 2 and b == a:
                r = np.nan
            out[s] = r
        cuda.syncthreads()


@cuda.jit
def ewma_kernel(values, offsets, alpha, out):
    """One thread per segment: the scan is sequential by nature."""
    n = values.size
    beta = 1.0 - alpha
    for s in range(cuda.grid(1), offsets.size - 1, cuda.gridsize(1)):
        a = min(max(offsets[s], 0), n)
        b = min(max(offsets[s + 1], a), n)
        m = np.nan
        for j in range(a, b):
            v = np.float64(values[j])
            if v == v:
                m = v if m != m else beta * m + alpha * v
            out[j] = m


@cuda.jit
def minhash_kernel(tokens, offsets, a, b, out):
    """Block (doc, perm chunk): threads stage fmix64(token) in shared memory, then each
    thread folds the staged hashes into its own permutation's minimum."""
    sm = cuda.shared.array(MINHASH_CHUNK, np.uint64)
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    p = cuda.blockIdx.y * nt + tid
    nperm = a.size
    n = tokens.size
    ap = a[p] if p < nperm else np.uint64(0)
    bp = b[p] if p < nperm else np.uint64(0)
    for doc in range(cuda.blockIdx.x, offsets.size - 1, cuda.gridDim.x):
        lo = min(max(offsets[doc], 0), n)
        hi = min(max(offsets[doc + 1], lo), n)
        best = np.uint32(0xFFFFFFFF)
        for c0 in range(lo, hi, MINHASH_CHUNK):
            c1 = min(hi, c0 + MINHASH_CHUNK)
            for j in range(c0 + tid, c1, nt):
                sm[j - c0] = _fmix64(np.uint64(tokens[j]))
            cuda.syncthreads()
            for j in range(c1 - c0):
                h = _perm_hash(sm[j], ap, bp)
                if h < best:
                    best = h
            cuda.syncthreads()
        if p < nperm:
            out[doc, p] = best
