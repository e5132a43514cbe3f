"""Fixed (not learned) image filters used as input preprocessing.

``gaussian_blur(x, sigma)`` convolves each image with the separable Gaussian
k[i] = exp(-i^2 / (2 sigma^2)) / sum_j exp(-j^2 / (2 sigma^2)),  i = -r..r,  r = int(3 sigma + 0.5)
along H and then W, with edge pixels repeated beyond the border (scipy.ndimage's ``mode="nearest"``,
``truncate=3``), so a constant image is unchanged and the border does not darken.

Why as preprocessing: independent pixel noise of std s comes out with std ~ s / (2 sqrt(pi) sigma)
(0.23 s at sigma = 1.25) while a stroke several pixels long keeps its direction, and an image already
blurred by b becomes sqrt(sigma^2 + b^2), so images blurred by different amounts look more alike.
"""
from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np


def gaussian_kernel(sigma: float) -> np.ndarray:
    """f32[2r + 1] normalised Gaussian taps, r = int(3 sigma + 0.5) (scipy's truncate=3 radius)."""
    if not isinstance(sigma, numbers.Real) or not sigma > 0:
        raise ValueError(f"gaussian_kernel: sigma must be a number > 0 (pixels), got {sigma!r}")
    r = int(3.0 * sigma + 0.5)
    i = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (i / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def gaussian_blur_matrix(n: int, sigma: float) -> np.ndarray:
    """f32[n, n] B with (B v)[i] = sum_t k[t] v[clip(i + t, 0, n - 1)]: the 1-D blur of a length-n signal,
    edge samples repeated (the clipped taps of a border row add up on the edge sample)."""
    k = gaussian_kernel(sigma)
    r = (len(k) - 1) // 2
    b = np.zeros((n, n), np.float64)
    rows = np.arange(n)
    for t in range(-r, r + 1):
        np.add.at(b, (rows, np.clip(rows + t, 0, n - 1)), k[t + r])
    return b.astype(np.float32)


def gaussian_blur(x: jax.Array, sigma: float) -> jax.Array:
    """x: f32[..., H, W, C] -> f32[..., H, W, C], each channel of each image blurred by a Gaussian of
    ``sigma`` pixels (a static Python number; 0 returns x unchanged). Edge pixels are repeated.

    Computed as two matmuls, y = B_H x B_W^T, with the banded matrices of :func:`gaussian_blur_matrix`,
    not as a sum of 2r + 1 shifted slices per axis: XLA:CPU fuses shifted slices into whatever produced x,
    and when x is computed in the same program (e.g. images rendered on the fly) it recomputes x once per tap;
    a dot is never fused into its producer."""
    if not isinstance(sigma, numbers.Real) or sigma < 0:
        raise ValueError(f"gaussian_blur: sigma must be a number >= 0 (pixels), got {sigma!r}")
    if x.ndim < 3:
        raise ValueError(f"gaussian_blur: x must be [..., H, W, C], got shape {tuple(x.shape)}")
    if sigma == 0:
        return x
    bh = jnp.asarray(gaussian_blur_matrix(x.shape[-3], float(sigma)))
    bw = jnp.asarray(gaussian_blur_matrix(x.shape[-2], float(sigma)))
    x = jnp.einsum("hk,...kwc->...hwc", bh, x, precision=jax.lax.Precision.HIGHEST)
    return jnp.einsum("wk,...hkc->...hwc", bw, x, precision=jax.lax.Precision.HIGHEST)
