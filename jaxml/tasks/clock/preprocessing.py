"""Input preprocessing of the clock images: the contrast curve, per-image detrending and the run's chain.

:func:`preprocess` builds the config's chain x -> x (f32[..., 150, 150, 1]): a fixed Gaussian pre-blur
(jaxml/data/filters.py), the contrast curve, then the normalisation. Why: the renderer's lighting gradient,
contrast, blur and noise vary per image; the chain makes differently lit and blurred clocks alike.
"""
from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp

from jaxml.data import filters
from jaxml.train import config as config_lib


def contrast_curve(x: jax.Array, gamma: float) -> jax.Array:
    """The report's preprocessing: ``y = clip(x, 0, 1) ** gamma`` on pixels in [0, 1].

    For gamma > 1 every pixel gets darker (y <= x), and dark pixels relatively more so
    (y / x = x ** (gamma - 1) grows with x): hands and ticks stand out from a grey face.
    0 and 1 are fixed points; the curve is monotone increasing."""
    if isinstance(gamma, numbers.Real) and not gamma > 0:  # (a traced gamma is not checked)
        raise ValueError(f"contrast_curve: gamma must be > 0, got {gamma!r}")
    return jnp.clip(x, 0.0, 1.0) ** gamma


def detrend_standardize(x: jax.Array, eps: float = 1e-3) -> jax.Array:
    """Per image: remove the least-squares plane a + b X + c Y, then scale to unit standard deviation.

    x: f32[..., H, W, C] (pixels in any range). With centred coordinates X, Y on the square grid, the
    plane's basis {1, X, Y} is orthogonal, so a = mean(x), b = <x, X> / <X, X>, c = <x, Y> / <Y, Y>.
    The result is unchanged by a contrast change ``0.5 + k (x - 0.5)`` (k > 0) and by an added linear
    brightness ramp, and nearly so by a multiplicative one ``x (1 + g ramp)`` — the renderer's lighting
    gradient — whose first-order part is such a ramp. ``eps`` floors the standard deviation (a blank image
    stays ~0 instead of amplifying its noise)."""
    h, w = x.shape[-3], x.shape[-2]
    gy = jnp.arange(h, dtype=jnp.float32)[:, None, None] - (h - 1) / 2.0
    gx = jnp.arange(w, dtype=jnp.float32)[None, :, None] - (w - 1) / 2.0
    axes = (-3, -2)
    mean = jnp.mean(x, axis=axes, keepdims=True)
    bx = jnp.sum(x * gx, axis=axes, keepdims=True) / (h * jnp.sum(gx * gx))
    by = jnp.sum(x * gy, axis=axes, keepdims=True) / (w * jnp.sum(gy * gy))
    r = x - mean - bx * gx - by * gy
    return r / jnp.maximum(jnp.sqrt(jnp.mean(r * r, axis=axes, keepdims=True)), eps)


NORMALIZE = ("none", "detrend")


def preprocess(config):
    """The run's image preprocessing x -> x, in this order: a fixed Gaussian blur of ``data.preblur_sigma``
    pixels (0 = none; :func:`filters.gaussian_blur` — cuts pixel noise to ~1 / (3.5 sigma) of its std and makes
    differently blurred clocks alike), the report's contrast curve when ``data.contrast_gamma`` != 1, then
    ``data.normalize``: "none", or "detrend" (per image: remove the best-fit brightness plane and scale to unit
    variance, :func:`detrend_standardize` — blind to contrast and to linear lighting ramps)."""
    gamma = float(config.data.get("contrast_gamma", 1.0))
    normalize = config.data.get("normalize", "none")
    if normalize not in NORMALIZE:
        raise config_lib.ConfigError(f"config.data.normalize must be one of {NORMALIZE}, got {normalize!r}")
    sigma = config.data.get("preblur_sigma", 0.0)
    if not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or not 0.0 <= sigma <= 5.0:
        raise config_lib.ConfigError(f"config.data.preblur_sigma must be a number of pixels in [0, 5], got {sigma!r}")
    blur = (lambda x: filters.gaussian_blur(x, float(sigma))) if sigma else (lambda x: x)
    curve = (lambda x: contrast_curve(blur(x), gamma)) if gamma != 1.0 else blur
    if normalize == "detrend":
        return lambda x: detrend_standardize(curve(x))
    return curve
