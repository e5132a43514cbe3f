"""Input checks for K-means, and the choice of the frame that maps the user's points to the program's.

Each failure is a ValueError that starts with the entry point (``kmeans: ...``) and names the argument, its
shape or the first bad row. The checks are host-side NumPy reductions (or one device reduction for a
``jax.Array``): the global min and max find NaN and inf (NaN propagates) and bound the extent E used below,
with no n x d temporary.

``inputs`` chooses the frame (``frame.Frame``: float64 centring, power-of-two rescaling) from the same
reductions; ``frame.restore`` maps the results back.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.kmeans.frame import Frame, weighted_mean

F32_MAX = float(np.finfo(np.float32).max)
SAFE_SUM = F32_MAX / 64        # bound on any float32 sum the program forms: headroom for rounding and partial sums
TINY_EXTENT = 2.0 ** -50       # below this, squared distances (~E^2 eps^2) would underflow float32
_EXACT_IN_F32 = {np.dtype(t) for t in (np.float32, np.float16, np.int8, np.int16, np.uint8, np.uint16, np.bool_)}


class Points(NamedTuple):
    x: jax.Array | np.ndarray  # f32[rows, d] the program's points: the n given, then rows - n zero rows
    w: jax.Array | np.ndarray  # f32[rows]    sample weights (0 on the padding rows)
    w64: np.ndarray | None  # f64[n] the given weights, for float64 statistics at the end (None: all ones)
    frame: Frame
    source: object       # the caller's x (NumPy or jax.Array), for float64 statistics at the end
    n: int               # rows given (rows = n unless ``inputs(rows=...)`` padded them to a bucket)


def _exact_in_float32(dtype) -> bool:
    return np.dtype(dtype) in _EXACT_IN_F32 or jnp.dtype(dtype) == jnp.bfloat16


def _shape_and_dtype(x, name: str, who: str):
    if not isinstance(x, jax.Array):
        x = np.asarray(x)
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
            raise ValueError(f"{who}: {name} must be numeric, got dtype {x.dtype}")
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise ValueError(f"{who}: {name} must be real, got dtype {x.dtype}")
    return x


def _value_range(x) -> tuple[float, float]:
    """(min, max) over all values (a contiguous pass, ~10x faster than per column); NaN propagates, so both are
    finite iff every value is."""
    if isinstance(x, jax.Array):
        lo, hi = jax.device_get((jnp.min(x), jnp.max(x)))
    else:
        lo, hi = np.min(x), np.max(x)
    return float(lo), float(hi)


def _non_finite_error(x, name: str, who: str) -> ValueError:
    bad = ~np.isfinite(np.asarray(x, np.float64))
    rows = np.flatnonzero(bad.any(axis=1))
    if not rows.size:
        return ValueError(f"{who}: the float64 mean of {name} is not finite (values beyond float64 sums, "
                          "or sample_weight summing to 0)")
    r = int(rows[0])
    c = int(np.flatnonzero(bad[r])[0])
    return ValueError(f"{who}: {name} has {rows.size} rows with NaN or inf (first: row {r}, column {c}: "
                      f"{np.asarray(x[r, c]).item()}; {int(bad.sum())} non-finite values in all)")


def weights(sample_weight, n: int, check: bool = True, who: str = "kmeans") -> np.ndarray | None:
    """f64[n] sample weights (None for the default, all ones); finite, >= 0, positive total, within float32."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if not (np.issubdtype(w.dtype, np.number) or w.dtype == bool) or np.issubdtype(w.dtype, np.complexfloating):
        raise ValueError(f"{who}: sample_weight must be real numbers, got dtype {w.dtype}")
    w = w.astype(np.float64)
    if w.shape != (n,):
        raise ValueError(f"{who}: sample_weight must have shape ({n},) to match x, got {w.shape}")
    if check:
        finite = np.isfinite(w)
        if not finite.all():
            first = int(np.flatnonzero(~finite)[0])
            raise ValueError(f"{who}: sample_weight has NaN or inf (first: index {first}: {w[first]})")
        if (w < 0).any():
            first = int(np.flatnonzero(w < 0)[0])
            raise ValueError(f"{who}: sample_weight must be >= 0, got min {w.min()} (first: index {first})")
        if not w.sum() > 0:
            raise ValueError(f"{who}: sample_weight sums to 0: nothing to cluster")
        if w.max() > SAFE_SUM or w.sum() > SAFE_SUM:
            raise ValueError(f"{who}: sample_weight sums to {w.sum():.3g}, beyond float32 sums (<= {SAFE_SUM:.3g}); "
                             "rescale the weights (K-means is invariant to a common factor)")
    return w


def choose_scale(extent: float, weight: float, d: int, who: str) -> float:
    """1.0, or the power of two 2^-ceil(log2 extent) when float32 squared distances would overflow or underflow."""
    if extent == 0 or (TINY_EXTENT <= extent and max(4.0 * weight * d * extent * extent, weight * extent) <= SAFE_SUM):
        return 1.0
    scale = 2.0 ** -math.ceil(math.log2(extent))
    if 4.0 * weight * d > SAFE_SUM:
        raise ValueError(f"{who}: total sample weight {weight:.3g} times 4 * {d} features exceeds float32 sums "
                         f"(<= {SAFE_SUM:.3g}) even for rescaled data; rescale the weights")
    return scale


