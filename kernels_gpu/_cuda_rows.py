"""CUDA kernels over rows: softmax, logsumexp, layer_norm (pairwise_topk: _cuda_topk).

Imported only when a GPU array arrives (or under NUMBA_ENABLE_CUDASIM=1 in tests), so
``import kernels_gpu`` never touches CUDA. One block owns one row (grid-stride over
rows); its threads stride the columns, so loads are coalesced, and combine their
partial states with a shared-memory tree. No warp shuffles: the CUDA simulator cannot
run them, and the tree is not the bottleneck for rows of a few hundred elements or more.
Kernels are built per dtype so float32 input runs float32 arithmetic.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from . import _math
from ._dispatch import numba_cuda

cuda = numba_cuda()

MAX_TPB = 256  # shared-memory arrays are sized for this many threads per block

_dev = cuda.jit(device=True)
_lse_merge = _dev(_math.lse_merge)
_welford_merge = _dev(_math.welford_merge)


def threads_for(cols: int) -> int:
    """A power of two between 32 and MAX_TPB, about a quarter of the row length."""
    t = 32
    while t < MAX_TPB and t * 4 < cols:
        t *= 2
    return t


def grid_for(rows: int) -> int:
    return max(1, min(rows, 65535))


@functools.cache
def softmax_kernel(dtype: np.dtype, log: bool):
    ft = np.dtype(dtype).type
    zero, one, nan, ninf = ft(0), ft(1), ft(np.nan), ft(-np.inf)

    @cuda.jit
    def kernel(x, out):
        sm_m = cuda.shared.array(MAX_TPB, ft)
        sm_s = cuda.shared.array(MAX_TPB, ft)
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        rows, cols = x.shape
        for r in range(cuda.blockIdx.x, rows, cuda.gridDim.x):
            m = ninf
            s = zero
            for c in range(tid, cols, nt):
                m, s = _lse_merge(m, s, x[r, c], one)
            sm_m[tid] = m
            sm_s[tid] = s
            cuda.syncthreads()
            step = nt // 2
            while step > 0:
                if tid < step:
                    m2, s2 = _lse_merge(sm_m[tid], sm_s[tid], sm_m[tid + step], sm_s[tid + step])
                    sm_m[tid] = m2
                    sm_s[tid] = s2
                cuda.syncthreads()
                step //= 2
            m = sm_m[0]
            s = sm_s[0]
            cuda.syncthreads()  # shared slots are reused by the next row
            if log:
                if tid == 0:
                    # s == 0 only for rows of -inf (or empty): the answer is m = -inf.
                    # (Branching also spares the simulator's math.log a domain error.)
                    out[r] = m + math.log(s) if s > zero else m
            else:
                bad = m != m or m == -ninf or m == ninf
                inv = one / s
                for c in range(tid, cols, nt):
                    out[r, c] = nan if bad else math.exp(x[r, c] - m) * inv

    return kernel


@functools.cache
def layer_norm_kernel(dtype: np.dtype):
    ft = np.dtype(dtype).type
    zero, one = ft(0), ft(1)

    @cuda.jit
    def kernel(x, gamma, beta, use_g, use_b, eps, out):
        sm_n = cuda.shared.array(MAX_TPB, ft)
        sm_mean = cuda.shared.array(MAX_TPB, ft)
        sm_m2 = cuda.shared.array(MAX_TPB, ft)
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        rows, cols = x.shape
        for r in range(cuda.blockIdx.x, rows, cuda.gridDim.x):
            n = zero
            mean = zero
            m2 = zero
            for c in range(tid, cols, nt):  # Welford, one element at a time
                v = x[r, c]
                n += one
                d = v - mean
                mean += d / n
                m2 += d * (v - mean)
            sm_n[tid] = n
            sm_mean[tid] = mean
            sm_m2[tid] = m2
            cuda.syncthreads()
            step = nt // 2
            while step > 0:
                if tid < step:
                    a, b, c2 = _welford_merge(
                        sm_n[tid], sm_mean[tid], sm_m2[tid],
                        sm_n[tid + step], sm_mean[tid + step], sm_m2[tid + step],
                    )  # fmt: skip
                    sm_n[tid] = a
                    sm_mean[tid] = b
                    sm_m2[tid] = c2
                cuda.syncthreads()
                step //= 2
            n = sm_n[0]
            mean = sm_mean[0]
            m2 = sm_m2[0]
            cuda.syncthreads()
            if n > zero:
                rstd = one / math.sqrt(m2 / n + eps)
                for c in range(tid, cols, nt):
                    y = (x[r, c] - mean) * rstd
                    if use_g:
                        y = y * gamma[c]
                    if use_b:
                        y = y + beta[c]
                    out[r, c] = y

    return kernel
