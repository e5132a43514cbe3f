"""A parameter pytree at a glance: one row per leaf (path, shape, dtype, count) and the total.

    print(models.summary(params))
    dense_0/w   (784, 1024)  float32    802,816
    ...
"""
from __future__ import annotations

import math

import numpy as np
from flax import traverse_util


def num_params(params) -> int:
    """Total number of scalars in the pytree."""
    return sum(math.prod(np.shape(v)) for v in traverse_util.flatten_dict(params).values())


def summary(params) -> str:
    """A table of every leaf of a nested-dict ``params`` (sorted by path) and the total count."""
    flat = traverse_util.flatten_dict(params, sep="/")
    rows = [(path, str(tuple(np.shape(v))), str(getattr(v, "dtype", type(v).__name__)), math.prod(np.shape(v)))
            for path, v in sorted(flat.items())]
    widths = [max([len(r[i]) for r in rows] + [1]) for i in range(3)]
    lines = [f"{p:<{widths[0]}}  {s:<{widths[1]}}  {d:<{widths[2]}}  {n:>12,}" for p, s, d, n in rows]
    lines.append(f"{'total':<{widths[0] + widths[1] + widths[2] + 4}}  {num_params(params):>12,}")
    return "\n".join(lines)
