"""Shape buckets: padded programs give the unpadded results, and a new size in the same bucket does not recompile.

References: K-means with ``bucket=False`` (compiled for exactly n rows, the pre-bucketing program) and naive Bayes
counts / scores computed in NumPy from the token stream.
"""
import numpy as np
import pytest

from jaxml import buckets
from jaxml.kmeans import init_centers, kmeans, kmeans_auto_k
from jaxml.naive_bayes import count_tokens_sharded, fit_params
from jaxml.naive_bayes.classifier import token_scores_bucketed
from jaxml.parallel import data_mesh
from tests.helpers import blobs, traces_of


def test_bucket_sizes():
    assert [buckets.bucket(n) for n in (1, 1000, 1024, 1025, 1500, 26_600, 1_000_000)] == \
        [1024, 1024, 1024, 1088, 1536, 26_624, 1_015_808]
    assert buckets.bucket(1000, multiple=3) == 1026
    for n in (1025, 5000, 77_777, 1_000_001):          # at most 1/16 padding above the floor
        assert n <= buckets.bucket(n) <= n * (1 + 1 / 16)


def _blobs(n, d=3, seed=0):
    return blobs(n, d, 4, seed, box=(-12.0, 12.0))


def _same_fit(a, b):
    np.testing.assert_array_equal(np.asarray(a.labels), np.asarray(b.labels))
    np.testing.assert_allclose(np.asarray(a.centers), np.asarray(b.centers), rtol=1e-6, atol=1e-6)
    for f in ("inertia", "total_ss"):
        np.testing.assert_allclose(float(getattr(a, f)), float(getattr(b, f)), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(a.sizes), np.asarray(b.sizes), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(a.within_ss), np.asarray(b.within_ss), rtol=1e-5, atol=1e-3)
    assert int(a.n_iter) == int(b.n_iter)


@pytest.mark.parametrize("case", ["plusplus"] + [pytest.param(c, marks=pytest.mark.slow) for c in (
    "restarts", "random", "given", "weights", "float64", "mesh")])
def test_kmeans_bucketed_equals_unpadded(case):
    x = _blobs(1300)
    args = dict(k=4, seed=1)
    if case == "restarts":
        args["n_init"] = 3
    elif case == "random":
        args["init"] = "random"
    elif case == "given":
        args["init"] = x[[0, 400, 800, 1200]]
    elif case == "weights":
        args["sample_weight"] = np.random.default_rng(2).uniform(0.1, 3.0, len(x))
    elif case == "float64":
        x = x.astype(np.float64) + 1e6                   # centred in float64 on the host (frame.Frame)
    elif case == "mesh":
        args["mesh"] = data_mesh()
    padded, plain = kmeans(x, **args), kmeans(x, bucket=False, **args)
    assert padded.labels.shape == (len(x),)
    _same_fit(padded, plain)


@pytest.mark.slow
def test_auto_k_and_init_centers_bucketed_equal_unpadded():
    x = _blobs(1300, seed=3)
    a, b = kmeans_auto_k(x, 6, seed=0), kmeans_auto_k(x, 6, seed=0, bucket=False)
    assert a.k == b.k
    np.testing.assert_allclose(a.inertia, b.inertia, rtol=1e-6)
    _same_fit(a.result, b.result)
    np.testing.assert_array_equal(np.asarray(init_centers(x, 5, n_init=2, seed=4)),
                                  np.asarray(init_centers(x, 5, n_init=2, seed=4, bucket=False)))


@pytest.mark.slow
def test_kmeans_new_row_count_in_the_bucket_does_not_recompile():
    x = _blobs(1500, d=5, seed=5)                       # 1480 and 1500 rows: both in the 1536 bucket
    first, traced = traces_of("program", lambda: kmeans(x[:1480], 3, seed=0))
    assert traced == 1 and first.labels.shape == (1480,)
    second, traced = traces_of("program", lambda: kmeans(x, 3, seed=0))
    assert traced == 0 and second.labels.shape == (1500,)
    _, traced = traces_of("program", lambda: kmeans(x[:1490], 3, seed=0, bucket=False))
    assert traced == 1                                   # the control: an unbucketed new shape compiles


def _stream(num_docs, vocab, seed):
    rng = np.random.default_rng(seed)
    lens = rng.integers(0, 30, num_docs)
    ids = rng.integers(0, vocab, lens.sum()).astype(np.int32)
    docs = np.repeat(np.arange(num_docs, dtype=np.int32), lens)
    labels = rng.integers(0, 3, num_docs).astype(np.int32)
    return ids, docs, labels


def test_naive_bayes_counts_and_scores_bucketed():
    vocab = 50
    ids, docs, labels = _stream(700, vocab, 0)
    counts, traced = traces_of("local", lambda: count_tokens_sharded(ids, labels[docs], labels, num_classes=3,
                                                                     vocab_size=vocab))
    expect = np.zeros((3, vocab), np.int64)
    np.add.at(expect, (labels[docs], ids), 1)
    np.testing.assert_array_equal(np.asarray(counts["feature_count"]), expect)
    np.testing.assert_array_equal(np.asarray(counts["class_count"]), np.bincount(labels, minlength=3))
    params = fit_params(counts, "multinomial", alpha=1.0)
    w, b = np.asarray(params["weight"], np.float64), np.asarray(params["bias"], np.float64)
    expect_scores = b + np.stack([np.bincount(docs, w[c, ids], minlength=700) for c in range(3)], axis=1)
    scores, traced_scores = traces_of("_token_joint_log_likelihood", lambda: token_scores_bucketed(
        params, ids, docs, num_docs=700))
    assert scores.shape == (700, 3)
    np.testing.assert_allclose(scores, expect_scores, rtol=1e-6, atol=1e-5)

    # Another corpus of about the same size: same buckets, nothing traced again.
    ids2, docs2, labels2 = _stream(720, vocab, 1)
    assert buckets.bucket(len(ids2)) == buckets.bucket(len(ids))
    counts2, again = traces_of("local", lambda: count_tokens_sharded(ids2, labels2[docs2], labels2, num_classes=3,
                                                                     vocab_size=vocab))
    expect2 = np.zeros((3, vocab), np.int64)
    np.add.at(expect2, (labels2[docs2], ids2), 1)
    np.testing.assert_array_equal(np.asarray(counts2["feature_count"]), expect2)
    _, again_scores = traces_of("_token_joint_log_likelihood", lambda: token_scores_bucketed(
        params, ids2, docs2, num_docs=720))
    assert (again, again_scores) == (0, 0) and traced_scores <= 1
