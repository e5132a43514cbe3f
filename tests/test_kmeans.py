"""jaxml.kmeans against scikit-learn and hand-computed references.

Most tests share one data shape (1203 x 4, k = 5; 1203 is not a multiple of the 4 fake devices) so
the compiled programs are reused across tests.
"""
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import load_sample_image, make_blobs

from jaxml import parallel
from jaxml.kmeans import fit as fit_lib
from jaxml.kmeans import init_centers, kmeans, kmeans_auto_k
from jaxml.kmeans import palette as pal

N, D, K = 1203, 4, 5


def blobs(seed=0, std=1.0, box=(-10, 10), n=N, d=D, k=K):
    return make_blobs(n, d, centers=k, cluster_std=std, center_box=box, random_state=seed)[0].astype(np.float32)


def datasets():
    """Several shape-(N, D) float32 datasets with (x, sample_weight or None)."""
    rng = np.random.default_rng(0)
    aniso = blobs(1, std=[0.5, 1.0, 2.0, 3.0, 1.0]) @ rng.normal(size=(D, D)).astype(np.float32)
    return {
        "blobs": (blobs(0), None),
        "anisotropic": (aniso.astype(np.float32), None),
        "uniform_noise": (rng.uniform(-1, 1, (N, D)).astype(np.float32), None),
        "far_from_origin": (blobs(2) + np.float32(1000.0), None),  # the expansion needs centring here
        "weighted": (blobs(3, std=2.0), rng.uniform(0.1, 3.0, N).astype(np.float32)),
    }


def sklearn_fit(x, init, w=None, tol=1e-4, max_iter=300):
    return KMeans(len(init), init=init, n_init=1, max_iter=max_iter, tol=tol, algorithm="lloyd").fit(x, sample_weight=w)


def first_rows(x, k=K, seed=0):
    return x[np.random.default_rng(seed).choice(len(x), k, replace=False)]


@pytest.mark.parametrize("name", list(datasets()))
def test_same_answer_as_sklearn_from_the_same_centres(name):
    x, w = datasets()[name]
    init = first_rows(x)
    tol = 0.0 if w is not None else 1e-4  # sklearn's tol uses the unweighted variance; run to convergence
    ours = kmeans(x, K, init=init, sample_weight=w, tol=tol)
    ref = sklearn_fit(x, init, w, tol=tol)
    assert float(ours.inertia) == pytest.approx(ref.inertia_, rel=1e-4)
    np.testing.assert_array_equal(np.asarray(ours.labels), ref.labels_)
    np.testing.assert_allclose(np.asarray(ours.centers), ref.cluster_centers_, rtol=1e-5, atol=1e-3)
    assert int(ours.n_iter) == ref.n_iter_
    # The outputs agree with each other and with numpy.
    ww = np.ones(N) if w is None else w.astype(np.float64)
    np.testing.assert_allclose(np.asarray(ours.sizes), np.bincount(ref.labels_, ww, K), rtol=1e-5)
    within = np.bincount(ref.labels_, ww * ((x - ref.cluster_centers_[ref.labels_]) ** 2).sum(1), K)
    np.testing.assert_allclose(np.asarray(ours.within_ss), within, rtol=1e-4)
    mean = (ww[:, None] * x).sum(0) / ww.sum()
    total = (ww * ((x - mean) ** 2).sum(1)).sum()
    assert float(ours.total_ss) == pytest.approx(total, rel=1e-5)
    assert float(ours.between_ss) == pytest.approx(total - ref.inertia_, rel=1e-4)


def test_same_answer_as_sklearn_on_image_pixels():
    x = load_sample_image("china.jpg").reshape(-1, 3)[::67].astype(np.float32)  # 4079 pixels in 0..255
    init = first_rows(x, 8, seed=1)
    ours, ref = kmeans(x, 8, init=init), sklearn_fit(x, init)
    assert float(ours.inertia) == pytest.approx(ref.inertia_, rel=1e-4)
    assert (np.asarray(ours.labels) != ref.labels_).sum() <= 2  # integer pixels: exact ties happen
    np.testing.assert_allclose(np.asarray(ours.centers), ref.cluster_centers_, atol=1e-2)


