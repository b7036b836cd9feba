"""Row kernels: softmax, logsumexp, layer_norm, pairwise_topk.

Common rules
------------
* Input kinds: NumPy (and anything ``np.asarray`` takes, CPU torch tensors, CPU jax
  arrays) runs the numba CPU twin; CuPy, Numba device arrays, CUDA torch tensors,
  GPU jax arrays, cuDF and other ``__cuda_array_interface__``/DLPack objects run the
  CUDA kernel without copying. The result is of the input's kind.
* Streams: the kernel runs on the input library's current stream (CuPy, torch), on the
  default stream otherwise, or on ``stream=`` when given (a numba stream or a pointer).
* dtypes: float32 and float64 are kept and computed in that precision on the GPU;
  on the host integers, bool and float16 are computed in float64. Anything else is
  refused with a one-line error naming the argument.
* Strides: host input of any layout is made C-contiguous (a copy only if needed). On
  the GPU, 1-D and 2-D inputs of any strides are read in place; 3+-D input must be
  C-contiguous with ``axis=-1``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from aiinfra_magics.errors import field_error

from . import _checks as ck
from . import _cpu_rows

METRICS = ("l2", "ip", "cosine")


def softmax(x: Any, axis: int = -1, *, out: Any = None, stream: Any = None) -> Any:
    """Numerically stable softmax along ``axis``.

    GPU: one block per row; rows up to 16384 long are held in registers (one read of
    the row: max, exp and sum, write), longer rows keep an online (max, sum of exp)
    state and re-read the cache-hot row to write. CPU: max, exp-sum and
    scale passes over the cache-resident row. O(n) work, O(1) extra memory.

    NaN policy: a row holding NaN or +inf becomes all NaN; a row of only -inf is NaN
    (0/0). Empty rows give empty output. dtypes and strides: see the module rules
    (float32 stays float32). The CPU twin's vectorised exp is within ~1e-14 relative and
    flushes terms under exp(-708) to 0; float32 input is computed in float32 (exp within
    2 ulp, sums in float64), as on the GPU.

    ``out=``: an array of the result's shape and dtype on the input's side (NumPy for
    host input, a GPU array for GPU input), written and returned; reusing it across calls
    saves the allocation and, on the CPU, its first-touch page faults.
    """
    return _lse(x, axis, stream, log=False, out=out)


def logsumexp(x: Any, axis: int = -1, *, out: Any = None, stream: Any = None) -> Any:
    """``log(sum(exp(x)))`` along ``axis`` without overflow; same pass structure as
    :func:`softmax`. NaN -> NaN, any +inf -> +inf, only -inf or empty -> -inf.
    ``out=``: as for :func:`softmax`."""
    return _lse(x, axis, stream, log=True, out=out)


def _host_rows_out(out: np.ndarray | None, shape: tuple[int, ...], ax: int, dt: Any) -> Any:
    """``out`` as the (rows, cols) array the twin writes, or None when a temporary is
    needed (another axis, or a strided ``out``): the result is then copied into it."""
    if out is None or ax != len(shape) - 1 or not out.flags.c_contiguous:
        return None
    rows = math.prod(shape[:-1])
    return out.reshape(rows, shape[-1] if shape else 1)


def _lse(x: Any, axis: Any, stream: Any, log: bool, out: Any = None) -> Any:
    dev, xa = ck.split(x, "x", stream)
    ax = ck.axis_of(axis, xa.ndim)
    out_shape = tuple(s for i, s in enumerate(xa.shape) if i != ax) if log else tuple(xa.shape)
    if dev is None:
        x2 = ck.rows_host(ck.host_float(xa, "x"), ax)
        user = ck.host_out(out, out_shape, x2.dtype)
        if log:
            res = np.empty(x2.shape[0], x2.dtype) if user is None else user.reshape(-1)
            if x2.shape[0]:
                _cpu_rows.logsumexp(x2, res)
            if user is not None and not np.shares_memory(res, user):
                user[...] = res.reshape(out_shape)
            return user if user is not None else _from_host(res.reshape(out_shape), x)
        direct = _host_rows_out(user, out_shape, ax, x2.dtype)
        res = direct if direct is not None else np.empty_like(x2)
        if x2.size:
            _cpu_rows.softmax(x2, res)
        if direct is not None:
            return user
        if ax == xa.ndim - 1:
            result = res.reshape(xa.shape)
        else:
            result = np.moveaxis(res.reshape(np.moveaxis(xa, ax, -1).shape), -1, ax)
        if user is not None:
            user[...] = result
            return user
        return _from_host(result, x)
    dt = ck.real_dtype(xa, "x", gpu=True)
    from . import _cuda_rows as cr

    x2 = ck.rows_device(xa, ax)
    obj, ov = ck.device_out(dev, out, out_shape, dt)
    if log:
        ov2 = ov.reshape(x2.shape[0]) if ov.ndim != 1 else ov
    else:
        ov2 = ck.rows_device(ov, ax)
    if x2.shape[0]:
        kern, grid, tpb = cr.row_plan("lse" if log else "softmax", dt, *x2.shape)
        dev.launch(kern, grid, tpb, x2, ov2)
    return obj if out is not None else dev.wrap(obj)


def layer_norm(
    x: Any,
    gamma: Any = None,
    beta: Any = None,
    eps: float = 1e-5,
    *,
    out: Any = None,
    stream: Any = None,
) -> Any:
    """``(x - mean) / sqrt(var + eps) * gamma + beta`` over the last axis, fused.

    Biased variance, as PyTorch's ``layer_norm``. GPU: one block per row; rows up to
    16384 long are held in registers (mean, then squared deviations, then write: one
    read), longer rows take Welford statistics per thread merged by Chan's formula. CPU: mean and squared-deviation passes over the cache-resident row. O(n).
    ``gamma``/``beta``: None or shape ``(x.shape[-1],)``, any array kind on the input's
    side. ``eps >= 0``. NaN in a row makes the row NaN; a constant row with ``eps=0`` is
    NaN (0/0). dtypes: see the module rules. Empty input gives empty output.
    ``out=``: as for :func:`softmax`.
    """
    dev, xa = ck.split(x, "x", stream)
    ck.axis_of(-1, xa.ndim)
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        raise field_error("eps", eps, "a finite number >= 0") from None
    if not (np.isfinite(eps) and eps >= 0):
        raise field_error("eps", eps, "a finite number >= 0")
    cols = tuple(xa.shape)[-1]
    g = ck.side(dev, gamma, "gamma")
    b = ck.side(dev, beta, "beta")
    for name, p in (("gamma", g), ("beta", b)):
        if p is not None and tuple(p.shape) != (cols,):
            raise field_error(name, f"shape {tuple(p.shape)}", f"None or shape ({cols},)")
    if dev is None:
        x2 = ck.rows_host(ck.host_float(xa, "x"), xa.ndim - 1)
        dt = x2.dtype
        empty = np.empty(0, dt)
        g = empty if g is None else np.ascontiguousarray(g, dtype=dt)
        b = empty if b is None else np.ascontiguousarray(b, dtype=dt)
        user = ck.host_out(out, tuple(xa.shape), dt)
        direct = _host_rows_out(user, tuple(xa.shape), xa.ndim - 1, dt)
        res = direct if direct is not None else np.empty_like(x2)
        if x2.size:
            _cpu_rows.layer_norm(x2, g, b, eps, res)
        if user is None:
            return _from_host(res.reshape(xa.shape), x)
        if direct is None:
            user[...] = res.reshape(xa.shape)
        return user
    dt = ck.real_dtype(xa, "x", gpu=True)
    from . import _cuda_rows as cr

    x2 = ck.rows_device(xa, xa.ndim - 1)
    obj, ov = ck.device_out(dev, out, tuple(xa.shape), dt)
    ov2 = ck.rows_device(ov, xa.ndim - 1)
    use_g, use_b = g is not None, b is not None
    if x2.shape[0] and cols:
        g = g if use_g else x2[0]  # placeholders the kernel never reads
        b = b if use_b else x2[0]
        kern, grid, tpb = cr.row_plan("layer_norm", dt, x2.shape[0], cols)
        eps_t = dt.type(eps)
        dev.launch(kern, grid, tpb, x2, g, b, use_g, use_b, eps_t, ov2)
    return obj if out is not None else dev.wrap(obj)


def pairwise_topk(
    queries: Any, keys: Any, k: int, metric: str = "l2", *, stream: Any = None
) -> tuple[Any, Any]:
    """The k best keys for every query, without materialising the (m, n) distances.

    ``queries`` (m, d) and ``keys`` (n, d); ``metric``: ``l2`` (squared Euclidean,
    smallest first), ``ip`` (inner product, largest first) or ``cosine`` (cosine
    similarity, largest first). Returns ``(values, indices)``, both (m, k); indices are
    int64. Ties go to the lower key index; NaN scores (NaN input, zero-norm vectors under
    cosine) rank last. ``1 <= k <= n``.

    dtypes: float32/float64 (integers become float64 on the host); on the GPU keys must
    have the queries' dtype and the arithmetic is in that dtype. The CPU twin computes
    float64 distances, l2 as ``|q|^2 + |k|^2 - 2 q.k`` clamped at 0.

    Work O(m·n·d), extra memory O(m·k). CPU: BLAS products of 64 x 2048 tiles folded into
    per-query sorted lists (k > 128: each query's distance row is sorted). GPU: one block
    per query (or per 8 queries when k <= 32 and d <= 256), per-thread k-lists in local
    memory merged in k rounds; limits k <= 64 and d <= 2048 there. With k <= 32 and
    d <= 256 on a real GPU, a warp reads each key row (coalesced) against 8 queries in
    registers and shuffles the dot products together (``_cuda_topk_warp``).
    """
    dev, qa = ck.split(queries, "queries", stream)
    ka = ck.side(dev, keys, "keys")
    for name, a in (("queries", qa), ("keys", ka)):
        if a.ndim != 2:
            raise field_error(name, f"shape {tuple(a.shape)}", "a 2-D array (rows, features)")
    if qa.shape[1] != ka.shape[1]:
        raise field_error("keys", f"{ka.shape[1]} features", f"{qa.shape[1]} as in queries")
    n = ka.shape[0]
    if n == 0:
        raise field_error("keys", "0 rows", "at least one key")
    k = ck.integer(k, "k", 1, n)
    met = ck.choice(metric, "metric", METRICS)
    m = qa.shape[0]
    if dev is None:
        q = ck.host_float(qa, "queries")
        kk = np.ascontiguousarray(ka, dtype=q.dtype)
        vals = np.empty((m, k))
        idx = np.empty((m, k), np.int64)
        if m:
            _cpu_rows.pairwise_topk(q, kk, k, met, vals, idx)
        return _from_host(vals.astype(q.dtype), queries), _from_host(idx, queries)
    from . import _cuda_rows as cr
    from . import _cuda_topk as ct

    dt = ck.real_dtype(qa, "queries", gpu=True)
    if np.dtype(ka.dtype) != dt:
        raise field_error("keys", str(ka.dtype), f"{dt} as in queries")
    if k > ct.TOPK_MAX_K:
        raise field_error("k", k, f"1 to {ct.TOPK_MAX_K} on the GPU (per-thread lists)")
    if qa.shape[1] > ct.TOPK_MAX_D:
        raise field_error("queries", f"{qa.shape[1]} features", f"<= {ct.TOPK_MAX_D} on the GPU")
    vobj, vv = dev.empty((m, k), dt)
    iobj, iv = dev.empty((m, k), np.int64)
    if m:
        tpb = cr.threads_for(n)
        if ct.use_warp(k, qa.shape[1]):
            from . import _cuda_topk_warp as cw

            kern = cw.topk_warp_kernel(dt, met, cw.features_per_lane(qa.shape[1]))
            grid, tpb = cr.grid_for((m + cw.QB - 1) // cw.QB), cr.MAX_TPB
        elif ct.use_multi(k, qa.shape[1]):
            kern, grid = ct.topk_multi_kernel(dt, met), cr.grid_for((m + ct.QB - 1) // ct.QB)
        else:
            kern, grid = ct.topk_kernel(dt, met), cr.grid_for(m)
        dev.launch(kern, grid, tpb, qa, ka, k, vv, iv)
    return dev.wrap(vobj), dev.wrap(iobj)


def _from_host(result: np.ndarray, like: Any) -> Any:
    from ._dispatch import from_host

    return from_host(result, like)
