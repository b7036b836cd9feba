"""The warp intrinsics the simulator gets from kernels_gpu._cuda_simwarp, against NumPy
references, and proof that the kernels' shipped (shuffle) reductions are what the
simulator runs. Defined behaviour runs on whichever device conftest picked; poison
values and hang detection exist only in the emulation. One or two tiny blocks each."""

from __future__ import annotations

import numpy as np
import pytest

import kernels_gpu as kg
from kernels_gpu import _cuda_rows, _cuda_simwarp, _cuda_topk
from kernels_gpu._dispatch import numba_cuda

cuda = numba_cuda()
SIMULATED = _cuda_rows.SIMULATED
sim_only = pytest.mark.skipif(not SIMULATED, reason="checks the simulator's emulation")

FULL = 0xFFFFFFFF
EVEN = 0x55555555
ODD = 0xAAAAAAAA


@cuda.jit
def _warp_ops(v, src, out, ballots):
    tid = cuda.threadIdx.x
    lane = tid & 31
    x = v[tid]
    out[0, tid] = cuda.shfl_sync(FULL, x, src[tid])
    out[1, tid] = cuda.shfl_up_sync(FULL, x, 3)
    out[2, tid] = cuda.shfl_down_sync(FULL, x, 5)
    out[3, tid] = cuda.shfl_xor_sync(FULL, x, 9)
    # Two disjoint masks at once (divergent halves of a warp): each is its own round.
    if lane % 2 == 0:
        out[4, tid] = cuda.shfl_xor_sync(EVEN, x, 2)
    else:
        out[4, tid] = cuda.shfl_down_sync(ODD, x, 2)
    cuda.syncwarp(FULL)
    ballots[tid] = cuda.ballot_sync(FULL, x > 0)


def _ref_ops(v, src):
    """What the PTX shfl.sync modes give, warp by warp (full warps only)."""
    n = v.size
    lane = np.arange(n) % 32
    base = np.arange(n) - lane

    def take(s, ok):
        return np.where(ok, v[base + np.clip(s, 0, 31)], v)

    out = np.empty((5, n))
    out[0] = v[base + (src & 31)]
    out[1] = take(lane - 3, lane - 3 >= 0)
    out[2] = take(lane + 5, lane + 5 < 32)
    out[3] = v[base + (lane ^ 9)]
    out[4] = np.where(lane % 2 == 0, v[base + (lane ^ 2)], take(lane + 2, lane + 2 < 32))
    bits = (v > 0).astype(np.int64) << lane
    ballots = np.array([bits[b : b + 32].sum() for b in base])
    return out, ballots


def test_warp_intrinsics_match_numpy():
    rng = np.random.default_rng(7)
    n = 64  # two full warps
    v = rng.standard_normal(n)
    src = rng.integers(0, 100, n).astype(np.int32)  # past 31 too: taken modulo 32
    out = cuda.to_device(np.zeros((5, n)))
    ballots = cuda.to_device(np.zeros(n, np.int64))
    _warp_ops[1, n](cuda.to_device(v), cuda.to_device(src), out, ballots)
    want, want_ballots = _ref_ops(v, src)
    np.testing.assert_array_equal(out.copy_to_host(), want)
    np.testing.assert_array_equal(ballots.copy_to_host() & FULL, want_ballots)


@cuda.jit
def _partial_warp(v, out):
    tid = cuda.threadIdx.x
    x = v[tid]
    out[0, tid] = cuda.shfl_xor_sync(FULL, x, 8)
    out[1, tid] = cuda.shfl_xor_sync(FULL, x, 16)
    out[2, tid] = cuda.shfl_down_sync(EVEN, x, 1) if tid % 2 == 0 else x
    if tid >= 4:  # all but lanes 0..3 leave: those must not wait for them
        return
    out[3, tid] = cuda.shfl_sync(FULL, x, 5)  # lane 5 has exited: undefined on a GPU


