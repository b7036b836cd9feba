"""Hypothesis properties of the CPU twins: invariants that hold for any valid input."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import kernels_gpu as kg

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=64)
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)  # seeded


def matrices(dtype=np.float64, max_side=30):
    return hnp.arrays(
        dtype,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=max_side),
        elements=finite,
    )


@st.composite
def ragged(draw, dtype=np.float64):
    lens = draw(st.lists(st.integers(0, 20), min_size=1, max_size=15))
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    values = draw(hnp.arrays(dtype, int(offsets[-1]), elements=finite))
    return values, offsets


@SETTINGS
@given(matrices(np.float32))
def test_softmax_rows_sum_to_one_and_are_probabilities(x):
    p = kg.softmax(x)
    assert ((p >= 0) & (p <= 1)).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


@SETTINGS
@given(matrices(), finite)
def test_softmax_is_shift_invariant_and_lse_shifts(x, c):
    c = np.clip(c, -1e3, 1e3)
    np.testing.assert_allclose(kg.softmax(x + c), kg.softmax(x), atol=1e-9)
    lse = kg.logsumexp(x)
    assert (lse >= x.max(axis=1) - 1e-9).all()
    assert (lse <= x.max(axis=1) + np.log(x.shape[1]) + 1e-6 * np.abs(lse) + 1e-9).all()


@SETTINGS
@given(matrices(max_side=20).filter(lambda a: a.shape[1] > 1))
def test_layer_norm_rows_have_zero_mean_unit_variance(x):
    x = x + np.arange(x.shape[1]) * (1.0 + np.abs(x).max())  # rows never constant
    y = kg.layer_norm(x, eps=0.0)
    np.testing.assert_allclose(y.mean(axis=1), 0.0, atol=1e-6)
    np.testing.assert_allclose(y.var(axis=1), 1.0, rtol=1e-6)


@SETTINGS
@given(hnp.arrays(np.float64, st.integers(0, 500), elements=finite), st.integers(1, 60))
def test_histogram_counts_sum_to_n(x, bins):
    counts, edges = kg.histogram(x, bins)
    assert counts.sum() == x.size
    assert edges.size == bins + 1 and (np.diff(edges) > 0).all()


@SETTINGS
@given(ragged())
def test_segment_sum_is_additive_and_min_le_mean_le_max(data):
    values, offsets = data
    sums = kg.segment_reduce(values, offsets, "sum")
    np.testing.assert_allclose(sums.sum(), values.sum(), rtol=1e-9, atol=1e-3)
    lo, mid, hi = (kg.segment_reduce(values, offsets, op) for op in ("min", "mean", "max"))
    ok = ~np.isnan(mid)
    assert (np.isnan(mid) == (np.diff(offsets) == 0)).all()
    assert (lo[ok] <= mid[ok] + 1e-9 * np.abs(mid[ok]) + 1e-9).all()
    assert (mid[ok] <= hi[ok] + 1e-9 * np.abs(mid[ok]) + 1e-9).all()


@SETTINGS
@given(ragged(), st.floats(0.01, 1.0))
def test_ewma_stays_within_segment_range(data, alpha):
    values, offsets = data
    y = kg.ewma(values, offsets, alpha)
    for a, b in zip(offsets[:-1], offsets[1:]):
        if b > a:
            seg = values[a:b]
            assert y[a] == seg[0]
            assert (y[a:b] >= seg.min() - 1e-6).all() and (y[a:b] <= seg.max() + 1e-6).all()


@SETTINGS
@given(st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=50), st.integers(0, 2**31))
def test_minhash_of_same_token_set_is_equal(tokens, seed):
    t = np.array(tokens, np.int64)
    shuffled = np.random.default_rng(seed).permutation(np.concatenate([t, t[:3]]))
    sig = kg.minhash(np.concatenate([t, shuffled]), [0, t.size, t.size + shuffled.size], 32, seed)
    np.testing.assert_array_equal(sig[0], sig[1])  # order and repeats do not matter


@SETTINGS
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.just(4)), elements=finite),
    hnp.arrays(np.float64, st.tuples(st.integers(1, 40), st.just(4)), elements=finite),
    st.data(),
)
def test_topk_values_are_sorted_and_indices_unique(q, keys, data):
    k = data.draw(st.integers(1, keys.shape[0]))
    vals, idx = kg.pairwise_topk(q, keys, k, "l2")
    assert (np.diff(vals, axis=1) >= 0).all()
    assert all(len(set(row)) == k for row in idx)
    assert ((idx >= 0) & (idx < keys.shape[0])).all()
