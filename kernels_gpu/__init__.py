"""Numba CUDA kernels for the hot loops of data and model work, each with a CPU twin.

    from kernels_gpu import softmax, histogram
    softmax(np_array)        # numba njit(parallel=True) twin on the CPU
    softmax(cupy_array)      # CUDA kernel, no copy, returns a CuPy array

Kernels: :func:`histogram`, :func:`segment_reduce`, :func:`softmax`,
:func:`logsumexp`, :func:`layer_norm`, :func:`pairwise_topk`, :func:`ewma`,
:func:`minhash`. :mod:`kernels_gpu.dask` maps them over Dask arrays and dataframes.
Importing this package needs no GPU and no CUDA toolkit: ``numba.cuda`` is imported
on the first GPU input only.
"""

from __future__ import annotations

from .rows import layer_norm, logsumexp, pairwise_topk, softmax
from .segments import ewma, histogram, minhash, segment_reduce

__all__ = [
    "ewma",
    "histogram",
    "layer_norm",
    "logsumexp",
    "minhash",
    "pairwise_topk",
    "segment_reduce",
    "softmax",
]
