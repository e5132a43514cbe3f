"""K-means inputs and precision (``jaxml.kmeans``: validate, frame): float64 data far from the origin, int64
timestamps, values beyond float32's squares and bad arguments give scikit-learn's answer or one clear error naming
the function and argument."""
import functools

import numpy as np
import pytest
from sklearn.cluster import KMeans

from jaxml.kmeans import init_centers, kmeans, kmeans_auto_k
from tests.helpers import blobs

_blobs = functools.partial(blobs, n=1500, d=2, k=4, std=2.0, box=(-20, 20), dtype=np.float64)


def _sklearn(x, init, w=None):
    return KMeans(len(init), init=init, n_init=1, max_iter=300, tol=1e-4, algorithm="lloyd").fit(x, sample_weight=w)


def _first_rows(x, k, seed=0):
    return x[np.random.default_rng(seed).choice(len(x), k, replace=False)]


def test_kmeans_float64_far_from_origin_gives_sklearns_inertia():
    """float64 points 1e8 from the origin (float32's spacing there is 8) are centred in float64 before the float32
    program: scikit-learn's inertia and labels."""
    x = _blobs() + 1e8
    init = _first_rows(x, 4)
    ours, ref = kmeans(x, 4, init=init), _sklearn(x, init)
    assert float(ours.inertia) == pytest.approx(ref.inertia_, rel=1e-6)
    np.testing.assert_array_equal(np.asarray(ours.labels), ref.labels_)
    centers = np.asarray(ours.centers)
    assert centers.dtype == np.float64
    np.testing.assert_allclose(centers, ref.cluster_centers_, rtol=0, atol=1e-6)  # float64 means of the members
    # The reported inertia is that of the user's points and the returned centres (NumPy float64).
    labels = np.asarray(ours.labels)
    true = ((x - centers[labels]) ** 2).sum()
    assert float(ours.inertia) == pytest.approx(true, rel=1e-12)
    total = ((x - x.mean(0)) ** 2).sum()
    assert float(ours.total_ss) == pytest.approx(total, rel=1e-9)
    assert float(ours.between_ss) == pytest.approx(total - ref.inertia_, rel=1e-6)
    np.testing.assert_array_equal(np.asarray(ours.sizes), np.bincount(ref.labels_, minlength=4))


def test_kmeans_float64_centres_are_polished_only_when_they_are_their_members_mean():
    """One Lloyd step does not converge: the centres are that step's means (scikit-learn's), not the means of the
    final labels, which the float64 polish must leave alone."""
    x = _blobs(std=4.0, seed=4) + 1e8
    init = _first_rows(x, 4, seed=2)
    ours = kmeans(x, 4, init=init, max_iter=1)
    ref = KMeans(4, init=init, n_init=1, max_iter=1, algorithm="lloyd").fit(x)
    labels = np.asarray(ours.labels)
    np.testing.assert_array_equal(labels, ref.labels_)
    means = np.stack([x[labels == j].mean(0) for j in range(4)])
    assert np.abs(means - ref.cluster_centers_).max() > 1e-2          # the final labels' means are elsewhere
    np.testing.assert_allclose(np.asarray(ours.centers), ref.cluster_centers_, rtol=0, atol=1e-5)
    assert float(ours.inertia) == pytest.approx(ref.inertia_, rel=1e-6)


def test_kmeans_unix_timestamps_as_int64_and_weights():
    """Unix timestamps (~1.7e9 s, int64, where float32's grid is 128 s) with weights: scikit-learn's fit."""
    rng = np.random.default_rng(1)
    hours = rng.choice([3, 9, 14, 20], 800)
    t = (1_700_000_000 + hours * 3600 + rng.normal(0, 600, 800)).astype(np.int64)[:, None]
    w = rng.uniform(0.5, 2.0, 800)
    init = t[[0, 1, 2, 5]].astype(np.float64)
    ours = kmeans(t, 4, init=init, sample_weight=w, tol=0.0)
    ref = KMeans(4, init=init, n_init=1, tol=0.0, algorithm="lloyd").fit(t.astype(np.float64), sample_weight=w)
    assert float(ours.inertia) == pytest.approx(ref.inertia_, rel=1e-6)
    np.testing.assert_array_equal(np.asarray(ours.labels), ref.labels_)
    np.testing.assert_allclose(np.asarray(ours.centers), ref.cluster_centers_, rtol=0, atol=0.05)


