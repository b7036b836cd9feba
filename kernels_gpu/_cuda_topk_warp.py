"""pairwise_topk on a real GPU: one warp per key, lanes over the features.

The layouts in ``_cuda_topk`` give each thread whole keys, so a warp's 32 loads of one
feature touch 32 key rows (32 cache lines per load instruction) and the kernel waits on
the L1 cache. Here the 32 lanes of a warp read one key row together (coalesced) and
multiply it against QB queries held in registers (lane ``l`` keeps features
``l, l + 32, ...``); warp shuffles add the lane partials, and lane ``qi`` keeps the k-list
of query ``qi``. The warps of a block stride the keys; at the end each query's k best
are picked from the warps' lists in k rounds. The simulator runs the same shuffles
through ``_cuda_simwarp``, so the tests cover this layout there too.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ._cuda_rows import MAX_TPB, _warp_sum_d
from ._cuda_topk import _better, _topk_push
from ._dispatch import numba_cuda

cuda = numba_cuda()

QB = 8  # queries per block, one per lane 0..7 for their k-lists
MAX_K = 32
MAX_D = 256  # features per lane held in registers: MAX_D / 32
MAX_WARPS = MAX_TPB // 32  # a shared-array size must be a plain constant


def features_per_lane(d: int) -> int:
    return max(1, -(-d // 32))


@functools.cache
def topk_warp_kernel(dtype: np.dtype, metric: int, cpl: int):
    """metric: 0 l2 (squared), 1 ip, 2 cosine; ``cpl`` features per lane (constant, so
    the loops over it and over the QB queries unroll and their arrays stay registers)."""
    ft = np.dtype(dtype).type
    zero = ft(0)

    @cuda.jit
    def kernel(queries, keys, k, out_vals, out_idx):
        sm_v = cuda.shared.array(MAX_WARPS, ft)
        sm_i = cuda.shared.array(MAX_WARPS, np.int64)
        sm_w = cuda.shared.array(1, np.int32)
        qr = cuda.local.array((QB, cpl), ft)
        qn = cuda.local.array(QB, ft)
        acc = cuda.local.array(QB, ft)
        vals = cuda.local.array(MAX_K, ft)
        idxs = cuda.local.array(MAX_K, np.int64)
        tid = cuda.threadIdx.x
        lane = tid & 31
        warp = tid >> 5
        nw = cuda.blockDim.x >> 5
        m, d = queries.shape
        n = keys.shape[0]
        for q0 in range(cuda.blockIdx.x * QB, m, cuda.gridDim.x * QB):
            nq = min(QB, m - q0)
            for qi in range(QB):
                s = zero
                for j in range(cpl):
                    c = lane + 32 * j
                    v = queries[q0 + qi, c] if (qi < nq and c < d) else zero
                    qr[qi, j] = v
                    s += v * v
                qn[qi] = _warp_sum_d(s)
            count = 0
            for t in range(warp, n, nw):
                for qi in range(QB):
                    acc[qi] = zero
                kk = zero
                for j in range(cpl):
                    c = lane + 32 * j
                    kv = keys[t, c] if c < d else zero
                    if metric == 2:
                        kk += kv * kv
                    for qi in range(QB):
                        if metric == 0:
                            e = qr[qi, j] - kv
                            acc[qi] += e * e
                        else:
                            acc[qi] += qr[qi, j] * kv
                mine = zero
                qq = zero
                for qi in range(QB):  # constant indices only: the arrays stay registers
                    s = _warp_sum_d(acc[qi])
                    if lane == qi:
                        mine = s
                        qq = qn[qi]
                if metric == 2:
                    kk = _warp_sum_d(kk)
                if lane < nq:
                    if metric == 1:
                        mine = -mine
                    elif metric == 2:
                        mine = -mine / (math.sqrt(qq) * math.sqrt(kk))
                    count = _topk_push(vals, idxs, count, k, mine, t)
            for qi in range(nq):  # k rounds: the best head among the warps' lists
                head = 0
                for r in range(k):
                    if lane == qi:
                        if head < count:
                            sm_v[warp] = vals[head]
                            sm_i[warp] = idxs[head]
                        else:
                            sm_i[warp] = -1
                    cuda.syncthreads()
                    if tid == 0:
                        b = -1
                        for w in range(nw):
                            if sm_i[w] >= 0 and (
                                b < 0 or _better(sm_v[w], sm_i[w], sm_v[b], sm_i[b])
                            ):
                                b = w
                        v = sm_v[b]
                        out_vals[q0 + qi, r] = v if metric == 0 else -v
                        out_idx[q0 + qi, r] = sm_i[b]
                        sm_w[0] = b
                    cuda.syncthreads()
                    if lane == qi and warp == sm_w[0]:
                        head += 1
            cuda.syncthreads()

    return kernel
