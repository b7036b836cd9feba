"""The kernels over Dask collections, block by block (``map_blocks`` / ``map_partitions``).

Each block is handed to the same public function, so a NumPy-backed collection runs the
CPU twins and a CuPy- or cuDF-backed one (a Dask-CUDA cluster) runs the CUDA kernels on
every worker's GPU. ``meta`` is computed by running the kernel on the collection's own
empty ``_meta``, so it has the right type (NumPy/CuPy, pandas/cuDF) and dtype.

Array functions: :func:`softmax`, :func:`logsumexp`, :func:`layer_norm` (the reduced axis
is rechunked into one block), :func:`histogram` (per-block counts, then a sum),
:func:`pairwise_topk` (query blocks against all keys, one block of keys).
DataFrame functions: :func:`segment_reduce`, :func:`ewma`, :func:`minhash`, with the
segments given by a ``by`` column whose equal values are contiguous and never span two
partitions (true after ``set_index(by)`` or a sort with known divisions); a group that
is not contiguous within a partition is refused.
"""

from __future__ import annotations

import functools
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.array.utils import meta_from_array

import kernels_gpu as kg
from aiinfra_magics.errors import AiinfraError, field_error


def _one_block_along(x: da.Array, axis: int) -> da.Array:
    ax = axis % x.ndim
    return x if x.numblocks[ax] == 1 else x.rechunk({ax: -1})


def _require_array(x: Any, field: str = "x") -> None:
    if not isinstance(x, da.Array):
        raise field_error(field, type(x).__name__, "a dask.array.Array")


def softmax(x: da.Array, axis: int = -1) -> da.Array:
    """:func:`kernels_gpu.softmax` over each block (``axis`` gathered into one chunk)."""
    _require_array(x)
    x = _one_block_along(x, axis)
    meta = kg.softmax(x._meta, axis=axis)
    return x.map_blocks(kg.softmax, axis=axis, dtype=meta.dtype, meta=meta)


def logsumexp(x: da.Array, axis: int = -1) -> da.Array:
    """:func:`kernels_gpu.logsumexp` over each block; ``axis`` is dropped."""
    _require_array(x)
    ax = axis % x.ndim if x.ndim else 0
    x = _one_block_along(x, ax)
    meta = kg.logsumexp(x._meta, axis=ax)
    return x.map_blocks(kg.logsumexp, axis=ax, drop_axis=ax, dtype=meta.dtype, meta=meta)


def layer_norm(x: da.Array, gamma: Any = None, beta: Any = None, eps: float = 1e-5) -> da.Array:
    """:func:`kernels_gpu.layer_norm` over each block; gamma/beta travel with every task."""
    _require_array(x)
    x = _one_block_along(x, -1)
    kw = {"gamma": gamma, "beta": beta, "eps": eps}
    # checked here on one row of the real width, so bad gamma/beta/eps fail before any task
    # (zeros_like follows the block type: a CuPy probe for CuPy blocks and CuPy gamma)
    probe = np.zeros_like(x._meta, shape=(1, x.shape[-1]), dtype=x.dtype)
    dtype = kg.layer_norm(probe, **kw).dtype
    meta = meta_from_array(x._meta, x.ndim, dtype=dtype)
    return x.map_blocks(kg.layer_norm, **kw, dtype=dtype, meta=meta)


def _hist_block(block: Any, weights: Any = None, *, bins: int, rng: tuple[float, float]) -> Any:
    counts, _ = kg.histogram(block, bins, range=rng, weights=weights)
    return counts[None, :]


def histogram(
    x: da.Array, bins: int = 10, range: tuple[float, float] | None = None, weights: Any = None
) -> tuple[da.Array, np.ndarray]:
    """Counts per block, summed: ``(counts as a dask array, edges as NumPy)``.

    ``range=None`` first computes the NaN-ignoring min and max (one eager pass).
    """
    _require_array(x)
    if range is None:
        lo, hi = dask.compute(da.nanmin(x), da.nanmax(x))
        lo, hi = float(lo), float(hi)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            lo, hi = (0.0, 1.0) if np.isnan(lo) else (lo, hi)
        range = (lo, hi)
    # validate once here, on a tiny input, so a bad argument fails before any task runs
    _, edges = kg.histogram(np.zeros(0), bins, range=range)
    xr = x.ravel()
    args = [xr]
    if weights is not None:
        _require_array(weights, "weights")
        if weights.shape != x.shape:
            raise field_error("weights", f"shape {weights.shape}", f"shape {x.shape} as x")
        args.append(weights.ravel().rechunk(xr.chunks))
    fn = functools.partial(_hist_block, bins=int(bins), rng=(float(range[0]), float(range[1])))
    dtype = np.float64 if weights is not None else np.int64
    parts = da.map_blocks(
        fn, *args, chunks=((1,) * xr.numblocks[0], (int(bins),)), new_axis=1, dtype=dtype,
        meta=meta_from_array(x._meta, 2, dtype=dtype),
    )  # fmt: skip
    return parts.sum(axis=0), edges


def _topk_block(q: Any, keys: Any, *, k: int, metric: str) -> Any:
    vals, idx = kg.pairwise_topk(q, keys, k, metric)
    xp = np if isinstance(vals, np.ndarray) else __import__(type(vals).__module__.split(".")[0])
    return xp.stack([vals.astype(np.float64), idx.astype(np.float64)], axis=-1)