@pytest.mark.slow
def test_kmeans_auto_k_and_init_centers_on_float64_offsets():
    x = _blobs(n=600, k=3, std=0.5) + 1e9
    found = kmeans_auto_k(x, k_max=6, n_init=2)
    assert found.k == 3
    assert float(found.result.inertia) == pytest.approx(
        ((x - np.asarray(found.result.centers)[np.asarray(found.result.labels)]) ** 2).sum(), rel=1e-12)
    starts = init_centers(x, 3, n_init=2, seed=3)
    assert starts.dtype == np.float64
    for c in starts:  # the user's rows themselves, not float32 roundings of them
        assert all((x == ci).all(1).any() for ci in c)


@pytest.mark.parametrize("scale,dtype", [(1e18, np.float64), (1e18, np.float32), (1e36, np.float64),
                                         (1e-20, np.float64), (1e-20, np.float32)])
def test_kmeans_values_beyond_float32_squares_are_rescaled(scale, dtype):
    """~1e18 values: squared distances overflow float32 (inf inertia, wrong clusters); 1e36 is not even a finite
    float32 square; 1e-20: squares underflow to 0. The data are rescaled by a power of two, so the answer is
    scikit-learn's (float64) on the same points."""
    x = (_blobs(n=3000, std=3.0, seed=2) * scale).astype(dtype)
    init = _first_rows(x, 4, seed=1)
    ours = kmeans(x, 4, init=init)
    ref = _sklearn(x.astype(np.float64), init.astype(np.float64))
    np.testing.assert_array_equal(np.asarray(ours.labels), ref.labels_)
    assert np.isfinite(float(ours.inertia))
    assert float(ours.inertia) == pytest.approx(ref.inertia_, rel=1e-5)
    np.testing.assert_allclose(np.asarray(ours.centers, np.float64), ref.cluster_centers_, rtol=1e-5,
                               atol=1e-5 * scale)


def test_kmeans_rescaled_float32_matches_the_unscaled_run_bit_for_bit():
    """A power-of-two rescale is exact: the labels and iteration count of x * 2^70 equal those of x."""
    x = _blobs(n=2000, std=3.0, seed=3).astype(np.float32)
    init = _first_rows(x, 4)
    base = kmeans(x, 4, init=init)
    big = kmeans(x * np.float32(2.0 ** 70), 4, init=init * np.float32(2.0 ** 70))
    np.testing.assert_array_equal(np.asarray(big.labels), np.asarray(base.labels))
    assert int(big.n_iter) == int(base.n_iter)
    np.testing.assert_allclose(np.asarray(big.centers) / 2.0 ** 70, np.asarray(base.centers), rtol=0, atol=1e-5)
    labels = np.asarray(base.labels)                       # the rescaled run's centres: the float64 member means
    means = np.stack([x[labels == j].astype(np.float64).mean(0) for j in range(4)])
    np.testing.assert_allclose(np.asarray(big.centers) / 2.0 ** 70, means, rtol=1e-12)


@pytest.mark.parametrize("call,match", [
    (lambda x: kmeans(np.where(np.arange(len(x))[:, None] == 17, np.nan, x), 3),
     r"kmeans: x has 1 rows with NaN or inf \(first: row 17, column 0: nan; 2 non-finite values in all\)"),
    (lambda x: kmeans_auto_k(np.where(np.arange(len(x))[:, None] == 4, np.inf, x), 3),
     r"kmeans_auto_k: x has 1 rows with NaN or inf \(first: row 4"),
    (lambda x: init_centers(np.where(np.arange(len(x))[:, None] == 2, -np.inf, x), 3),
     r"init_centers: x has 1 rows with NaN or inf \(first: row 2"),
    (lambda x: kmeans(x, 3, sample_weight=np.where(np.arange(len(x)) == 5, np.nan, 1.0)),
     r"kmeans: sample_weight has NaN or inf \(first: index 5"),
    (lambda x: kmeans(x, 3, sample_weight=np.full(len(x), 1e38)), "kmeans: sample_weight sums to"),
    (lambda x: kmeans(x.astype(complex), 3), "kmeans: x must be real"),
    (lambda x: kmeans(x, 3, init=np.full((3, 2), np.nan)), "kmeans: init centres contain NaN or inf"),
    (lambda x: kmeans_auto_k(x, 0), "kmeans_auto_k: k_max must be an integer >= 1"),
    (lambda x: kmeans(x, 3, tol=float("nan")), "kmeans: tol must be finite"),
])
def test_kmeans_bad_input_names_the_function_and_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call(_blobs(n=300))
