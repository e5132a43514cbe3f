"""Input checks for K-means: each failure is a ValueError that names the argument, its shape or the bad row."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def points(x, check: bool = True) -> jax.Array:
    """x as f32[n, d] on device; NaN/inf rejected (on the float32 values) when ``check``."""
    if not isinstance(x, jax.Array):
        x = np.asarray(x)
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
            raise ValueError(f"x must be numeric, got dtype {x.dtype}")
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"x must be a non-empty 2-D array [n_points, n_features], got shape {tuple(x.shape)}")
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise ValueError(f"x must be real, got dtype {x.dtype}")
    if isinstance(x, jax.Array):
        x = x.astype(jnp.float32)
        if check and not bool(jnp.isfinite(x).all()):
            bad = np.flatnonzero(~np.isfinite(np.asarray(x)).all(axis=1))
            raise ValueError(f"x has {bad.size} rows with NaN or inf (first: row {bad[0]})")
        return x
    x = x.astype(np.float32)
    if check:
        finite = np.isfinite(x).all(axis=1)
        if not finite.all():
            bad = np.flatnonzero(~finite)
            raise ValueError(f"x has {bad.size} rows with NaN or inf (first: row {bad[0]}: {x[bad[0]].tolist()})")
    return jnp.asarray(x)


def weights(sample_weight, n: int, check: bool = True) -> jax.Array:
    """f32[n] sample weights (ones by default); finite, >= 0, positive total."""
    if sample_weight is None:
        return jnp.ones((n,), jnp.float32)
    w = np.asarray(sample_weight, dtype=np.float32)
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},) to match x, got {w.shape}")
    if check:
        if not np.isfinite(w).all():
            raise ValueError("sample_weight has NaN or inf")
        if (w < 0).any():
            raise ValueError(f"sample_weight must be >= 0, got min {w.min()}")
        if not w.sum() > 0:
            raise ValueError("sample_weight sums to 0: nothing to cluster")
    return jnp.asarray(w)


def params(*, k, n_init, max_iter, tol) -> None:
    for name, v in (("k", k), ("n_init", n_init), ("max_iter", max_iter)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be finite and >= 0, got {tol!r}")


def count_distinct(rows: np.ndarray) -> int:
    """Number of distinct rows (-0.0 == 0.0) of a float32[m, d] array."""
    rows = np.ascontiguousarray(rows + np.float32(0.0))
    return len(np.unique(rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1])))))


def distinct_up_to(x, w, k: int) -> int:
    """min(k, number of distinct points among the positive-weight rows of x).

    Looks at a growing prefix (4k rows, then x4) so large inputs with many distinct rows cost little.
    """
    n = x.shape[0]
    m = min(n, max(4 * k, 4096))
    while True:
        rows = np.asarray(x[:m])[np.asarray(w[:m]) > 0]
        found = count_distinct(rows) if rows.size else 0
        if found >= k or m == n:
            return min(found, k)
        m = min(n, 4 * m)


def enough_distinct(x, w, k: int) -> None:
    """Raise unless the positive-weight rows hold at least k distinct points."""
    n = x.shape[0]
    if k > n:
        raise ValueError(f"k={k} is larger than the number of points ({n})")
    found = distinct_up_to(x, w, k)
    if found < k:
        raise ValueError(f"k={k} is larger than the number of distinct points ({found}) "
                         f"among the {n} points with positive weight")


def centers(init, k: int, d: int) -> jax.Array:
    """Given initial centres as f32[R, k, d] (a single f32[k, d] becomes R = 1)."""
    c = np.asarray(init, dtype=np.float32)
    if c.ndim == 2:
        c = c[None]
    if c.ndim != 3 or c.shape[1:] != (k, d) or c.shape[0] < 1:
        raise ValueError(f"init centres must have shape ({k}, {d}) or (n_init, {k}, {d}), got {np.shape(init)}")
    if not np.isfinite(c).all():
        raise ValueError("init centres contain NaN or inf")
    return jnp.asarray(c)