def lloyd_step_reference(x, c):
    """One Lloyd step in float64 with scikit-learn's empty-cluster rule (farthest points, in order)."""
    x, c = x.astype(np.float64), c.astype(np.float64)
    dist = ((x[:, None, :] - c[None]) ** 2).sum(-1)
    label, nearest = dist.argmin(1), dist.min(1)
    sums, count = np.zeros_like(c), np.zeros(len(c))
    np.add.at(sums, label, x)
    np.add.at(count, label, 1.0)
    empty = np.flatnonzero(count == 0)
    for j, p in zip(empty, np.argsort(-nearest, kind="stable")[: len(empty)]):
        sums[label[p]] -= x[p]
        count[label[p]] -= 1
        sums[j], count[j] = x[p], 1
    return np.where(count[:, None] > 0, sums / np.maximum(count, 1)[:, None], c)


@pytest.mark.parametrize("n_far", [1, 2])
def test_empty_clusters_take_the_farthest_points(n_far):
    x = blobs(0)
    init = np.concatenate([first_rows(x, K - n_far), np.full((n_far, D), 1e3, np.float32)])
    one = kmeans(x, K, init=init, max_iter=1)  # centres far away own no point: re-seeded at once
    expected = lloyd_step_reference(x, init)
    np.testing.assert_allclose(np.asarray(one.centers), expected, rtol=1e-5, atol=1e-4)
    full = kmeans(x, K, init=init)
    assert np.isfinite(np.asarray(full.centers)).all() and (np.asarray(full.sizes) > 0).all()
    if n_far == 1:  # one empty cluster: scikit-learn's rule is the same point
        ref = sklearn_fit(x, init)
        assert float(full.inertia) == pytest.approx(ref.inertia_, rel=1e-4)
        np.testing.assert_array_equal(np.asarray(full.labels), ref.labels_)


@pytest.mark.slow
def test_duplicate_points_come_back_exactly():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(K, D)).astype(np.float32) * 5
    counts = np.array([400, 300, 250, 200, 53])
    x = np.repeat(points, counts, axis=0)[rng.permutation(N)]
    r = kmeans(x, K, n_init=3, seed=7)  # k-means++ never draws an already chosen point (D = 0)
    order = np.argsort(-np.asarray(r.sizes))
    np.testing.assert_allclose(np.asarray(r.centers)[order], points, rtol=1e-5, atol=1e-5)  # f32 means
    np.testing.assert_array_equal(np.asarray(r.sizes)[order], counts)
    assert float(r.inertia) <= 1e-8 * float(r.total_ss)
    # Two identical starting centres: the second owns nothing (ties go to the lower index), is re-seeded.
    init = points[[0, 0, 1, 2, 3]]
    r = kmeans(x, K, init=init)
    ref = sklearn_fit(x, init)
    np.testing.assert_array_equal(np.asarray(r.labels), ref.labels_)
    assert float(r.inertia) <= 1e-8 * float(r.total_ss) and ref.inertia_ <= 1e-8 * float(r.total_ss)


