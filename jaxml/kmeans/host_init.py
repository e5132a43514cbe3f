"""k-means++ on the host (NumPy) for small data, so that a small fit compiles no seeding program.

The algorithm is ``init.kmeans_plusplus``'s (greedy k-means++, scikit-learn's ``_kmeans_plusplus``):

    c_1 ~ w_i;  D_i = min_j ||x_i - c_j||^2   (float64)
    each next centre: T = 2 + floor(ln k) candidates drawn with probability w_i D_i / sum_i w_i D_i;
    keep the one minimising sum_i w_i min(D_i, ||x_i - cand||^2).

A draw u in [0, 1) takes the first row whose running total of w D exceeds u * total, so rows of zero
mass (chosen points, padding rows of weight 0) are never drawn. Restart r draws from NumPy's PCG64
seeded with ``SeedSequence(seed).spawn(R)[r]``: the same seed gives the same centres on any mesh.

Why: for a few tens of thousands of rows the seeding takes milliseconds in NumPy, while as part of the
fit's XLA program it was about half of the compile of a first palette run (bench/README.md).
"""
from __future__ import annotations

import math

import jax
import numpy as np

# Host seeding when rows x restarts x k x T x d multiply-adds stay below this (~0.1 s of NumPy).
HOST_WORK = 2 ** 26


def trials(k: int) -> int:
    """Candidates per k-means++ step, T = 2 + floor(ln k) (scikit-learn's choice)."""
    return 2 + int(math.log(k))


def use_host(rows: int, d: int, k: int, n_init: int) -> bool:
    """Whether k-means++ for ``n_init`` restarts on rows x d points runs on the host (see HOST_WORK)."""
    return rows * n_init * k * trials(k) * d < HOST_WORK and jax.process_count() == 1


def seed_sequence(seed) -> np.random.SeedSequence:
    """A NumPy seed sequence from an integer seed or a ``jax.random.key`` (its key data)."""
    if isinstance(seed, jax.Array):
        data = jax.random.key_data(seed) if jax.dtypes.issubdtype(seed.dtype, jax.dtypes.prng_key) else seed
        return np.random.SeedSequence([int(v) for v in np.asarray(data).reshape(-1)])
    return np.random.SeedSequence(int(seed))


def _sq_dist(x, xx, c):
    """||x_i - c_t||^2 for x f64[n, d] (xx = ||x||^2) and c f64[T, d] -> f64[T, n], clamped at 0."""
    return np.maximum(xx[None, :] - 2.0 * (c @ x.T) + np.sum(c * c, axis=1)[:, None], 0.0)


def _draw(rng, mass, size):
    """Rows hit by ``size`` uniform draws on the running total of ``mass`` (f64[n]): i64[size]."""
    ends = np.cumsum(mass)
    return np.minimum(np.searchsorted(ends, rng.random(size) * ends[-1], side="right"), len(mass) - 1)


def kmeans_plusplus(x, w, k: int, n_init: int, seed):
    """Greedy k-means++ for ``n_init`` restarts of the points x (f32[n, d], the program's) with weights
    w (f32[n]): (centres f32[n_init, k, d], rows of x they are, i64[n_init, k])."""
    x = np.asarray(x)
    x64, w64 = x.astype(np.float64), np.asarray(w, np.float64)
    x64 = x64 - (w64 @ x64) / w64.sum()        # centred, as the program's scores are
    xx = np.sum(x64 * x64, axis=1)
    picks = np.zeros((n_init, k), np.int64)
    for r, child in enumerate(seed_sequence(seed).spawn(n_init)):
        rng = np.random.Generator(np.random.PCG64(child))
        picks[r, 0] = _draw(rng, w64, 1)[0]
        closest = _sq_dist(x64, xx, x64[picks[r, :1]])[0]
        for c in range(1, k):
            cand = _draw(rng, w64 * closest, trials(k))
            dist = np.minimum(closest[None, :], _sq_dist(x64, xx, x64[cand]))
            best = int(np.argmin(dist @ w64))
            picks[r, c], closest = cand[best], dist[best]
    return x[picks], picks
