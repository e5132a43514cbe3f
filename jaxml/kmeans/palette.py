"""Colour palettes: cluster an image's RGB pixels, largest cluster first, as hex codes and shares.

The from-scratch recipe: thumbnail the image (200 x 400 in the book), treat every pixel as a point
in RGB space [0, 255]^3, cluster into k colours, sort the clusters by size and print
``#rrggbb  share``. The thumbnail samples pixels (nearest neighbour) rather than blending them,
so no colour that is not in the image appears at edges.

Transparency: images with an alpha channel load as RGBA; fully transparent pixels (alpha = 0) are skipped —
their RGB is whatever the encoder left there (often black), not a colour anyone sees. Partly transparent
pixels count as whole pixels (alpha is not used as a weight).

Image modes (``to_rgb``): 1, L, LA, P (with its transparency), RGB, RGBA, CMYK, YCbCr go through Pillow's exact
8-bit conversions; 16-bit grey (I;16*, and I, read on the 16-bit scale) is scaled by 255 / 65535 and float F
(values in [0, 1]) by 255, both rounded — Pillow's own conversion of these clips every level above 255 to
white. An animated image gives its first frame, said on stderr.
"""
from __future__ import annotations

import sys
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


# Modes Pillow converts to 8-bit RGB(A) exactly; the wide grey modes are scaled here (Pillow clips them).
PILLOW_MODES = ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "HSV")
WIDE_GREY_SCALE = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535, "F": 1}


def to_rgb(img, name: str = "image") -> np.ndarray:
    """uint8[h, w, 3] RGB of a PIL image in any mode jaxml knows (uint8[h, w, 4] RGBA when it has transparency):
    8-bit modes by Pillow's conversion; 16-bit grey (I;16*, I) as ``rint(v * 255 / 65535)`` and F as
    ``rint(v * 255)``, a colour-key transparency giving alpha 0. Values outside the mode's range fail naming
    ``name``, the mode, the range and the first bad pixel."""
    if img.mode in PILLOW_MODES:
        return np.asarray(img.convert("RGBA" if has_alpha(img) else "RGB"), dtype=np.uint8)
    if img.mode not in WIDE_GREY_SCALE:
        raise ValueError(f"{name}: image mode {img.mode!r} is not supported; known: "
                         f"{', '.join(PILLOW_MODES + tuple(WIDE_GREY_SCALE))}")
    top = WIDE_GREY_SCALE[img.mode]
    grey = np.asarray(img).astype(np.float64)
    bad = ~((grey >= 0) & (grey <= top))                          # NaN fails both comparisons
    if bad.any():
        y, x = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"{name}: mode {img.mode} pixels must lie in [0, {top}]; pixel (row {y}, column {x}) "
                         f"is {np.asarray(img)[y, x].item()}")
    level = np.rint(grey * (255.0 / top)).astype(np.uint8)
    channels = [level, level, level]
    key = img.info.get("transparency")
    if isinstance(key, (int, float)):
        channels.append(np.where(grey == key, 0, 255).astype(np.uint8))
    return np.stack(channels, axis=-1)


def load_pixels(path: str, thumbnail: tuple[int, int] | None = (200, 400)) -> np.ndarray:
    """uint8[h, w, 3] RGB pixels of the image at ``path`` (uint8[h, w, 4] RGBA when it has transparency), any
    mode ``to_rgb`` knows, its first frame when animated, shrunk to fit ``thumbnail`` (w, h) if larger."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as img:
            frames = getattr(img, "n_frames", 1)
            if frames > 1:
                print(f"palette: {path} has {frames} frames; using the first", file=sys.stderr)
            pixels = to_rgb(img, f"image {path!r}")
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"cannot read image {path!r}: {e}") from None
    return pixels if thumbnail is None else _shrink(pixels, thumbnail)


def thumbnail(pixels, size: tuple[int, int] = (200, 400)) -> np.ndarray:
    """uint8[h', w', c] ``pixels`` (uint8[h, w, 3 | 4], an image already in memory, e.g.
    ``sklearn.datasets.load_sample_image``) shrunk to fit ``size`` (w, h) keeping the aspect ratio, nearest
    neighbour as ``load_pixels`` (so ``thumbnail(image) == load_pixels(its file)``); unchanged when it fits."""
    rgb = np.asarray(pixels)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[-1] not in (3, 4):
        raise ValueError(f"thumbnail: pixels must be uint8[h, w, 3 | 4], got {rgb.dtype}{list(rgb.shape)}")
    return _shrink(rgb, size)


def _shrink(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image
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
