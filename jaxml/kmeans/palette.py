"""Colour palettes: cluster an image's RGB pixels, largest cluster first, as hex codes and shares.

The from-scratch recipe: thumbnail the image (200 x 400 in the book), treat every pixel as a point
in RGB space [0, 255]^3, cluster into k colours, sort the clusters by size and print
``#rrggbb  share``. The thumbnail samples pixels (nearest neighbour) rather than blending them,
so no colour that is not in the image appears at edges.

Transparency: images with an alpha channel load as RGBA; fully transparent pixels (alpha = 0) are skipped —
their RGB is whatever the encoder left there (often black), not a colour anyone sees. Partly transparent
pixels count as whole pixels (alpha is not used as a weight).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jaxml.kmeans.auto_k import kmeans_auto_k
from jaxml.kmeans.fit import KMeansResult, kmeans


class Palette(NamedTuple):
    colors: np.ndarray   # uint8[k, 3] RGB, largest cluster first
    shares: np.ndarray   # f64[k] fraction of the (non-transparent) pixels per colour (sums to 1)
    fit: KMeansResult    # the clustering behind it (cluster order as fitted, not sorted; labels per kept pixel)

    def lines(self) -> list[str]:
        """One ``#rrggbb  0.4213`` line per colour."""
        return [f"{hex_color(c)}  {s:.4f}" for c, s in zip(self.colors, self.shares)]


def hex_color(rgb) -> str:
    r, g, b = (int(v) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def parse_size(text: str) -> tuple[int, int]:
    """'200x400' -> (200, 400) (width, height)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"thumbnail must look like WIDTHxHEIGHT (e.g. 200x400), got {text!r}") from None
    if w < 1 or h < 1:
        raise ValueError(f"thumbnail sides must be >= 1, got {text!r}")
    return w, h


def has_alpha(img) -> bool:
    """Whether a PIL image carries transparency (an alpha band, or a palette / colour-key transparency)."""
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def load_pixels(path: str, thumbnail: tuple[int, int] | None = (200, 400)) -> np.ndarray:
    """uint8[h, w, 3] RGB pixels of the image at ``path`` (uint8[h, w, 4] RGBA when it has transparency),
    shrunk to fit ``thumbnail`` (w, h) if larger."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as img:
            img = img.convert("RGBA" if has_alpha(img) else "RGB")
            if thumbnail is not None:
                img.thumbnail(thumbnail, resample=Image.Resampling.NEAREST)
            return np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"cannot read image {path!r}: {e}") from None


def thumbnail(pixels, size: tuple[int, int] = (200, 400)) -> np.ndarray:
    """uint8[h', w', c] ``pixels`` (uint8[h, w, 3 | 4], an image already in memory, e.g.
    ``sklearn.datasets.load_sample_image``) shrunk to fit ``size`` (w, h) keeping the aspect ratio, nearest
    neighbour as ``load_pixels`` (so ``thumbnail(image) == load_pixels(its file)``); unchanged when it fits."""
    from PIL import Image
    rgb = np.asarray(pixels)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[-1] not in (3, 4):
        raise ValueError(f"thumbnail: pixels must be uint8[h, w, 3 | 4], got {rgb.dtype}{list(rgb.shape)}")
    img = Image.fromarray(rgb, "RGBA" if rgb.shape[-1] == 4 else "RGB")
    img.thumbnail(size, resample=Image.Resampling.NEAREST)
    return np.asarray(img, dtype=np.uint8)


def pixel_points(pixels) -> np.ndarray:
    """f32[m, 3] RGB points of ``pixels`` ([..., 3] RGB or [..., 4] RGBA, values in [0, 255]); RGBA pixels
    with alpha 0 are dropped. Non-finite or out-of-range values fail naming the first such pixel."""
    rgb = np.asarray(pixels)
    if rgb.ndim < 2 or rgb.shape[-1] not in (3, 4):
        raise ValueError(f"palette: pixels must have shape [..., 3] (RGB) or [..., 4] (RGBA), got {rgb.shape}")
    if not (np.issubdtype(rgb.dtype, np.integer) or np.issubdtype(rgb.dtype, np.floating)):
        raise ValueError(f"palette: pixels must be integers or floats in [0, 255], got dtype {rgb.dtype}")
    flat = rgb.reshape(-1, rgb.shape[-1])
    bad = ~((flat >= 0) & (flat <= 255))  # NaN fails both comparisons
    if bad.any():
        i = int(np.flatnonzero(bad.any(axis=1))[0])
        raise ValueError(f"palette: pixels has {int(bad.any(axis=1).sum())} pixels with values outside [0, 255] "
                         f"or NaN (first: pixel {i}: {flat[i].tolist()})")
    if flat.shape[1] == 4:
        flat = flat[flat[:, 3] > 0, :3]
        if not len(flat):
            raise ValueError("palette: every pixel is fully transparent (alpha = 0): no colour to cluster")
    return flat.astype(np.float32)


def palette(pixels, k: int = 5, *, auto_k: bool = False, k_max: int = 10, criterion: str = "ch", n_init: int = 4,
            seed=0, **kmeans_args) -> Palette:
    """Palette of ``pixels`` (uint8/float [..., 3] RGB or [..., 4] RGBA in [0, 255]; alpha-0 pixels skipped);
    ``auto_k`` picks k <= k_max by ``criterion``."""
    x = pixel_points(pixels)
    if auto_k:
        fit = kmeans_auto_k(x, k_max, criterion=criterion, n_init=n_init, seed=seed, **kmeans_args).result
    else:
        fit = kmeans(x, k, n_init=n_init, seed=seed, **kmeans_args)
    sizes = np.asarray(fit.sizes, dtype=np.float64)
    order = np.argsort(-sizes, kind="stable")
    colors = np.clip(np.rint(np.asarray(fit.centers)[order]), 0, 255).astype(np.uint8)
    return Palette(colors, sizes[order] / sizes.sum(), fit)


def swatch(p: Palette, cell: int = 100, bar: int = 24) -> np.ndarray:
    """uint8[cell + bar, cell * k, 3]: one square per colour, and below a bar with widths ~ shares."""
    k = len(p.colors)
    img = np.zeros((cell + bar, cell * k, 3), np.uint8)
    for i, c in enumerate(p.colors):
        img[:cell, i * cell:(i + 1) * cell] = c
    edges = np.rint(np.concatenate([[0], np.cumsum(p.shares)]) * cell * k).astype(int)
    for i, c in enumerate(p.colors):
        img[cell:, edges[i]:max(edges[i + 1], edges[i] + 1)] = c
    return img
