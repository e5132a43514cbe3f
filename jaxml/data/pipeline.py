"""Deterministic, resumable batching.

Every training batch is a pure function of (seed, step): ``ArraySource.batch(step)`` permutes the
examples with a generator seeded by (seed, epoch) and takes the step's slice of that epoch, and
``GeneratedSource.batch(step)`` renders a batch from ``fold_in(key(seed), step)``. There is no iterator
state to save: a run resumed at step s sees exactly the batches an uninterrupted run would.

Multi-process runs pass ``shard=(process_index, process_count)``: each process gets its contiguous
slice of the same global batch (the order ``jax.make_array_from_process_local_data`` expects).
"""
from __future__ import annotations

from typing import Callable, Iterator, NamedTuple

import jax
import numpy as np

Batch = dict  # {"x": ..., "y": ..., ...} of numpy / jax arrays sharing the leading batch axis


def _check_arrays(arrays: dict) -> int:
    sizes = {k: len(v) for k, v in arrays.items()}
    if not sizes or len(set(sizes.values())) != 1:
        raise ValueError(f"arrays must be non-empty and share their first dimension, got sizes {sizes}")
    return next(iter(sizes.values()))


def shard_slice(shard: tuple[int, int], batch_size: int) -> slice:
    """The rows of a global batch that process ``index`` of ``count`` (``shard``) loads."""
    index, count = shard
    if batch_size % count:
        raise ValueError(f"global batch size {batch_size} is not divisible by the process count {count}")
    per = batch_size // count
    return slice(index * per, (index + 1) * per)


class ArraySource:
    """In-memory arrays served as shuffled fixed-size training batches (remainder dropped per epoch)."""

    def __init__(self, arrays: dict, batch_size: int, *, seed: int = 0, shuffle: bool = True):
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        self.num_examples = _check_arrays(self.arrays)
        if batch_size <= 0 or batch_size > self.num_examples:
            raise ValueError(f"batch_size {batch_size} must be in [1, {self.num_examples}] (the number of examples)")
        self.batch_size, self.seed, self.shuffle = batch_size, seed, shuffle
        self.steps_per_epoch = self.num_examples // batch_size
        self._perm_epoch, self._perm = None, None

    def permutation(self, epoch: int) -> np.ndarray:
        """The example order of ``epoch``: a function of (seed, epoch) only."""
        if self._perm_epoch != epoch:
            self._perm = (np.random.default_rng([self.seed, epoch]).permutation(self.num_examples)
                          if self.shuffle else np.arange(self.num_examples))
            self._perm_epoch = epoch
        return self._perm

    def batch(self, step: int, *, shard: tuple[int, int] = (0, 1)) -> Batch:
        epoch, i = divmod(int(step), self.steps_per_epoch)
        batch = self.permutation(epoch)[i * self.batch_size:(i + 1) * self.batch_size]
        idx = batch[shard_slice(shard, self.batch_size)]
        return {k: v[idx] for k, v in self.arrays.items()}


class GeneratedSource:
    """Batches rendered by a pure function ``make_batch(key, batch_size) -> Batch`` from fold_in(seed, step).

    ``make_batch`` is jitted whole unless ``jit=False`` (it then compiles its own parts: a maker whose stages
    XLA would fuse badly, like an image renderer followed by a per-image reduction)."""

    def __init__(self, make_batch: Callable[[jax.Array, int], Batch], batch_size: int, *, seed: int = 0,
                 steps_per_epoch: int = 1000, jit: bool = True):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.make_batch = jax.jit(make_batch, static_argnums=1) if jit else make_batch
        self.batch_size, self.seed, self.steps_per_epoch = batch_size, seed, steps_per_epoch
        self._key = jax.random.key(seed)

    def batch(self, step: int, *, shard: tuple[int, int] = (0, 1)) -> Batch:
        b = self.make_batch(jax.random.fold_in(self._key, int(step)), self.batch_size)
        sl = shard_slice(shard, self.batch_size)
        return {k: np.asarray(v)[sl] for k, v in b.items()}


def eval_batches(arrays: dict, batch_size: int, *, shard: tuple[int, int] = (0, 1)) -> Iterator[Batch]:
    """All examples in order, in fixed-size batches; the last batch is padded and every batch carries
    ``mask`` f32[batch] (1 = real example) so metrics are exact and the step compiles once."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    n = _check_arrays(arrays)
    sl = shard_slice(shard, batch_size)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        pad = batch_size - (stop - start)
        b = {k: np.concatenate([v[start:stop], np.zeros((pad,) + v.shape[1:], v.dtype)]) if pad else v[start:stop]
             for k, v in arrays.items()}
        b["mask"] = np.concatenate([np.ones(stop - start, np.float32), np.zeros(pad, np.float32)])
        yield {k: v[sl] for k, v in b.items()}


class Splits(NamedTuple):
    """What a dataset builder returns: a training source, evaluation arrays per split name
    (e.g. {"validation": ..., "test": ...}), and the shape of one input example."""
    train: ArraySource | GeneratedSource
    eval: dict
    input_shape: tuple
    info: dict = {}
