"""CUDA kernels for pairwise_topk: fused distances and top-k, no (m, n) matrix.

Each thread scans a strided share of the keys and keeps, per query, a sorted k-list in
local memory (most candidates fail one comparison against the k-th); the block then
takes k rounds of "best head among the threads" through a shared-memory tree. Two
layouts: one query per block, or QB queries per block so every key row read from
memory serves QB queries (less key traffic, more registers). Ties go to the lower key
index and NaN ranks last, as on the CPU (``_math.better``).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from . import _math
from ._cuda_rows import MAX_TPB
from ._dispatch import numba_cuda

cuda = numba_cuda()

TOPK_MAX_K = 64  # per-thread k-lists live in local memory of this size
TOPK_MAX_D = 2048  # the query vector is held in shared memory
QB = 8  # queries per block in the multi-query layout (the kernel spells out 8)
MULTI_MAX_K = 32
MULTI_MAX_D = 256
MULTI = True  # use the multi-query layout when k and d allow it
WARP = True  # the warp-per-key layout (_cuda_topk_warp) when k and d allow

_dev = cuda.jit(device=True)
_better = _dev(_math.better)
_topk_push = _dev(_math.make_topk_push(_better))


def use_multi(k: int, d: int) -> bool:
    return MULTI and k <= MULTI_MAX_K and d <= MULTI_MAX_D


def use_warp(k: int, d: int) -> bool:
    return WARP and k <= MULTI_MAX_K and d <= MULTI_MAX_D


@functools.cache
def topk_kernel(dtype: np.dtype, metric: int):
    """One block per query. metric: 0 l2 (squared), 1 ip, 2 cosine."""
    ft = np.dtype(dtype).type
    zero = ft(0)

    @cuda.jit
    def kernel(queries, keys, k, out_vals, out_idx):
        sm_q = cuda.shared.array(TOPK_MAX_D, ft)
        sm_v = cuda.shared.array(MAX_TPB, ft)
        sm_i = cuda.shared.array(MAX_TPB, np.int64)
        sm_t = cuda.shared.array(MAX_TPB, np.int32)
        vals = cuda.local.array(TOPK_MAX_K, ft)
        idxs = cuda.local.array(TOPK_MAX_K, np.int64)
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        m, d = queries.shape
        n = keys.shape[0]
        for q in range(cuda.blockIdx.x, m, cuda.gridDim.x):
            for c in range(tid, d, nt):
                sm_q[c] = queries[q, c]
            cuda.syncthreads()
            qq = zero
            for c in range(d):
                qq += sm_q[c] * sm_q[c]
            count = 0
            for t in range(tid, n, nt):
                acc = zero
                kk = zero
                for c in range(d):
                    kv = keys[t, c]
                    if metric == 0:
                        diff = sm_q[c] - kv
                        acc += diff * diff
                    else:
                        acc += sm_q[c] * kv
                        kk += kv * kv
                if metric == 1:
                    acc = -acc
                elif metric == 2:
                    acc = -acc / (math.sqrt(qq) * math.sqrt(kk))
                count = _topk_push(vals, idxs, count, k, acc, t)
            head = 0
            for r in range(k):
                if head < count:
                    sm_v[tid] = vals[head]
                    sm_i[tid] = idxs[head]
                else:
                    sm_i[tid] = -1  # this thread has nothing left to offer
                sm_t[tid] = tid
                cuda.syncthreads()
                step = nt // 2
                while step > 0:
                    if tid < step:
                        o = tid + step
                        take = sm_i[o] >= 0 and (
                            sm_i[tid] < 0 or _better(sm_v[o], sm_i[o], sm_v[tid], sm_i[tid])
                        )
                        if take:
                            sm_v[tid] = sm_v[o]
                            sm_i[tid] = sm_i[o]
                            sm_t[tid] = sm_t[o]
                    cuda.syncthreads()
                    step //= 2
                if tid == 0:
                    v = sm_v[0]
                    out_vals[q, r] = v if metric == 0 else -v
                    out_idx[q, r] = sm_i[0]
                if sm_t[0] == tid:
                    head += 1
                cuda.syncthreads()

    return kernel


@functools.cache
def topk_multi_kernel(dtype: np.dtype, metric: int):
    """QB queries per block: one read of each key row serves all of them."""
    ft = np.dtype(dtype).type
    zero = ft(0)

    @cuda.jit
    def kernel(queries, keys, k, out_vals, out_idx):
        sm_q = cuda.shared.array((QB, MULTI_MAX_D), ft)
        sm_qq = cuda.shared.array(QB, ft)
        sm_v = cuda.shared.array(MAX_TPB, ft)
        sm_i = cuda.shared.array(MAX_TPB, np.int64)
        sm_t = cuda.shared.array(MAX_TPB, np.int32)
        vals = cuda.local.array((QB, MULTI_MAX_K), ft)
        idxs = cuda.local.array((QB, MULTI_MAX_K), np.int64)
        counts = cuda.local.array(QB, np.int64)
        acc = cuda.local.array(QB, ft)
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        m, d = queries.shape
        n = keys.shape[0]
        for q0 in range(cuda.blockIdx.x * QB, m, cuda.gridDim.x * QB):
            nq = min(QB, m - q0)
            for j in range(tid, QB * d, nt):
                qi = j // d
                c = j - qi * d
                sm_q[qi, c] = queries[q0 + qi, c] if qi < nq else zero
            cuda.syncthreads()
            if tid < QB:
                s = zero
                for c in range(d):
                    s += sm_q[tid, c] * sm_q[tid, c]
                sm_qq[tid] = s
            cuda.syncthreads()
            for qi in range(QB):
                counts[qi] = 0
            for t in range(tid, n, nt):
                # Eight named accumulators stay in registers; an indexed local array
                # would put every multiply-add through local memory.
                a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = zero
                kk = zero
                for c in range(d):
                    kv = keys[t, c]
                    if metric == 0:
                        e0, e1 = sm_q[0, c] - kv, sm_q[1, c] - kv
                        e2, e3 = sm_q[2, c] - kv, sm_q[3, c] - kv
                        e4, e5 = sm_q[4, c] - kv, sm_q[5, c] - kv
                        e6, e7 = sm_q[6, c] - kv, sm_q[7, c] - kv
                        a0, a1, a2, a3 = a0 + e0 * e0, a1 + e1 * e1, a2 + e2 * e2, a3 + e3 * e3
                        a4, a5, a6, a7 = a4 + e4 * e4, a5 + e5 * e5, a6 + e6 * e6, a7 + e7 * e7
                    else:
                        kk += kv * kv
                        a0, a1 = a0 + sm_q[0, c] * kv, a1 + sm_q[1, c] * kv
                        a2, a3 = a2 + sm_q[2, c] * kv, a3 + sm_q[3, c] * kv
                        a4, a5 = a4 + sm_q[4, c] * kv, a5 + sm_q[5, c] * kv
                        a6, a7 = a6 + sm_q[6, c] * kv, a7 + sm_q[7, c] * kv
                acc[0], acc[1], acc[2], acc[3] = a0, a1, a2, a3
                acc[4], acc[5], acc[6], acc[7] = a4, a5, a6, a7
                for qi in range(nq):
                    sc = acc[qi]
                    if metric == 1:
                        sc = -sc
                    elif metric == 2:
                        sc = -sc / (math.sqrt(sm_qq[qi]) * math.sqrt(kk))
                    counts[qi] = _topk_push(vals[qi], idxs[qi], counts[qi], k, sc, t)
            for qi in range(nq):
                head = 0
                for r in range(k):
                    if head < counts[qi]:
                        sm_v[tid] = vals[qi, head]
                        sm_i[tid] = idxs[qi, head]
                    else:
                        sm_i[tid] = -1
                    sm_t[tid] = tid
                    cuda.syncthreads()
                    step = nt // 2
                    while step > 0:
                        if tid < step:
                            o = tid + step
                            take = sm_i[o] >= 0 and (
                                sm_i[tid] < 0 or _better(sm_v[o], sm_i[o], sm_v[tid], sm_i[tid])
                            )
                            if take:
                                sm_v[tid] = sm_v[o]
                                sm_i[tid] = sm_i[o]
                                sm_t[tid] = sm_t[o]
                        cuda.syncthreads()
                        step //= 2
                    if tid == 0:
                        v = sm_v[0]
                        out_vals[q0 + qi, r] = v if metric == 0 else -v
                        out_idx[q0 + qi, r] = sm_i[0]
                    if sm_t[0] == tid:
                        head += 1
                    cuda.syncthreads()

    return kernel
