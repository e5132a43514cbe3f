"""Residual composition, stochastic depth and pooling over space or time.

    residual:          y = x + branch(x)          (a projection shortcut is the caller's: y = P x + branch(x))
    stochastic depth:  y = x + keep_b / (1 - rate) * branch(x) in training, keep_b ~ Bernoulli(1 - rate) per
                       example b (Huang et al. 2016); y = x + branch(x) at evaluation
    global_avg_pool:   f32[B, H, W, C] -> f32[B, C], the mean over H and W
    masked_mean:       f32[B, T, D], mask [B, T] -> sum_t mask x / max(sum_t mask, 1)  f32[B, D]

The stochastic-depth draw of example b is ``layers.dropout_keep`` on (key, example_ids[b]) alone, so like
dropout it is the same on 1 device or N.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxml.nn import layers


def residual(branch: Callable[[jax.Array], jax.Array], x: jax.Array, shortcut=None) -> jax.Array:
    """branch(x) + (x if shortcut is None else shortcut(x)); shapes must agree."""
    y = branch(x)
    s = x if shortcut is None else shortcut(x)
    if y.shape != s.shape:
        raise ValueError(f"residual: branch output {y.shape} and shortcut {s.shape} differ; add a projection")
    return s + y


def stochastic_depth(x: jax.Array, branch_out: jax.Array, rate, *, train: bool, key=None,
                     example_ids=None) -> jax.Array:
    """x + branch_out with the branch dropped per example at ``rate`` in training (scaled by 1/(1 - rate))."""
    if not train or (isinstance(rate, (int, float)) and rate == 0):
        return x + branch_out
    if key is None:
        raise ValueError("stochastic_depth in training mode needs a PRNG key (pass key=...)")
    keep = layers.dropout_keep(key, 1.0 - rate, branch_out.shape[:1], example_ids)
    scale = jnp.where(keep, 1.0 / (1.0 - rate), 0.0).astype(x.dtype)
    return x + scale.reshape((-1,) + (1,) * (x.ndim - 1)) * branch_out


def global_avg_pool(x: jax.Array) -> jax.Array:
    """f32[B, H, W, C] -> f32[B, C]."""
    if x.ndim != 4:
        raise ValueError(f"global_avg_pool expects NHWC f32[batch, height, width, channels], got shape {x.shape}")
    return jnp.mean(x, axis=(1, 2))


def masked_mean(x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """Mean of x f32[B, T, D] over the T positions where mask [B, T] is nonzero (all when None)."""
    if mask is None:
        return jnp.mean(x, axis=1)
    m = mask.astype(x.dtype)[..., None]
    return jnp.sum(x * m, axis=1) / jnp.maximum(jnp.sum(m, axis=1), 1.0)