@pytest.mark.slow
def test_vmapped_restarts_equal_restarts_one_at_a_time():
    x = blobs(4, std=3.0)
    inits = np.stack([first_rows(x, seed=s) for s in range(3)])
    together = kmeans(x, K, init=inits)
    alone = [kmeans(x, K, init=c) for c in inits]
    assert float(together.inertia) == pytest.approx(min(float(r.inertia) for r in alone), rel=1e-6)
    same = [r for r in alone if np.array_equal(np.asarray(r.labels), np.asarray(together.labels))]
    assert same, "the returned restart is none of the single runs"  # (two restarts may tie: same optimum)
    np.testing.assert_allclose(np.asarray(together.centers), np.asarray(same[0].centers), rtol=1e-6, atol=1e-6)
    assert int(together.n_iter) == int(same[0].n_iter)
    # k-means++ restarts: the vmapped draws are the ones init_centers returns for the same seed.
    starts = np.asarray(init_centers(x, K, n_init=3, seed=7))
    fit = kmeans(x, K, n_init=3, seed=7)
    alone = [kmeans(x, K, init=c) for c in starts]
    assert float(fit.inertia) == pytest.approx(min(float(r.inertia) for r in alone), rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("mesh", [None, "four"])
def test_small_fits_compiled_for_compile_time_give_the_same_fit(monkeypatch, mesh):
    """A small fit (fit.SMALL_ROW_RUNS) steps its restarts without shedding finished ones and is compiled with
    XLA:CPU's elemental emitters at -O1; forced down the large-fit path (compacting batch, fusion emitters) the
    same restarts, k sweep and initialisation give the same centres, labels, iteration counts and chosen k. (On
    four devices the restarts only, to keep the test short; one device checks the k sweep and the initialisation.)"""
    mesh = parallel.data_mesh() if mesh else None
    x = blobs(6, std=2.5)

    def fits():
        fit = kmeans(x, K, n_init=4, seed=3, mesh=mesh, max_iter=40)
        if mesh is not None:
            return (fit,)
        return fit, kmeans_auto_k(x, 6, n_init=2, seed=1), init_centers(x, K, n_init=4, seed=3)
    assert fit_lib.is_small(fit_lib.make_plan(N, D, K, n_init=4, init="k-means++", block_size=None, mesh=mesh), 4)
    small = fits()
    monkeypatch.setattr(fit_lib, "SMALL_ROW_RUNS", 0)
    try:
        fit_lib.clear_programs()     # programs are built once per plan: trace them anew with the new setting
        large = fits()
    finally:
        fit_lib.clear_programs()
    pairs = [(small[0], large[0])]
    if mesh is None:
        np.testing.assert_allclose(small[1].inertia, large[1].inertia, rtol=1e-6)
        pairs.append((small[1].result, large[1].result))
    for a, b in pairs:
        np.testing.assert_array_equal(np.asarray(a.labels), np.asarray(b.labels))
        np.testing.assert_allclose(np.asarray(a.centers), np.asarray(b.centers), rtol=1e-6, atol=1e-6)
        assert int(a.n_iter) == int(b.n_iter)
        assert float(a.inertia) == pytest.approx(float(b.inertia), rel=1e-6)
    if mesh is None:
        assert int(small[1].k) == int(large[1].k)
        np.testing.assert_array_equal(np.asarray(small[2]), np.asarray(large[2]))


def test_kmeans_plusplus_draws_distinct_points_one_per_separated_blob():
    x = blobs(5, std=0.3, box=(-100, 100))
    truth = KMeans(K, n_init=1, random_state=0).fit(x).labels_
    starts = np.asarray(init_centers(x, K, n_init=3, seed=11))
    for c in starts:
        rows = [np.flatnonzero((x == ci).all(1)) for ci in c]
        assert all(len(r) >= 1 for r in rows)  # every centre is a data point
        assert len({truth[r[0]] for r in rows}) == K  # one per blob


def test_four_devices_equal_one_device():
    assert len(parallel.data_mesh().devices.flat) == 4
    x, w = datasets()["weighted"]
    init = first_rows(x)
    one = kmeans(x, K, init=init, sample_weight=w, max_iter=50)
    four = kmeans(x, K, init=init, sample_weight=w, max_iter=50, mesh=parallel.data_mesh())
    np.testing.assert_array_equal(np.asarray(four.labels), np.asarray(one.labels))
    np.testing.assert_allclose(np.asarray(four.centers), np.asarray(one.centers), rtol=1e-5, atol=1e-5)
    assert float(four.inertia) == pytest.approx(float(one.inertia), rel=1e-5)
    assert int(four.n_iter) == int(one.n_iter)
    # The sharded initialisations draw the same points as one device.
    for init in ("k-means++", "random"):
        a = init_centers(x, K, init=init, n_init=3, seed=7, sample_weight=w)
        b = init_centers(x, K, init=init, n_init=3, seed=7, sample_weight=w, mesh=parallel.data_mesh())
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-5)


