"""The frame between the user's points and the float32 points the K-means program sees, and the way back.

The program computes in float32 on ``x32 = (x - offset) * scale``.
- offset: x's weighted mean in float64, subtracted on the host when x's dtype holds more than float32 does
  (float64, int32/int64): a 1e8 offset (Unix timestamps) would otherwise round to float32's spacing there
  (8 at 1e8, 128 at 1.7e9) before any centring on the device. None for float32-exact dtypes (float32/16,
  8/16-bit integers, bool), whose values reach the device unchanged.
- scale: a power of two (exact in binary floating point, so the iterates are those of the unscaled data bit
  for bit) chosen when the extent E >= max |x - offset| would let float32 sums of squared distances
  (<= 4 W d E^2 for total weight W) overflow, or when E < 2^-50 would let them underflow; then E * scale
  lies in (1/2, 1]. Data far from float32's range are thus rescaled, not rejected. (``validate.inputs``
  chooses both.)

Back (``restore``), for a frame that is not the identity: centres f64 in user coordinates, and the sizes and
sums of squares recomputed in float64 from the labels on the host (``host_statistics``), so the reported
inertia is that of the user's points. A centre within ``POLISH`` x the RMS spread of the float64 mean of its
final members (the program's float32 rounding of that mean, as at convergence) becomes that mean, with
within_j reduced by W_j ||mean_j - c_j||^2 (exact: the mean minimises the weighted squared distances).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

POLISH = 1e-5   # relative to the RMS distance to the overall mean; float32 rounding of a centre is ~1e-7 of it


class Frame(NamedTuple):
    """x32 = (x - offset) * scale. offset: f64[d] or None (nothing subtracted); scale: a power of two."""

    offset: np.ndarray | None
    scale: float

    @property
    def identity(self) -> bool:
        return self.offset is None and self.scale == 1.0

    def to_program(self, a) -> np.ndarray:
        """User coordinates f[..., d] -> the program's float32 coordinates (in float64, then rounded once)."""
        a = np.asarray(a, np.float64)
        if self.offset is not None:
            a = a - self.offset
        return (a * self.scale).astype(np.float32)

    def from_program(self, c) -> np.ndarray:
        """The program's coordinates f32[..., d] -> user coordinates, f64."""
        c = np.asarray(c, np.float64) / self.scale
        return c if self.offset is None else c + self.offset


def weighted_mean(x, w: np.ndarray | None):
    """f64[d] weighted mean of x (NumPy, or a float64 jax.Array on its device); w None: all ones."""
    if isinstance(x, jax.Array) and x.dtype == jnp.float64:
        return np.asarray(jnp.mean(x, axis=0) if w is None else jnp.dot(jnp.asarray(w, x.dtype), x) / w.sum())
    x = np.asarray(x)
    total = np.zeros(x.shape[1], np.float64)
    for start in range(0, x.shape[0], 1 << 16):  # chunks: no n x d float64 temporary
        chunk = x[start:start + (1 << 16)].astype(np.float64)
        total += chunk.sum(axis=0) if w is None else w[start:start + (1 << 16)] @ chunk
    return total / (x.shape[0] if w is None else w.sum())


def host_statistics(x, w, centers, labels, k: int):
    """Float64 statistics of the user's points x [n, d] (any real dtype) with weights w f64[n] (None: ones),
    centres f64[k, d] and labels i32[n], in chunks of rows (no n x d float64 temporary).

    Returns (centres f64[k, d] polished as the module docstring says, sizes f64[k], within_ss f64[k], total_ss).
    """
    x, labels = np.asarray(x), np.asarray(labels)
    mean = weighted_mean(x, w)
    w = np.ones(len(x)) if w is None else w
    d = x.shape[1]
    within, shift, total = np.zeros(k), np.zeros((k, d)), 0.0
    for a in range(0, len(x), 1 << 16):
        xc, lab, wc = x[a:a + (1 << 16)].astype(np.float64), labels[a:a + (1 << 16)], w[a:a + (1 << 16)]
        diff = xc - centers[lab]
        within += np.bincount(lab, wc * np.einsum("ij,ij->i", diff, diff), minlength=k)
        for j in range(d):  # sum_i w_i (x_i - c_label_i) per cluster: the way from c_j to its members' mean
            shift[:, j] += np.bincount(lab, wc * diff[:, j], minlength=k)
        dm = xc - mean
        total += float(wc @ np.einsum("ij,ij->i", dm, dm))
    sizes = np.bincount(labels, w, minlength=k)
    delta = shift / np.where(sizes > 0, sizes, 1.0)[:, None]
    rms = np.sqrt(total / w.sum())
    polish = (sizes > 0) & (np.abs(delta).max(axis=1) <= POLISH * rms)
    centers = np.where(polish[:, None], centers + delta, centers)
    within = np.maximum(within - np.where(polish, sizes * np.einsum("ij,ij->i", delta, delta), 0.0), 0.0)
    return centers, sizes, within, np.float64(total)


def restore(result, points):
    """A ``fit.KMeansResult`` of the program in the user's coordinates (module docstring), given the
    ``validate.Points`` it ran on; unchanged for the identity frame.

    Labels on other hosts (a multi-process mesh) cannot be read here: the centres are then mapped back and the
    statistics are the program's float32 ones, rescaled."""
    frame = points.frame
    if frame.identity:
        return result
    centers = frame.from_program(result.centers)
    k = centers.shape[0]
    if not isinstance(result.labels, jax.Array) or result.labels.is_fully_addressable:
        centers, sizes, within, total = host_statistics(points.source, points.w64, centers, result.labels, k)
    else:
        def squares(v):
            return np.asarray(v, np.float64) / frame.scale ** 2
        sizes, within, total = np.asarray(result.sizes, np.float64), squares(result.within_ss), \
            squares(result.total_ss)
    inertia = np.float64(within.sum())
    return result._replace(centers=centers, inertia=inertia, sizes=sizes, within_ss=within,
                           between_ss=np.float64(total - inertia), total_ss=total)
