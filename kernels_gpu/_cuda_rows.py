"""CUDA kernels over rows: softmax, logsumexp, layer_norm (pairwise_topk: _cuda_topk).

Imported only when a GPU array arrives (or under NUMBA_ENABLE_CUDASIM=1 in tests), so
``import kernels_gpu`` never touches CUDA. One block owns one row (grid-stride over
rows); its threads stride the columns, so loads are coalesced. Kernels are built per
dtype so float32 input runs float32 arithmetic.

Rows of up to ``REG_MAX_K * 1024`` elements take the register kernels: each thread
loads its ``k`` elements of the row at once (``k`` and the block size are compile-time
constants, so the loads are independent and in flight together and the values stay in
registers), and the row is then reduced and written from registers: one read of the
row from memory. Registers are capped at 64 so two blocks share a multiprocessor.
Their block reductions use warp shuffles, on a GPU and under the simulator alike (which
gets them from ``_cuda_simwarp``), so the tests run the code the GPU runs. Longer rows
take the streaming kernels (online max/sum per thread, merged by a shared-memory tree).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from . import _cuda_simwarp, _math
from ._dispatch import numba_cuda

cuda = numba_cuda()

MAX_TPB = 256  # shared-memory arrays are sized for this many threads per block
REG_TPB = 1024  # most threads per block of the register kernels
REG_MAX_K = 16  # most row elements one thread keeps in registers
# The simulator runs no warp intrinsics of its own; install() supplies them there.
SIMULATED = _cuda_simwarp.install(cuda)
_FULL = 0xFFFFFFFF

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


def reg_config(cols: int) -> tuple[int, int] | None:
    """(threads per block, elements per thread) for a register kernel, or None when
    the row is too long. Up to 16 elements per thread: 16 loads in flight per thread
    and small blocks. On an H100, 16384x4096 float32 softmax, kernel alone: 256 x 16
    2541 GB/s, 512 x 8 1952 GB/s, 1024 x 4 1209 GB/s (copy: 2914 GB/s)."""
    nt = 32
    while nt < REG_TPB and nt * REG_MAX_K < cols:
        nt *= 2
    k = max(1, -(-cols // nt))
    return (nt, k) if k <= REG_MAX_K else None


def row_plan(op: str, dtype: np.dtype, rows: int, cols: int) -> tuple[object, int, int]:
    """(kernel, grid, threads per block) for ``op`` in softmax, lse, layer_norm: chosen
    once per call shape, so a repeated call skips the layout choice and kernel lookup."""
    return _row_plan(op, dtype, rows, cols, REG_MAX_K)


@functools.lru_cache(maxsize=256)
def _row_plan(op: str, dtype: np.dtype, rows: int, cols: int, _max_k: int) -> tuple:
    # _max_k keys the cache on REG_MAX_K, which tests lower to force the streaming path
    reg = reg_config(cols)
    grid = grid_for(rows)
    if op == "layer_norm":
        if reg is not None:
            return layer_norm_reg_kernel(dtype, reg[1], reg[0]), grid, reg[0]
        return layer_norm_kernel(dtype), grid, threads_for(cols)
    log = op == "lse"
    if reg is not None:
        return softmax_reg_kernel(dtype, log, reg[1], reg[0]), grid, reg[0]
    return softmax_kernel(dtype, log), grid, threads_for(cols)


def _nan_max(a, b):
    """max that keeps NaN once seen (NaN fails every comparison, so test it apart)."""
    return b if (a == a and (b != b or b > a)) else a


def _warp_sum(v):
    v += cuda.shfl_xor_sync(_FULL, v, 16)
    v += cuda.shfl_xor_sync(_FULL, v, 8)
    v += cuda.shfl_xor_sync(_FULL, v, 4)
    v += cuda.shfl_xor_sync(_FULL, v, 2)
    v += cuda.shfl_xor_sync(_FULL, v, 1)
    return v


def _warp_max(v):
    v = _nan_max_d(v, cuda.shfl_xor_sync(_FULL, v, 16))
    v = _nan_max_d(v, cuda.shfl_xor_sync(_FULL, v, 8))
    v = _nan_max_d(v, cuda.shfl_xor_sync(_FULL, v, 4))
    v = _nan_max_d(v, cuda.shfl_xor_sync(_FULL, v, 2))
    v = _nan_max_d(v, cuda.shfl_xor_sync(_FULL, v, 1))
    return v


def _block_shfl(v, sm, tid, nt, is_max, ident):
    """Block-wide sum or max, known to every thread: shuffles inside each warp, one
    shared slot per warp, then every warp reduces the slots itself (two barriers)."""
    v = _warp_max_d(v) if is_max else _warp_sum_d(v)
    lane = tid & 31
    if lane == 0:
        sm[tid >> 5] = v
    cuda.syncthreads()
    v = sm[lane] if lane < (nt >> 5) else ident
    v = _warp_max_d(v) if is_max else _warp_sum_d(v)
    cuda.syncthreads()  # the slots are reused by the next reduction
    return v


_nan_max_d = _dev(_nan_max)
_warp_sum_d = _dev(_warp_sum)
_warp_max_d = _dev(_warp_max)
_block = _dev(_block_shfl)
RED_SM = REG_TPB // 32  # shared slots a block reduction needs: one per warp
# Cap registers so at least 1024 threads (two blocks of 512) share a multiprocessor:
# uncapped, the float32 softmax took 71 (one block of 512, 16 KB of loads in flight per
# multiprocessor, ~1.3 TB/s on an H100). The simulator's jit takes no such option.
_REG_OPTS = {} if SIMULATED else {"max_registers": 64}


@functools.cache
def softmax_reg_kernel(dtype: np.dtype, log: bool, k: int, nt: int):
    """softmax/logsumexp with the row in registers: max, then exp and sum, then write.
    ``k`` and the block size ``nt`` are compile-time constants, so a thread's k
    addresses are one base plus constant offsets (fewer registers)."""
    ft = np.dtype(dtype).type
    zero, one, nan, ninf, pinf = ft(0), ft(1), ft(np.nan), ft(-np.inf), ft(np.inf)

    @cuda.jit(**_REG_OPTS)
    def kernel(x, out):
        sm = cuda.shared.array(RED_SM, ft)
        buf = cuda.local.array(k, ft)
        tid = cuda.threadIdx.x
        rows, cols = x.shape
        for r in range(cuda.blockIdx.x, rows, cuda.gridDim.x):
            for j in range(k):  # all loads first: they are independent
                c = tid + j * nt
                buf[j] = x[r, c] if c < cols else ninf
            m = ninf
            for j in range(k):
                m = _nan_max_d(m, buf[j])
            m = _block(m, sm, tid, nt, True, ninf)
            ok = m == m and m != pinf and m != ninf  # uniform over the block
            s = zero
            if ok:
                for j in range(k):
                    e = math.exp(buf[j] - m)  # padding: exp(-inf) = 0
                    buf[j] = e
                    s += e
            s = _block(s, sm, tid, nt, False, zero)
            if log:
                if tid == 0:
                    # NaN row -> NaN; +inf -> +inf; only -inf (or empty) -> -inf.
                    out[r] = m + math.log(s) if ok else m
            else:
                inv = one / s
                for j in range(k):
                    c = tid + j * nt
                    if c < cols:
                        out[r, c] = buf[j] * inv if ok else nan

    return kernel


@functools.cache
def layer_norm_reg_kernel(dtype: np.dtype, k: int, nt: int):
    """layer_norm with the row in registers: mean, then squared deviations, then write
    (two passes over registers, which is also the more accurate variance)."""
    ft = np.dtype(dtype).type
    zero, one = ft(0), ft(1)

    @cuda.jit(**_REG_OPTS)
    def kernel(x, gamma, beta, use_g, use_b, eps, out):
        sm = cuda.shared.array(RED_SM, ft)
        buf = cuda.local.array(k, ft)
        tid = cuda.threadIdx.x
        rows, cols = x.shape
        n = ft(cols)
        for r in range(cuda.blockIdx.x, rows, cuda.gridDim.x):
            for j in range(k):
                c = tid + j * nt
                buf[j] = x[r, c] if c < cols else zero
            s = zero
            for j in range(k):
                s += buf[j]
            mean = _block(s, sm, tid, nt, False, zero) / n
            q = zero
            for j in range(k):
                if tid + j * nt < cols:
                    d = buf[j] - mean
                    q += d * d
            rstd = one / math.sqrt(_block(q, sm, tid, nt, False, zero) / n + eps)
            for j in range(k):
                c = tid + j * nt
                if c < cols:
                    y = (buf[j] - mean) * rstd
                    if use_g:
                        y = y * gamma[c]
                    if use_b:
                        y = y + beta[c]
                    out[r, c] = y

    return kernel


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
