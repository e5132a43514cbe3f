"""Embeddings: token lookup, learned positions and ViT patch embedding, as ``init_*`` / apply pairs.

    embedding:        table f32[V, D];    ids int[...] -> table[ids] f32[..., D]
    positions:        table f32[T, D];    x f32[B, t, D] -> x + table[:t]        (t <= T)
    patch embedding:  a P x P stride-P conv as one matmul: x f32[B, H, W, C] -> f32[B, (H/P)(W/P), D],
                      patches in row-major order, each flattened (row, column, channel) before the
                      kernel f32[P*P*C, D] — the layout of a HWIO conv kernel reshaped.

Why a gather (``jnp.take``) and not a one-hot matmul: its gradient is a scatter-add touching only the rows
used, so a 30k-word table costs nothing per step beyond the batch's words.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxml.nn import initializers


def init_embedding(key, num_embeddings: int, features: int, *, stddev: float = 1.0, dtype=jnp.float32) -> dict:
    """Params ``{"table": f32[num_embeddings, features]}`` ~ N(0, stddev^2) (PyTorch's nn.Embedding: stddev 1)."""
    if num_embeddings <= 0 or features <= 0:
        raise ValueError(f"embedding sizes must be positive, got num_embeddings={num_embeddings}, features={features}")
    return {"table": stddev * jax.random.normal(key, (num_embeddings, features), dtype)}


def embedding(params: dict, ids: jax.Array) -> jax.Array:
    """table[ids]: int[...] -> f32[..., D]. Ids outside [0, V) are clipped (XLA's gather semantics); the
    data pipelines check their ids when they build them."""
    return jnp.take(params["table"], jnp.asarray(ids), axis=0, mode="clip")


def init_positions(key, max_length: int, features: int, *, stddev: float = 0.02, dtype=jnp.float32) -> dict:
    """Learned positions ``{"table": f32[max_length, features]}`` ~ N(0, stddev^2) (BERT / ViT: 0.02)."""
    return init_embedding(key, max_length, features, stddev=stddev, dtype=dtype)


def add_positions(params: dict, x: jax.Array) -> jax.Array:
    """x f32[B, t, D] + table[:t]; a sequence longer than the table fails with both lengths."""
    t, max_length = x.shape[-2], params["table"].shape[0]
    if t > max_length:
        raise ValueError(f"positions: sequence length {t} exceeds the {max_length} learned positions")
    return x + params["table"][:t]


def init_patch_embedding(key, patch: int, in_channels: int, features: int, *, kernel_init: str = "lecun_normal",
                         dtype=jnp.float32) -> dict:
    """Params ``{"w": f32[patch*patch*in_channels, features], "b": f32[features]}``."""
    fan_in = patch * patch * in_channels
    return {"w": initializers.get(kernel_init)(key, (fan_in, features), dtype), "b": jnp.zeros((features,), dtype)}


def patchify(x: jax.Array, patch: int) -> jax.Array:
    """f32[B, H, W, C] -> f32[B, (H/P)(W/P), P*P*C], non-overlapping P x P patches row by row."""
    b, h, w, c = x.shape
    if h % patch or w % patch:
        raise ValueError(f"patch size {patch} does not divide the image size {h}x{w}")
    x = x.reshape(b, h // patch, patch, w // patch, patch, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // patch) * (w // patch), patch * patch * c)


def patch_embedding(params: dict, x: jax.Array, patch: int) -> jax.Array:
    """patchify(x) @ w + b: the stride-P convolution of ViT's stem, f32[B, H, W, C] -> f32[B, N, D]."""
    return patchify(x, patch) @ params["w"] + params["b"]
