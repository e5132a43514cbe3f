"""Hamerly's bounds (jaxml/kmeans/bounds.py): the bounded fit equals brute force bit for bit — centres,
labels, iteration counts — through both its dense and its sparse (compacted) pass, on 1 and 4 devices,
with weights, ties, empty clusters and data far from the origin; the bounds really bound the float64
distances; scikit-learn agrees; the automatic choice and its errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.cluster import KMeans

from jaxml import parallel
from jaxml.kmeans import bounds as bounds_lib
from jaxml.kmeans import fit as fit_lib
from jaxml.kmeans import kmeans
from jaxml.kmeans.shards import Shards
from tests.helpers import blobs


def _datasets():
    rng = np.random.default_rng(1)
    dups = np.repeat(rng.normal(size=(50, 4)).astype(np.float32), 40, axis=0)   # 40 copies of each point
    return {
        "blobs": (blobs(4000, 16, 24, 0, std=2.0), 24, None),
        "weighted": (blobs(4000, 16, 24, 0, std=2.0), 24, rng.random(4000).astype(np.float32)),
        "ties_and_empty": (dups, 40, None),          # exact ties; random starts on copies empty clusters
        "far_from_origin": (blobs(4001, 8, 20, 3, box=(1e4, 1e4 + 50.0)), 20, None),
    }


def _same(a, b):
    np.testing.assert_array_equal(np.asarray(a.centers), np.asarray(b.centers))
    np.testing.assert_array_equal(np.asarray(a.labels), np.asarray(b.labels))
    assert int(a.n_iter) == int(b.n_iter)
    assert float(a.inertia) == float(b.inertia)


@pytest.fixture
def pass_choice(monkeypatch):
    """Force the dense or the sparse pass (the program cache is cleared so the choice is traced anew)."""
    def force(kind):
        monkeypatch.setattr(bounds_lib, "DENSE_FRACTION", {"dense": -1.0, "sparse": 2.0, "auto": 0.5}[kind])
        fit_lib.clear_programs()
    yield force
    fit_lib.clear_programs()


# Every dataset through the automatic choice; 4 devices on the weighted and the uneven (4001 rows) data; each pass
# forced (from the random start) on the weighted data and on the ties (blobs and far_from_origin add nothing there:
# weights all 1, no ties). The inner loop keeps two unsharded cases; the rest runs in the full suite (CI).
FAST = {("blobs", "auto", False), ("ties_and_empty", "auto", False)}
CASES = [pytest.param(*case, marks=() if case in FAST else pytest.mark.slow)
         for case in [(name, "auto", False) for name in _datasets()]
         + [(name, "auto", True) for name in ("weighted", "far_from_origin")]
         + [(name, passes, False) for name in ("weighted", "ties_and_empty") for passes in ("sparse", "dense")]]


@pytest.mark.parametrize("name,passes,sharded", CASES)
def test_bounded_fit_equals_brute_force_bit_for_bit(name, passes, sharded, pass_choice):
    x, k, w = _datasets()[name]
    mesh = parallel.data_mesh() if sharded else None
    pass_choice(passes)
    iters = []
    for init in ("random", "k-means++") if passes == "auto" else ("random",):   # a forced pass: one start
        brute = kmeans(x, k, init=init, seed=3, sample_weight=w, mesh=mesh, bounds=False, max_iter=200, tol=0.0)
        bounded = kmeans(x, k, init=init, seed=3, sample_weight=w, mesh=mesh, bounds=True, max_iter=200, tol=0.0)
        _same(brute, bounded)
        iters.append(int(brute.n_iter))
    assert max(iters) >= 10, iters   # the bounds had iterations to work in


@pytest.mark.slow
def test_bounded_fit_stops_at_max_iter_and_tol_like_brute_force():
    x = blobs(5000, 16, 30, 7, std=3.0)
    init = x[:30]
    for kw in (dict(max_iter=4, tol=0.0), dict(max_iter=300, tol=1e-3)):
        _same(kmeans(x, 30, init=init, bounds=False, **kw), kmeans(x, 30, init=init, bounds=True, **kw))


@pytest.mark.slow
def test_bounds_bound_the_float64_distances():
    """Through several iterations: u >= distance to the labelled centre, l <= distance to every other one,
    and every label equals the float64 argmin wherever the float64 gap is not a near-tie."""
    x = blobs(3000, 8, 10, 5, std=3.0)
    k = 10
    plan = fit_lib.make_plan(len(x), 8, k, n_init=1, init="given", block_size=500, mesh=None, bounds=True)
    shards = Shards()

    @jax.jit
    def run(xs, c):
        blocks, _, _ = fit_lib.prepare(plan, xs, jnp.ones(len(xs)), shards)
        c = c - blocks.mean
        state, delta, out = bounds_lib.unknown(blocks), jnp.zeros(k), []
        from jaxml.kmeans.lloyd import finish_step
        for _ in range(6):
            h = fit_lib.assign.half_norms(c)
            sums, state, unsettled = bounds_lib.assign_bounded(blocks, c, h, state, delta, None, shards)
            out.append((c + blocks.mean, state, unsettled))
            new, _ = finish_step(blocks, c, h, sums, None, shards)
            delta, c = jnp.sqrt(jnp.sum((new - c) ** 2, axis=1)), new
        return out

    x64 = x.astype(np.float64)
    rng = np.random.default_rng(0)
    steps = run(x, x[rng.choice(len(x), k, replace=False)])
    scored = [int(u) for _, _, u in steps]
    assert scored[0] == len(x) and scored[-1] < 0.5 * len(x), scored   # later passes really skip points
    for c, state, _ in steps:
        dist = np.sqrt(((x64[:, None, :] - np.asarray(c, np.float64)[None]) ** 2).sum(-1))   # [n, k]
        label = np.asarray(state.label).reshape(-1)
        own = dist[np.arange(len(x)), label]
        others = np.where(np.arange(k)[None] == label[:, None], np.inf, dist).min(1)
        assert (np.asarray(state.upper).reshape(-1) >= own * (1 - 1e-6)).all()
        assert (np.asarray(state.lower).reshape(-1) <= others * (1 + 1e-6)).all()
        clear = others - own > 1e-3
        assert clear.mean() > 0.99
        np.testing.assert_array_equal(label[clear], dist.argmin(1)[clear])


@pytest.mark.slow
def test_bounded_fit_equals_sklearn_from_same_init():
    x = blobs(20000, 16, 64, 0, std=1.5)
    init = x[np.random.default_rng(0).choice(len(x), 64, replace=False)]
    ours = kmeans(x, 64, init=init, max_iter=300, tol=1e-4, bounds=True)
    ref = KMeans(64, init=init, n_init=1, max_iter=300, tol=1e-4, algorithm="lloyd").fit(x)
    assert float(ours.inertia) == pytest.approx(ref.inertia_, rel=1e-4)
    assert (np.asarray(ours.labels) == ref.labels_).mean() > 0.999
    np.testing.assert_allclose(ours.centers, ref.cluster_centers_, atol=1e-3)


@pytest.mark.parametrize("k", [1, 5, 64, 100, 131])
@pytest.mark.slow
def test_top2_rows_and_max_rows_equal_numpy(k):
    """Both forms (the chain up to 64 rows, the tree above) against numpy, ties resolved to the first row."""
    from jaxml.kmeans.assign import max_rows, top2_rows
    rng = np.random.default_rng(k)
    s = rng.integers(0, 7, size=(k, 300)).astype(np.float32)      # few values: many ties
    best, idx, second = jax.jit(top2_rows)(s)
    np.testing.assert_array_equal(np.asarray(idx), s.argmax(0))
    np.testing.assert_array_equal(np.asarray(best), s.max(0))
    others = np.where(np.arange(k)[:, None] == s.argmax(0)[None], -np.inf, s)
    np.testing.assert_array_equal(np.asarray(second), others.max(0))
    np.testing.assert_array_equal(np.asarray(jax.jit(max_rows)(s)), s.max(0))


@pytest.mark.slow
def test_bounded_fit_with_many_centres_equals_brute_force():
    """k = 100 > 64: the tree forms of top2_rows / argmax_rows inside the bounded passes."""
    x = blobs(3000, 6, 100, 9, std=0.5)
    init = x[np.random.default_rng(2).choice(len(x), 100, replace=False)]
    kw = dict(init=init, max_iter=100, tol=0.0)
    _same(kmeans(x, 100, bounds=False, **kw), kmeans(x, 100, bounds=True, **kw))


def test_automatic_choice_and_errors():
    assert fit_lib.use_bounds(None, 64, 16, 1)            # k * d = 1024: bounds
    assert not fit_lib.use_bounds(None, 64, 16, 1, "gpu")  # accelerators: brute force unless asked
    assert not fit_lib.use_bounds(None, 8, 3, 1)          # china.jpg palette, k * d = 24: brute force
    assert not fit_lib.use_bounds(None, 64, 16, 10)       # restarts: the compacting batch
    assert not fit_lib.use_bounds(False, 64, 16, 1)
    with pytest.raises(ValueError, match="n_init=1.*n_init=3"):
        kmeans(blobs(300, 4, 3, 0), 3, n_init=3, bounds=True)