def pairwise_topk(
    queries: da.Array, keys: Any, k: int, metric: str = "l2"
) -> tuple[da.Array, da.Array]:
    """Top-k per query block against all keys (keys gathered into one block).

    Values and indices come out of one task per block (packed side by side, indices
    exact as float64 below 2**53), so computing both runs the kernel once.
    """
    _require_array(queries, "queries")
    keys_da = keys if isinstance(keys, da.Array) else da.from_array(keys, chunks=-1)
    keys_da = keys_da.rechunk(-1)
    if keys_da.ndim != 2 or queries.ndim != 2:
        raise field_error("queries", f"{queries.ndim}-D and {keys_da.ndim}-D", "2-D arrays")
    kg.pairwise_topk(np.zeros((1, queries.shape[1])), np.zeros(keys_da.shape), k, metric)
    qs = queries.rechunk({1: -1})
    fn = functools.partial(_topk_block, k=int(k), metric=metric)
    packed = da.blockwise(
        fn, "ijc", qs, "if", keys_da, "nf", new_axes={"j": int(k), "c": 2},
        concatenate=True, dtype=np.float64, meta=meta_from_array(qs._meta, 3, dtype=np.float64),
    )  # fmt: skip
    vdt = kg.pairwise_topk(np.zeros((1, 1), queries.dtype), np.zeros((1, 1), queries.dtype), 1)
    return packed[..., 0].astype(vdt[0].dtype), packed[..., 1].astype(np.int64)


# ---- dataframes: segments are runs of equal ``by`` values inside one partition ----


def _values(col: Any) -> Any:
    """NumPy for pandas, CuPy for cuDF: the array the kernels take."""
    return (
        col.to_numpy()
        if hasattr(col, "to_numpy") and "cudf" not in type(col).__module__
        else col.values
    )


def _segments(part: Any, by: str) -> tuple[Any, Any]:
    """(offsets, group labels) of the runs of equal ``by`` values in one partition."""
    keys = _values(part[by])
    xp = np if isinstance(keys, np.ndarray) else __import__(type(keys).__module__.split(".")[0])
    n = keys.shape[0]
    starts = xp.flatnonzero(keys[1:] != keys[:-1]) + 1 if n else xp.zeros(0, np.int64)
    offsets = xp.concatenate(
        [xp.zeros(1, np.int64), starts.astype(np.int64), xp.full(1, n, np.int64)]
    )
    if n == 0:
        offsets = offsets[:1]
    labels = keys[offsets[:-1]] if n else keys[:0]
    if int(xp.unique(labels).shape[0]) != int(labels.shape[0]):
        raise AiinfraError(
            f"by: got groups of {by!r} split into several runs; allowed: equal values "
            "contiguous within a partition (sort or set_index by it first)",
            field="by",
        )
    return offsets, labels


def _index(part: Any, labels: Any, name: str) -> Any:
    """pandas.Index or cudf.Index, whichever library holds the partition."""
    lib = __import__(type(part).__module__.split(".")[0])
    return lib.Index(labels, name=name)


def _series_like(part: Any, data: Any, index: Any, name: str) -> Any:
    return type(part[name])(data, index=index, name=name)


def _check_df(df: Any, by: str, column: str) -> None:
    cols = getattr(df, "columns", None)
    if cols is None or not hasattr(df, "map_partitions"):
        raise field_error("df", type(df).__name__, "a dask DataFrame")
    for field, name in (("by", by), ("column", column)):
        if name not in cols:
            raise field_error(field, name, ", ".join(map(str, cols)))


def _segment_reduce_part(part: Any, *, by: str, column: str, op: str) -> Any:
    offsets, labels = _segments(part, by)
    out = kg.segment_reduce(_values(part[column]), offsets, op)
    return _series_like(part, out, _index(part, labels, by), column)


def segment_reduce(df: Any, by: str, column: str, op: str = "sum") -> Any:
    """One value per group of ``by``: a dask Series indexed by the group label."""
    _check_df(df, by, column)
    fn = functools.partial(_segment_reduce_part, by=by, column=column, op=op)
    return df.map_partitions(fn, meta=fn(df._meta), align_dataframes=False)


def _ewma_part(part: Any, *, by: str, column: str, alpha: float) -> Any:
    offsets, _ = _segments(part, by)
    out = kg.ewma(_values(part[column]), offsets, alpha)
    return _series_like(part, out, part.index, column)


def ewma(df: Any, by: str, column: str, alpha: float) -> Any:
    """Per-group EWMA of ``column``: a dask Series aligned with ``df``."""
    _check_df(df, by, column)
    fn = functools.partial(_ewma_part, by=by, column=column, alpha=alpha)
    return df.map_partitions(fn, meta=fn(df._meta), align_dataframes=False)


def _minhash_part(part: Any, *, by: str, column: str, num_perm: int, seed: int) -> Any:
    offsets, labels = _segments(part, by)
    sig = kg.minhash(_values(part[column]), offsets, num_perm, seed)
    frame = type(part)
    cols = [f"h{i}" for i in range(num_perm)]
    return frame(sig, index=_index(part, labels, by), columns=cols)


def minhash(df: Any, by: str, column: str, num_perm: int = 128, seed: int = 0) -> Any:
    """MinHash signature per document (group of ``by``; tokens in ``column``): a dask
    DataFrame indexed by document with uint32 columns ``h0 .. h{num_perm-1}``."""
    _check_df(df, by, column)
    fn = functools.partial(_minhash_part, by=by, column=column, num_perm=num_perm, seed=seed)
    return df.map_partitions(fn, meta=fn(df._meta), align_dataframes=False)
