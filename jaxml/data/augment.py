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

``CropFlipAugmented`` (random crop with zero padding, horizontal flip; CIFAR-style) runs a jitted pure function
whose draws for an example depend on (seed, step, its index in the global batch) only.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

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


# ----------------------------------------------------------------------------- random crop + flip (jitted)
CROP_FLIP_STREAM = 0xC20F  # folded into the seed's key: these draws are apart from dropout's (seed, step) key


def crop_flip_draws(seed, step, example_ids: jax.Array, pad: int, flip: bool):
    """(dy, dx int32[B] in [0, 2 pad], mirror bool[B]) for the examples with global batch indices
    ``example_ids`` at ``step``: from fold_in(fold_in(fold_in(key(seed), STREAM), step), id) alone."""
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), CROP_FLIP_STREAM), step)
    keys = jax.vmap(jax.random.fold_in, (None, 0))(key, example_ids)

    def draw(k):
        ky, kx, kf = jax.random.split(k, 3)
        return (jax.random.randint(ky, (), 0, 2 * pad + 1), jax.random.randint(kx, (), 0, 2 * pad + 1),
                jax.random.bernoulli(kf) & flip)
    return jax.vmap(draw)(keys)


@functools.partial(jax.jit, static_argnames=("pad", "flip"))
def crop_flip(x: jax.Array, seed, step, example_ids: jax.Array, *, pad: int, flip: bool) -> jax.Array:
    """Random crop with zero padding and horizontal flip, per example: x f32[B, H, W, C] ->

        out[b, i, j] = xp[b, dy_b + i, dx_b + j'],   j' = W - 1 - j if mirror_b else j,

    with xp = x zero-padded by ``pad`` on each side (standardised data: 0 is the mean pixel) and the draws of
    ``crop_flip_draws`` — a pure function of (seed, step, global example index), so a shard of a batch, a
    resumed run and any number of devices see the same images."""
    dy, dx, mirror = crop_flip_draws(seed, step, example_ids, pad, flip)
    h, w = x.shape[1:3]
    padded = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))

    def one(img, oy, ox, m):
        out = lax.dynamic_slice(img, (oy, ox, 0), (h, w, img.shape[-1]))
        return jnp.where(m, out[:, ::-1], out)
    return jax.vmap(one)(padded, dy, dx, mirror)


class CropFlipAugmented:
    """A training source whose batches are randomly cropped (``pad`` > 0) and mirrored (``flip``) by
    ``crop_flip``; every other attribute is the wrapped source's."""

    def __init__(self, source, *, pad: int, flip: bool, seed: int):
        if isinstance(pad, bool) or int(pad) != pad or pad < 0 or (pad == 0 and not flip):
            raise ValueError(f"crop padding must be a whole number of pixels >= 0 (with flip, or > 0), got "
                             f"pad={pad!r}, flip={flip!r}")
        self.source, self.pad, self.flip, self.seed = source, int(pad), bool(flip), int(seed)

    def __getattr__(self, name):
        return getattr(self.source, name)

    def batch(self, step: int, *, shard: tuple[int, int] = (0, 1)) -> pipeline.Batch:
        batch = dict(self.source.batch(step, shard=shard))
        x = batch["x"]
        start = shard[0] * len(x)                      # this process's rows of the global batch
        ids = jnp.arange(start, start + len(x), dtype=jnp.int32)
        out = crop_flip(jnp.asarray(x), self.seed, int(step), ids, pad=self.pad, flip=self.flip)
        batch["x"] = np.asarray(out).astype(x.dtype, copy=False)
        return batch
