"""Layer normalisation over the last axis (batch norm, which carries running statistics, is in layers.py).

    y = (x - mean(x)) / sqrt(var(x) + eps) * scale + bias,   mean / biased var over the last axis of x f32[..., D]

Params ``{"scale": f32[D] (ones), "bias": f32[D] (zeros)}``; eps 1e-5 as PyTorch's nn.LayerNorm (flax: 1e-6).
Why per example, not per batch: a transformer's statistics must not depend on the other sequences of the
batch or on padding, so it has no state and trains alike on any device layout.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


def init_layer_norm(features: int, dtype=jnp.float32) -> dict:
    """Params ``{"scale": ones[features], "bias": zeros[features]}``."""
    if features <= 0:
        raise ValueError(f"layer_norm features must be positive, got {features}")
    return {"scale": jnp.ones((features,), dtype), "bias": jnp.zeros((features,), dtype)}


def layer_norm(params: dict, x: jax.Array, *, eps: float = 1e-5) -> jax.Array:
    """Normalise each x[..., :] to zero mean and unit (biased) variance, then scale and shift."""
    if x.shape[-1] != params["scale"].shape[0]:
        raise ValueError(f"layer_norm: x has {x.shape[-1]} features, params have {params['scale'].shape[0]}")
    mean = jnp.mean(x, axis=-1, keepdims=True)
    centred = x - mean
    var = jnp.mean(jnp.square(centred), axis=-1, keepdims=True)
    return centred * lax.rsqrt(var + eps) * params["scale"] + params["bias"]