def _pad_host(a: np.ndarray, rows: int) -> np.ndarray:
    """a [n, ...] with rows - n zero rows appended (a itself when rows = n)."""
    if rows == a.shape[0]:
        return a
    out = np.zeros((rows,) + a.shape[1:], a.dtype)
    out[:a.shape[0]] = a
    return out


def inputs(x, sample_weight, *, init=None, check: bool = True, who: str = "kmeans", rows: int | None = None
           ) -> Points:
    """Checked points, weights and frame (module docstring). ``init``: given centres, kept in the extent.

    With ``check`` False nothing is checked and no scale is chosen; float64 input is still centred in float64.
    ``rows`` (>= n): pad the program's points with zero rows of weight 0 to that many (``fit.bucket_rows``), on
    the host for host input, so that nearby row counts share one compiled program.
    """
    x = _shape_and_dtype(x, "x", who)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{who}: x must be a non-empty 2-D array [n_points, n_features], got shape {tuple(x.shape)}")
    n, d = x.shape
    w = weights(sample_weight, n, check, who)
    wide = not _exact_in_float32(x.dtype)
    offset = weighted_mean(x, w) if wide else None
    if offset is not None and not np.isfinite(offset).all():
        raise _non_finite_error(x, "x", who)
    scale = 1.0
    if check:
        lo, hi = _value_range(x)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise _non_finite_error(x, "x", who)
        ref = np.zeros(d) if offset is None else offset
        extent = float(np.max(np.maximum(hi - ref, ref - lo)))  # >= max |x - offset| (exact when offset is None)
        if init is not None and not isinstance(init, str):
            c = np.asarray(init, np.float64)
            if c.size and np.isfinite(c).all() and c.shape[-1] == d:
                extent = max(extent, float(np.max(np.abs(c - ref))))
        scale = choose_scale(extent, float(n if w is None else w.sum()), d, who)
    frame = Frame(offset, scale)
    rows = n if rows is None else int(rows)
    if rows < n:
        raise ValueError(f"{who}: rows={rows} is fewer than the {n} points")
    if isinstance(x, jax.Array) and (frame.identity or x.dtype == jnp.float64):
        x32 = x.astype(jnp.float32) if frame.identity else ((x - jnp.asarray(offset)) * scale).astype(jnp.float32)
        if rows > n:  # device data: padded on the device (one small program per shape)
            x32 = jnp.pad(x32, ((0, rows - n), (0, 0)))
    else:
        if frame.identity:
            out = np.asarray(x, np.float32)
        elif offset is None:  # float32-exact values, rescaled by a power of two: exact
            out = (np.asarray(x, np.float32) * np.float32(scale)).astype(np.float32)
        else:
            x = np.asarray(x)
            out = np.empty((n, d), np.float32)
            for start in range(0, n, 1 << 16):
                out[start:start + (1 << 16)] = (x[start:start + (1 << 16)] - offset) * scale
        x32 = _pad_host(out, rows)     # host data stay NumPy: the program's call transfers them
    w32 = _pad_host(np.ones((n,), np.float32) if w is None else w.astype(np.float32), rows)
    return Points(x32, w32 if isinstance(x32, np.ndarray) else jnp.asarray(w32), w, frame, x, n)


def params(*, k, n_init, max_iter, tol, who: str = "kmeans", k_name: str = "k") -> None:
    for name, v in ((k_name, k), ("n_init", n_init), ("max_iter", max_iter)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{who}: {name} must be an integer >= 1, got {v!r}")
    try:
        t = float(tol)
    except (TypeError, ValueError):
        t = math.nan
    if isinstance(tol, bool) or not (math.isfinite(t) and t >= 0):
        raise ValueError(f"{who}: tol must be finite and >= 0, got {tol!r}")


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
        rows = (np.asarray(x) if m == n else np.asarray(x[:m]))[np.asarray(w)[:m] > 0]
        found = count_distinct(rows) if rows.size else 0
        if found >= k or m == n:
            return min(found, k)
        m = min(n, 4 * m)


def enough_distinct(x, w, k: int, who: str = "kmeans", n: int | None = None) -> None:
    """Raise unless the positive-weight rows hold at least k distinct points (n: the rows given, when x has
    padding rows of weight 0 after them)."""
    n = x.shape[0] if n is None else n
    if k > n:
        raise ValueError(f"{who}: k={k} is larger than the number of points ({n})")
    found = distinct_up_to(x, w, k)
    if found < k:
        raise ValueError(f"{who}: k={k} is larger than the number of distinct points ({found}) "
                         f"among the {n} points with positive weight")


def centers(init, k: int, d: int, frame: Frame = Frame(None, 1.0), who: str = "kmeans") -> jax.Array:
    """Given initial centres as the program's f32[R, k, d] (a single f32[k, d] becomes R = 1)."""
    c = _shape_and_dtype(init, "init centres", who)
    c = np.asarray(c)
    if c.ndim == 2:
        c = c[None]
    if c.ndim != 3 or c.shape[1:] != (k, d) or c.shape[0] < 1:
        raise ValueError(f"{who}: init centres must have shape ({k}, {d}) or (n_init, {k}, {d}), "
                         f"got {np.shape(init)}")
    c64 = c.astype(np.float64)
    if not np.isfinite(c64).all():
        raise ValueError(f"{who}: init centres contain NaN or inf")
    c32 = frame.to_program(c64)
    if not np.isfinite(c32).all():
        raise ValueError(f"{who}: init centres exceed float32 (max |value| {np.abs(c64).max():.3g}); "
                         "pass check_input=True so the data are rescaled")
    return jnp.asarray(c32)
