"""A parameter pytree at a glance: one row per leaf (path, shape, dtype, count) and the total.

    print(models.summary(params))
    dense_0/w   (784, 1024)  float32    802,816
    ...
"""
from __future__ import annotations

import math

import jax
import numpy as np


def _key_name(key) -> str:
    for attr in ("key", "idx", "name"):   # DictKey, SequenceKey, GetAttrKey
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def flatten(params) -> dict[str, object]:
    """{"dense_0/w": leaf, ...}: every leaf of the pytree under its "/"-joined path."""
    return {"/".join(map(_key_name, path)): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}


def num_params(params) -> int:
    """Total number of scalars in the pytree."""
    return sum(math.prod(np.shape(v)) for v in jax.tree.leaves(params))


def summary(params) -> str:
    """A table of every leaf of a nested-dict ``params`` (sorted by path) and the total count."""
    flat = flatten(params)
    rows = [(path, str(tuple(np.shape(v))), str(getattr(v, "dtype", type(v).__name__)), math.prod(np.shape(v)))
            for path, v in sorted(flat.items())]
    widths = [max([len(r[i]) for r in rows] + [1]) for i in range(3)]
    lines = [f"{p:<{widths[0]}}  {s:<{widths[1]}}  {d:<{widths[2]}}  {n:>12,}" for p, s, d, n in rows]
    lines.append(f"{'total':<{widths[0] + widths[1] + widths[2] + 4}}  {num_params(params):>12,}")
    return "\n".join(lines)
