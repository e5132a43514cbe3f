"""Random translations of image training batches, on the host, deterministic in (seed, step).

``ShiftAugmented(source, max_shift, seed=..., pixel_perm=None)`` wraps a training source (anything with
``batch(step, shard=...)``): example b of the batch at ``step`` is moved by (dy_b, dx_b), each drawn
uniformly from {-s, ..., s} by ``numpy.random.default_rng([seed, step, STREAM])``,

    out[b, i, j, c] = x[b, i - dy_b, j - dx_b, c]      (0 where that falls outside the image)

so the same (seed, step) always gives the same batch: resuming, several processes (each takes its
slice of the globally drawn shifts) and populations see exactly what one uninterrupted run sees.
Zero fill is the background of MNIST / Fashion-MNIST (pixels / 255).

Permuted-pixel data (``pixel_perm`` p, ``x_perm.flat[j] = x.flat[p[j]]``) are shifted in image space —
un-permuted, shifted, permuted again — so a permuted twin trains on the same augmented images, only with
its pixels reordered (the report's comparison stays one of architecture, not of augmentation).
"""
from __future__ import annotations

import numpy as np

from jaxml.data import pipeline

STREAM = 0x5A17  # keeps these draws apart from every other use of (seed, step)


def shift_images(x: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Translate each image: x f32[B, H, W, C], dy/dx int[B] (|d| < H, W) -> f32[B, H, W, C], zero fill."""
    b, h, w = x.shape[:3]
    s = int(max(np.max(np.abs(dy), initial=0), np.max(np.abs(dx), initial=0)))
    padded = np.pad(x, ((0, 0), (s, s), (s, s)) + ((0, 0),) * (x.ndim - 3))
    rows = np.arange(h)[None, :] - dy[:, None] + s            # [B, H]
    cols = np.arange(w)[None, :] - dx[:, None] + s            # [B, W]
    return padded[np.arange(b)[:, None, None], rows[:, :, None], cols[:, None, :]]


class ShiftAugmented:
    """A training source whose batches are randomly translated by up to ``max_shift`` pixels (see module doc).
    Every other attribute (batch_size, steps_per_epoch, arrays, ...) is the wrapped source's."""

    def __init__(self, source, max_shift: int, *, seed: int, pixel_perm: np.ndarray | None = None):
        if int(max_shift) != max_shift or max_shift < 1:
            raise ValueError(f"max_shift must be a positive whole number of pixels, got {max_shift!r}")
        self.source, self.max_shift, self.seed = source, int(max_shift), int(seed)
        self.pixel_perm = None if pixel_perm is None else np.asarray(pixel_perm)
        self._inverse = None if pixel_perm is None else np.argsort(self.pixel_perm)

    def __getattr__(self, name):
        return getattr(self.source, name)

    def shifts(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(dy, dx) int[batch_size] of the whole (global) batch at ``step``."""
        rng = np.random.default_rng([self.seed, int(step), STREAM])
        d = rng.integers(-self.max_shift, self.max_shift + 1, size=(2, self.source.batch_size))
        return d[0], d[1]

    def batch(self, step: int, *, shard: tuple[int, int] = (0, 1)) -> pipeline.Batch:
        batch = dict(self.source.batch(step, shard=shard))
        dy, dx = self.shifts(step)
        sl = pipeline.shard_slice(shard, self.source.batch_size)
        x = batch["x"]
        if self.pixel_perm is not None:
            x = x.reshape(len(x), -1)[:, self._inverse].reshape(x.shape)
        x = shift_images(x, dy[sl], dx[sl])
        if self.pixel_perm is not None:
            x = x.reshape(len(x), -1)[:, self.pixel_perm].reshape(x.shape)
        batch["x"] = x.astype(batch["x"].dtype, copy=False)
        return batch
