"""k-means++ on the host for small fits (jaxml/kmeans/host_init.py): no seeding program is compiled, ``kmeans``
starts from the centres ``init_centers`` returns on any mesh, the draws follow scikit-learn's k-means++ in
distribution, and large data still seed on the device."""
import jax
import numpy as np
import pytest
from sklearn.cluster import kmeans_plusplus

from jaxml import parallel
from jaxml.kmeans import fit as fit_lib
from jaxml.kmeans import host_init, init_centers, kmeans
from tests.helpers import blobs

N, D, K = 1203, 4, 5


@pytest.fixture
def no_device_seeding(monkeypatch):
    """Fail if a program traces the device k-means++ (programs are cleared so that they are traced anew)."""
    def refuse(*args, **kwargs):
        raise AssertionError("device k-means++ traced for a small fit")
    monkeypatch.setattr(fit_lib, "kmeans_plusplus", refuse)
    fit_lib.clear_programs()
    yield
    fit_lib.clear_programs()


def test_small_fit_seeds_on_the_host_and_starts_from_init_centers(no_device_seeding):
    x = blobs(N, D, K, 6, std=2.5)
    assert host_init.use_host(N, D, K, 3)
    starts = np.asarray(init_centers(x, K, n_init=3, seed=7))
    assert starts.shape == (3, K, D)
    for c in starts:   # distinct data rows
        assert all((x == ci).all(1).any() for ci in c) and len({tuple(ci) for ci in c}) == K
    fit = kmeans(x, K, n_init=3, seed=7)
    given = kmeans(x, K, init=starts)
    np.testing.assert_array_equal(np.asarray(fit.labels), np.asarray(given.labels))
    np.testing.assert_array_equal(np.asarray(fit.centers), np.asarray(given.centers))
    assert float(fit.inertia) == float(given.inertia) and int(fit.n_iter) == int(given.n_iter)
    # The same seed draws the same rows on 4 devices; another seed (or a key) draws others, repeatably.
    four = np.asarray(init_centers(x, K, n_init=3, seed=7, mesh=parallel.data_mesh()))
    np.testing.assert_array_equal(four, starts)
    assert not np.array_equal(np.asarray(init_centers(x, K, n_init=3, seed=8)), starts)
    key = jax.random.key(3)
    np.testing.assert_array_equal(np.asarray(init_centers(x, K, seed=key)), np.asarray(init_centers(x, K, seed=key)))


def test_host_draws_follow_kmeans_plusplus_like_scikit_learn():
    """Mean seeding potential sum_i w_i min_j ||x_i - c_j||^2 over 40 seeds: within 10 % of scikit-learn's
    ``kmeans_plusplus`` (same greedy algorithm, other random numbers); uniform random seeding is far worse, so a
    draw not proportional to w D would fail. Zero-weight rows are never drawn."""
    rng = np.random.default_rng(0)
    x = blobs(3000, 2, 12, 1, std=0.6, box=(-20, 20))
    w = np.where(rng.random(3000) < 0.2, 0.0, 1.0).astype(np.float32)
    k = 12

    def potential(c):
        return float(w @ np.min(((x[:, None, :] - c[None]) ** 2).sum(-1), axis=1))

    ours_c, rows = host_init.kmeans_plusplus(x, w, k, 40, seed=0)
    assert (w[rows] > 0).all()
    ours = np.mean([potential(c) for c in ours_c])
    keep = w > 0
    ref = np.mean([potential(kmeans_plusplus(x[keep], k, random_state=s)[0]) for s in range(40)])
    uniform = np.mean([potential(x[keep][rng.choice(keep.sum(), k, replace=False)]) for _ in range(40)])
    assert ours == pytest.approx(ref, rel=0.10)
    assert uniform > 3 * ref


def test_large_data_still_seed_on_the_device_and_shard_like_one_device(monkeypatch):
    """With the host path off (as for data beyond host_init.HOST_WORK) the device k-means++ is used; its draws
    on 4 devices equal one device's, and differ from the host's."""
    monkeypatch.setattr(host_init, "HOST_WORK", 0)
    x = blobs(N, D, K, 3, std=2.0)
    w = np.random.default_rng(0).uniform(0.1, 3.0, N).astype(np.float32)
    assert not host_init.use_host(N, D, K, 3)
    a = init_centers(x, K, n_init=3, seed=7, sample_weight=w)
    b = init_centers(x, K, n_init=3, seed=7, sample_weight=w, mesh=parallel.data_mesh())
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-5)
    host, _ = host_init.kmeans_plusplus(x, w, K, 3, seed=7)
    assert not np.array_equal(host, np.asarray(a))