@pytest.mark.slow
def test_auto_k_finds_the_number_of_separated_blobs():
    x = blobs(6, std=0.5, box=(-20, 20), n=600, d=2, k=4)
    for criterion in ("ch", "drop"):
        r = kmeans_auto_k(x, k_max=8, criterion=criterion, n_init=2)
        assert r.k == 4, (criterion, r.score)
        assert r.result.centers.shape == (4, 2)
        assert float(r.result.inertia) == pytest.approx(float(r.inertia[3]), rel=1e-3)
        assert np.sort(np.asarray(r.result.sizes)).tolist() == [150, 150, 150, 150]


@pytest.mark.slow
def test_palette_of_three_flat_colours_is_exact_and_ordered_by_size():
    colours = np.array([[20, 120, 220], [250, 250, 250], [200, 30, 30]], np.uint8)
    img = np.zeros((40, 50, 3), np.uint8)  # 2000 pixels: rows 0-7 (20%), 8-19 (30%), 20-39 (50%)
    img[:8], img[8:20], img[20:] = colours
    p = pal.palette(img, k=3)
    assert p.lines() == ["#c81e1e  0.5000", "#fafafa  0.3000", "#1478dc  0.2000"]
    sw = pal.swatch(p)
    assert sw.shape == (124, 300, 3)
    np.testing.assert_array_equal(sw[50, [50, 150, 250]], colours[[2, 1, 0]])
    bar = sw[110]
    assert [int((bar == c).all(1).sum()) for c in colours[[2, 1, 0]]] == [150, 90, 60]


def test_thumbnail_samples_pixels_without_inventing_colours(tmp_path):
    from PIL import Image
    img = np.zeros((800, 400, 3), np.uint8)
    img[:, :200] = (255, 0, 0)
    img[::3, 200:] = (0, 0, 255)
    path = str(tmp_path / "two.png")
    Image.fromarray(img).save(path)
    small = pal.load_pixels(path, pal.parse_size("200x400"))
    assert small.shape == (400, 200, 3)
    assert {tuple(c) for c in small.reshape(-1, 3)} <= {(255, 0, 0), (0, 0, 255), (0, 0, 0)}
    with pytest.raises(ValueError, match="cannot read image"):
        pal.load_pixels(str(tmp_path / "missing.png"))
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        pal.parse_size("200by400")


@pytest.mark.parametrize("call,match", [
    (lambda x: kmeans(np.where(np.arange(N)[:, None] == 7, np.nan, x), K), r"NaN or inf \(first: row 7"),
    (lambda x: kmeans(np.where(np.arange(N)[:, None] == 3, np.inf, x), K), "NaN or inf"),
    (lambda x: kmeans(x[:, 0], K), r"2-D array .* got shape \(1203,\)"),
    (lambda x: kmeans(np.repeat(x[:3], 10, axis=0), K), r"k=5 is larger than the number of distinct points \(3\)"),
    (lambda x: kmeans(x[:4], K), r"k=5 is larger than the number of points \(4\)"),
    (lambda x: kmeans(x, K, sample_weight=np.ones(N - 1)), r"sample_weight must have shape \(1203,\)"),
    (lambda x: kmeans(x, K, sample_weight=-np.ones(N)), "sample_weight must be >= 0"),
    (lambda x: kmeans(x, K, init=x[:4]), r"init centres must have shape \(5, 4\)"),
    (lambda x: kmeans(x, K, init="kmeans++"), "init must be one of"),
    (lambda x: kmeans(x, 0), "k must be an integer >= 1"),
    (lambda x: kmeans(x, K, tol=-1.0), "tol must be finite and >= 0"),
    (lambda x: kmeans_auto_k(x, 5, criterion="elbow"), "criterion must be one of"),
])
def test_bad_input_fails_with_a_message_naming_it(call, match):
    with pytest.raises(ValueError, match=match):
        call(blobs(0))