@sim_only
def test_partial_warp_exited_lanes_and_poison():
    n = 40  # warp 0 full, warp 1 has lanes 0..7 only
    v = np.arange(n, dtype=np.float64) + 1
    out = cuda.to_device(np.full((4, n), -1.0))
    _partial_warp[1, n](cuda.to_device(v), out)
    got = out.copy_to_host()
    tid = np.arange(n)
    lane, base = tid % 32, tid - tid % 32
    size = np.where(base == 0, 32, n - 32)  # lanes that exist in each thread's warp

    def src_val(s):  # a lane past the end of the partial warp took no part: NaN
        return np.where(s < size, v[np.minimum(base + s, n - 1)], np.nan)

    np.testing.assert_array_equal(got[0], src_val(lane ^ 8))
    np.testing.assert_array_equal(got[1], src_val(lane ^ 16))
    # an even lane reading lane + 1, which is outside the EVEN mask: NaN
    np.testing.assert_array_equal(got[2], np.where(tid % 2 == 0, np.nan, v))
    np.testing.assert_array_equal(got[3][:4], np.full(4, np.nan))
    np.testing.assert_array_equal(got[3][4:], -1.0)


@cuda.jit
def _int_poison(v, out):
    tid = cuda.threadIdx.x
    if tid < 2:
        out[tid] = cuda.shfl_sync(0x3, v[tid], 7)


@sim_only
def test_integer_poison():
    out = cuda.to_device(np.zeros(2, np.int32))
    _int_poison[1, 32](cuda.to_device(np.arange(32, dtype=np.int32)), out)
    np.testing.assert_array_equal(out.copy_to_host(), [0x7EADBEEF, 0x7EADBEEF])


@cuda.jit
def _no_own_bit(out):
    out[cuda.threadIdx.x] = cuda.shfl_xor_sync(0x2, 1.0, 1)


@cuda.jit
def _shfl_against_syncthreads(out):
    tid = cuda.threadIdx.x
    if tid == 0:
        out[0] = cuda.shfl_xor_sync(0x3, 1.0, 1)
    else:
        cuda.syncthreads()


@cuda.jit
def _mismatched_masks(out):
    tid = cuda.threadIdx.x
    if tid == 0:
        out[0] = cuda.shfl_xor_sync(0x3, 1.0, 1)
    elif tid == 1:
        out[1] = cuda.shfl_xor_sync(0x7, 1.0, 1)  # lane 2 exits: waits for lane 0 only


@cuda.jit
def _mismatched_ops(out):
    tid = cuda.threadIdx.x
    if tid == 0:
        out[0] = cuda.shfl_xor_sync(0x3, 1.0, 1)
    elif tid == 1:
        out[1] = cuda.shfl_down_sync(0x3, 1.0, 1)


@sim_only
@pytest.mark.parametrize(
    "kernel, match",
    [
        (_no_own_bit, "lacks its bit"),
        (_shfl_against_syncthreads, "waits at syncthreads"),
        (_mismatched_masks, "which waits for it"),
        (_mismatched_ops, "where other lanes"),
    ],
)
def test_what_would_hang_or_be_undefined_on_a_gpu_raises(kernel, match):
    with pytest.raises(RuntimeError, match=match):
        kernel[1, 32](cuda.to_device(np.zeros(32)))


def test_the_row_kernels_reduce_with_the_shipped_shuffles():
    """One reduction for GPU and simulator: no shared-memory tree is left to pick."""
    assert _cuda_rows._block.py_func is _cuda_rows._block_shfl
    assert not hasattr(_cuda_rows, "_block_tree")
    assert _cuda_topk.use_warp(5, 6)


@sim_only
def test_the_simulator_ran_the_shuffles():
    """A shuffle-count probe: softmax over 2 rows of 37 takes the register kernel with
    one warp per row; each of its two block reductions does two warp reductions of five
    xor shuffles, on each of the 32 lanes, in each of the 2 blocks."""
    assert _cuda_rows.reg_config(37) == (32, 2)
    x = np.random.default_rng(3).standard_normal((2, 37))
    before = _cuda_simwarp.counts().get("xor", 0)
    got = kg.softmax(cuda.to_device(x)).copy_to_host()
    assert _cuda_simwarp.counts().get("xor", 0) - before == 2 * 32 * 2 * 2 * 5
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(got, e / e.sum(axis=1, keepdims=True), rtol=1e-12)


def test_install_is_a_no_op_off_the_simulator():
    class NotSimulator:
        @staticmethod
        def jit():
            pass

    assert _cuda_simwarp.install(NotSimulator()) is False
    assert not hasattr(NotSimulator, "shfl_xor_sync")
