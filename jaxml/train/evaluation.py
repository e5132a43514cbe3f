"""Metric sums to means, and the one evaluation accumulator, shared by the loop, ``fit`` and the custom-loop API.

A step returns its metrics as masked sums ``{metric: Σ_b m_b v_b, "n": Σ_b m_b}`` (scalars for one run, f32[N]
for a population of N members); sums add exactly across steps, devices and eval batches, and one division at the
end gives the exact mean over every real example: ``mean = sum / max(n, 1)``.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.data import pipeline


@jax.jit
def add_sums(a: dict, b: dict) -> dict:
    """Metric sums accumulated on device, in one compiled program (whatever their sharding)."""
    return jax.tree.map(lambda x, y: x + y, a, b)


def means(sums: dict) -> dict:
    """``{metric: sum / max(n, 1)}``: on device for jax arrays (no host sync), in float64 for host values."""
    if not isinstance(sums["n"], jax.Array):
        sums = {k: np.asarray(v, np.float64) for k, v in sums.items()}
    n = (jnp if isinstance(sums["n"], jax.Array) else np).maximum(sums["n"], 1.0)
    return {k: v / n for k, v in sums.items() if k != "n"}


def member_means(sums: dict, n_members: int | None) -> list[dict]:
    """[{metric: float mean}] per member from host sums (``n_members`` None: scalar sums, one member)."""
    m = means(sums)
    if n_members is None:
        return [{k: float(v) for k, v in m.items()}]
    return [{k: float(v[i]) for k, v in m.items()} for i in range(n_members)]


def eval_sums(eval_step: Callable, params, model_state, arrays: dict, batch_size: int, *,
              put: Callable = lambda b: b, shard: tuple[int, int] = (0, 1)) -> dict:
    """The metric sums of ``eval_step(params, model_state, batch)`` over every example of ``arrays``, in fixed-size
    batches (the last padded and masked: exact, and the step compiles once); device arrays."""
    total = None
    for batch in pipeline.eval_batches(arrays, batch_size, shard=shard):
        sums = eval_step(params, model_state, put(batch))
        total = sums if total is None else add_sums(total, sums)
    return total
