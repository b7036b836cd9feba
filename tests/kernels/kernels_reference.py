"""Plain NumPy float64 references for every kernel, written from the definitions."""

from __future__ import annotations

import numpy as np


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.moveaxis(np.asarray(x, np.float64), axis, -1)
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape[:-1]):
        row = x[idx]
        m = row.max() if row.size else -np.inf
        if np.isnan(row).any() or m in (np.inf, -np.inf):
            out[idx] = np.nan
        else:
            e = np.exp(row - m)
            out[idx] = e / e.sum()
    return np.moveaxis(out, -1, axis)


def logsumexp(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.moveaxis(np.asarray(x, np.float64), axis, -1)
    out = np.empty(x.shape[:-1])
    for idx in np.ndindex(x.shape[:-1]):
        row = x[idx]
        m = row.max() if row.size else -np.inf
        if np.isnan(row).any():
            out[idx] = np.nan
        elif m in (np.inf, -np.inf):
            out[idx] = m
        else:
            out[idx] = m + np.log(np.exp(row - m).sum())
    return out


def layer_norm(x, gamma=None, beta=None, eps=1e-5):
    x = np.asarray(x, np.float64)
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps)
    if gamma is not None:
        y = y * np.asarray(gamma, np.float64)
    if beta is not None:
        y = y + np.asarray(beta, np.float64)
    return y


def histogram(x, bins, range=None, weights=None):
    x = np.asarray(x, np.float64).ravel()
    keep = ~np.isnan(x)
    w = None if weights is None else np.asarray(weights, np.float64).ravel()[keep]
    return np.histogram(x[keep], bins, range=range, weights=w)


def segment_reduce(values, offsets, op):
    v = np.asarray(values, np.float64)
    out = []
    for a, b in zip(offsets[:-1], offsets[1:]):
        seg = v[a:b]
        if op == "sum":
            out.append(seg.sum())
        elif seg.size == 0:
            out.append(np.nan)
        else:
            out.append({"mean": np.mean, "min": np.min, "max": np.max}[op](seg))
    return np.array(out)


def pairwise_topk(q, keys, k, metric):
    q = np.asarray(q, np.float64)
    kk = np.asarray(keys, np.float64)
    if metric == "l2":
        score = ((q[:, None, :] - kk[None, :, :]) ** 2).sum(-1)
    else:
        score = -(q @ kk.T)
        if metric == "cosine":
            with np.errstate(invalid="ignore", divide="ignore"):
                score = score / np.linalg.norm(q, axis=1)[:, None] / np.linalg.norm(kk, axis=1)
    idx = np.argsort(score, axis=1, kind="stable")[:, :k]  # NaN sorts last
    vals = np.take_along_axis(score, idx, axis=1)
    return (vals if metric == "l2" else -vals), idx


def ewma(values, offsets, alpha):
    v = np.asarray(values, np.float64)
    out = np.full(v.shape, np.nan)
    for a, b in zip(offsets[:-1], offsets[1:]):
        m = np.nan
        for j in range(a, b):
            if not np.isnan(v[j]):
                m = v[j] if np.isnan(m) else (1 - alpha) * m + alpha * v[j]
            out[j] = m
    return out


def _fmix64(h: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint64(33))
        h = h * np.uint64(0xFF51AFD7ED558CCD)
        h = h ^ (h >> np.uint64(33))
        h = h * np.uint64(0xC4CEB9FE1A85EC53)
        return h ^ (h >> np.uint64(33))


def minhash(tokens, offsets, num_perm, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2**64, num_perm, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 2**64, num_perm, dtype=np.uint64)
    base = _fmix64(np.asarray(tokens).astype(np.uint64))
    out = np.full((len(offsets) - 1, num_perm), 0xFFFFFFFF, np.uint32)
    for d, (lo, hi) in enumerate(zip(offsets[:-1], offsets[1:])):
        if hi > lo:
            with np.errstate(over="ignore"):
                h = (base[lo:hi, None] * a[None, :] + b[None, :]) >> np.uint64(32)
            out[d] = h.astype(np.uint32).min(axis=0)
    return out


def close(got, ref, dtype) -> None:
    """Relative error in the norm, NaN in the same places."""
    got = np.asarray(got, np.float64)
    ref = np.asarray(ref, np.float64)
    assert got.shape == ref.shape
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    fin = np.isfinite(ref)
    assert np.array_equal(got[~fin & ~np.isnan(ref)], ref[~fin & ~np.isnan(ref)])
    tol = 1e-5 if np.dtype(dtype) == np.float32 else 1e-12
    denom = max(np.linalg.norm(ref[fin]), 1e-30)
    assert np.linalg.norm(got[fin] - ref[fin]) / denom < tol
