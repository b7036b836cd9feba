"""kernels_gpu.dask on a real LocalCluster: two worker processes run the CPU twins."""

from __future__ import annotations

import dask
import dask.array as da
import dask.dataframe as dd
import distributed
import numpy as np
import pandas as pd
import pytest

import kernels_gpu as kg
import kernels_gpu.dask as kd
from aiinfra_magics.errors import AiinfraError


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture
def rng():
    return np.random.default_rng(20260)  # seeded: a failure reproduces


def test_row_kernels_over_blocks(client, rng):
    x = rng.standard_normal((120, 50)).astype(np.float32)
    X = da.from_array(x, chunks=(40, 20))  # the row axis is split: rechunked for us
    sm = kd.softmax(X)
    assert type(sm._meta) is np.ndarray and sm.dtype == np.float32
    np.testing.assert_allclose(sm.compute(), kg.softmax(x), rtol=1e-6)
    lse = kd.logsumexp(X, axis=0)
    assert lse.shape == (50,)
    np.testing.assert_allclose(lse.compute(), kg.logsumexp(x, axis=0), rtol=1e-6)
    g = rng.standard_normal(50).astype(np.float32)
    np.testing.assert_allclose(kd.layer_norm(X, g).compute(), kg.layer_norm(x, g), rtol=1e-5)
    assert len(client.scheduler_info()["workers"]) == 2


def test_histogram_over_blocks(client, rng):
    x = rng.standard_normal((300, 40))
    w = rng.random((300, 40))
    X, W = da.from_array(x, chunks=(70, 15)), da.from_array(w, chunks=(100, 40))
    counts, edges = kd.histogram(X, 12)
    want, want_edges = np.histogram(x, 12)
    np.testing.assert_array_equal(counts.compute(), want)
    np.testing.assert_allclose(edges, want_edges)
    counts, _ = kd.histogram(X, 12, range=(-1, 1), weights=W)
    np.testing.assert_allclose(counts.compute(), np.histogram(x, 12, (-1, 1), weights=w)[0])


def test_pairwise_topk_over_query_blocks(client, rng):
    q = rng.standard_normal((90, 8))
    keys = rng.standard_normal((400, 8))
    vals, idx = kd.pairwise_topk(da.from_array(q, chunks=(25, 4)), keys, 5, "cosine")
    v, i = dask.compute(vals, idx)
    wv, wi = kg.pairwise_topk(q, keys, 5, "cosine")
    np.testing.assert_allclose(v, wv, rtol=1e-12)
    np.testing.assert_array_equal(i, wi)
    assert i.dtype == np.int64


def frame(rng, groups=40):
    lens = rng.integers(1, 30, groups)
    df = pd.DataFrame(
        {
            "doc": np.repeat(np.arange(groups), lens),
            "v": rng.standard_normal(lens.sum()),
            "tok": rng.integers(0, 500, lens.sum()),
        }
    )
    return df, dd.from_pandas(df.set_index("doc"), npartitions=3).reset_index()


def test_segment_reduce_and_ewma_per_group(client, rng):
    df, ddf = frame(rng)
    for op in ("sum", "mean", "min", "max"):
        got = kd.segment_reduce(ddf, "doc", "v", op)
        assert got._meta.dtype == np.float64 and got._meta.index.name == "doc"
        want = getattr(df.groupby("doc").v, op)()
        pd.testing.assert_series_equal(got.compute().sort_index(), want, check_names=False)
    got = kd.ewma(ddf, "doc", "v", 0.4).compute()
    want = df.groupby("doc").v.transform(lambda s: s.ewm(alpha=0.4, adjust=False).mean())
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12)


def test_minhash_per_document(client, rng):
    df, ddf = frame(rng)
    sig = kd.minhash(ddf, "doc", "tok", num_perm=16, seed=4)
    assert list(sig._meta.columns) == [f"h{i}" for i in range(16)]
    got = sig.compute().sort_index()
    offsets = np.concatenate([[0], np.cumsum(df.groupby("doc").size().to_numpy())])
    want = kg.minhash(df.tok.to_numpy(), offsets, 16, 4)
    np.testing.assert_array_equal(got.to_numpy(), want)


def test_split_groups_and_bad_inputs_are_refused(client, rng):
    df = pd.DataFrame({"doc": [1, 1, 2, 1], "v": [1.0, 2.0, 3.0, 4.0]})
    ddf = dd.from_pandas(df, npartitions=1)
    with pytest.raises(AiinfraError, match="^by: "):
        kd.segment_reduce(ddf, "doc", "v").compute()
    with pytest.raises(AiinfraError, match="^column: "):
        kd.ewma(ddf, "doc", "nope", 0.5)
    with pytest.raises(AiinfraError, match="^x: "):
        kd.softmax(np.ones((2, 2)))
    with pytest.raises(AiinfraError, match="^bins: "):
        kd.histogram(da.ones(4, chunks=2), 0)
