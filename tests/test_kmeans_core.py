"""K-means (jaxml/kmeans): the same answer as scikit-learn from the same initial centres, vmapped restarts ==
restarts one at a time, 4 fake devices == 1 device, degenerate data, palettes and automatic k."""
import jax
import numpy as np
import pytest
from sklearn.cluster import KMeans

from jaxml import parallel
from jaxml.kmeans import kmeans, kmeans_auto_k
from jaxml.kmeans.palette import palette
from tests.helpers import blobs


@pytest.mark.parametrize("n,d,k,seed", [(3000, 2, 5, 0), (4000, 8, 12, 1), (2000, 32, 3, 2)])
def test_same_answer_as_sklearn_from_same_init(n, d, k, seed):
    x = blobs(n, d, k, seed, std=2.5)
    init = x[np.random.default_rng(seed).choice(n, k, replace=False)]
    ours = kmeans(x, k, init=init, max_iter=300, tol=1e-4)
    ref = KMeans(k, init=init, n_init=1, max_iter=300, tol=1e-4, algorithm="lloyd").fit(x)
    assert float(ours.inertia) == pytest.approx(ref.inertia_, rel=1e-4)
    assert (np.asarray(ours.labels) == ref.labels_).mean() > 0.999      # up to ties
    np.testing.assert_allclose(ours.centers, ref.cluster_centers_, atol=1e-3)
    sizes = np.bincount(ref.labels_, minlength=k)
    np.testing.assert_array_equal(np.asarray(ours.sizes), sizes)
    assert float(np.sum(ours.within_ss)) == pytest.approx(float(ours.inertia), rel=1e-4)
    assert float(np.sum(ours.within_ss) + ours.between_ss) == pytest.approx(float(ours.total_ss), rel=1e-4)


@pytest.mark.slow
def test_vmapped_restarts_equal_restarts_one_at_a_time():
    x = blobs(2000, 4, 6, 3, std=3.0)
    rng = np.random.default_rng(0)
    inits = np.stack([x[rng.choice(len(x), 6, replace=False)] for _ in range(4)])
    together = kmeans(x, 6, init=inits, max_iter=100)
    alone = [kmeans(x, 6, init=c, max_iter=100) for c in inits]
    best = int(np.argmin([float(r.inertia) for r in alone]))
    assert float(together.inertia) == pytest.approx(float(alone[best].inertia), rel=1e-6)
    np.testing.assert_allclose(together.centers, alone[best].centers, atol=1e-5)


def test_four_devices_equal_one_device():
    assert jax.device_count() == 4
    x = blobs(3001, 5, 7, 4, std=2.0)                        # not a multiple of 4: padded with zero weights
    init = x[:7]
    one = kmeans(x, 7, init=init, max_iter=50)
    four = kmeans(x, 7, init=init, max_iter=50, mesh=parallel.data_mesh())
    assert float(four.inertia) == pytest.approx(float(one.inertia), rel=1e-5)
    np.testing.assert_array_equal(np.asarray(four.labels), np.asarray(one.labels))
    np.testing.assert_allclose(four.centers, one.centers, atol=1e-5)


def test_duplicate_points_and_empty_clusters_never_nan():
    x = np.repeat(np.array([[0.0, 0.0], [10.0, 10.0], [0.0, 10.0]], np.float32), 50, axis=0)
    init = np.array([[0.0, 0.0], [0.1, 0.1], [10.0, 10.0]], np.float32)   # two centres start on one cluster
    r = kmeans(x, 3, init=init, max_iter=50)
    assert np.isfinite(np.asarray(r.centers)).all()
    assert float(r.inertia) == pytest.approx(0.0, abs=1e-6)
    assert sorted(np.asarray(r.sizes).tolist()) == [50, 50, 50]


@pytest.mark.parametrize("bad,match", [(np.array([[0.0, np.nan]], np.float32), "NaN|nan|finite"),
                                       (np.zeros((5, 2), np.float32), "distinct")])
def test_bad_input_is_named(bad, match):
    with pytest.raises(ValueError, match=match):
        kmeans(bad, 2)


@pytest.mark.slow
def test_palette_of_three_flat_colours_in_known_proportions():
    colours = np.array([[200, 30, 30], [20, 120, 220], [250, 250, 250]], np.uint8)
    counts = [5000, 3000, 2000]
    pixels = np.concatenate([np.tile(c, (n, 1)) for c, n in zip(colours, counts)])
    p = palette(pixels.astype(np.float32), k=3)
    lines = p.lines()
    assert lines == ["#c81e1e  0.5000", "#1478dc  0.3000", "#fafafa  0.2000"]


@pytest.mark.slow
def test_auto_k_finds_k_on_separatedblobs():
    x = blobs(3000, 2, 4, 7, std=0.5)
    r = kmeans_auto_k(x, k_max=8)
    assert int(r.k) == 4


@pytest.mark.slow
@pytest.mark.parametrize("sharded", [False, True])
def test_compacting_batch_steps_every_run_as_alone(sharded):
    """lloyd_batch (runs that finish drop out of the stepped batch) == each run's own while_loop, for every
    run: centres and iteration counts, with runs that need very different numbers of iterations, a
    max_iter cap that stops some of them, and per-run active masks (the auto-k sweep's case)."""
    from jaxml.kmeans import lloyd as lloyd_lib
    from jaxml.kmeans.fit import make_plan, prepare
    from jaxml.kmeans.shards import Shards

    x = blobs(4000, 3, 8, 5, std=4.0)
    rng = np.random.default_rng(1)
    r, k = 7, 8
    c0 = np.stack([x[rng.choice(len(x), k, replace=False)] for _ in range(r)])
    active = np.arange(k)[None, :] < np.array([8, 3, 8, 5, 8, 2, 8])[:, None]
    assert lloyd_lib.batch_sizes(r) == (1, 2, 4, 7)
    mesh = parallel.data_mesh() if sharded else None
    plan = make_plan(len(x), 3, k, n_init=r, init="given", block_size=256, mesh=mesh)

    def per_device(xs, ws, c0, active):
        shards = Shards(plan.axis, plan.count)
        blocks, _, _ = prepare(plan, xs, ws, shards)
        c0 = c0 - blocks.mean
        kw = dict(max_iter=jax.numpy.int32(25), tol_abs=1e-3, shards=shards)
        together = lloyd_lib.lloyd_batch(blocks, c0, active, **kw)
        alone = [lloyd_lib.lloyd(blocks, c0[i], active[i], **kw) for i in range(r)]
        return together, alone

    w = np.ones(len(x), np.float32)
    if mesh is None:
        run = jax.jit(per_device)
    else:
        from jax.sharding import PartitionSpec as P
        run = jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=(P("data"), P("data"), P(), P()),
                                    out_specs=P(), check_vma=False))
    (c, n_iter), alone = run(x, w, c0, active)
    iters = [int(a[1]) for a in alone]
    assert len(set(iters)) >= 3 and max(iters) == 25 and min(iters) < 25, iters  # the runs really differ
    np.testing.assert_array_equal(np.asarray(n_iter), iters)
    for i, (ci, _) in enumerate(alone):
        np.testing.assert_allclose(np.asarray(c[i]), np.asarray(ci), rtol=1e-6, atol=1e-5)
