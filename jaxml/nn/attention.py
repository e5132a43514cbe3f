"""Multi-head dot-product attention with padding and causal masks.

For queries x_q f32[B, Tq, D], keys/values x_kv f32[B, Tk, D], H heads of size d = D / H:

    q = x_q W_q + b_q,  k = x_kv W_k + b_k,  v = x_kv W_v + b_v          (each split into H heads of d)
    s[b, h, i, j] = q[b, i, h] . k[b, j, h] / sqrt(d)      where mask[b, i, j], else the float minimum
    a = softmax_j(s),   out = concat_h(a v) W_o + b_o                    f32[B, Tq, D]

``mask`` bool[B or 1, Tq or 1, Tk], True = may attend; ``padding_mask`` (from lengths or a padding id) and
``causal_mask`` build the usual ones and combine with ``&``. A fully masked row (a padded query) attends
uniformly rather than producing NaN; pooling drops those rows anyway. Params: ``{"q", "k", "v", "o"}`` dense
layers {w f32[D, D], b f32[D]} — PyTorch's in_proj_weight is [W_q; W_k; W_v] transposed.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxml.nn import layers


def init_attention(key, features: int, num_heads: int, *, kernel_init: str = "glorot_uniform",
                   dtype=jnp.float32) -> dict:
    """Four dense layers D -> D named q, k, v, o."""
    if num_heads <= 0 or features % num_heads:
        raise ValueError(f"attention: features {features} must be a positive multiple of num_heads {num_heads}")
    keys = jax.random.split(key, 4)
    return {name: layers.init_dense(k, features, features, kernel_init=kernel_init, dtype=dtype)
            for name, k in zip("qkvo", keys)}


def padding_mask(lengths: jax.Array, length: int) -> jax.Array:
    """bool[B, 1, length]: key j of sequence b is real iff j < lengths[b]."""
    return (jnp.arange(length)[None, :] < jnp.asarray(lengths)[:, None])[:, None, :]


def token_mask(tokens: jax.Array, pad_id: int = 0) -> jax.Array:
    """bool[B, 1, T]: every key whose token is not ``pad_id``."""
    return (tokens != pad_id)[:, None, :]


def causal_mask(length: int) -> jax.Array:
    """bool[1, length, length]: query i may attend to keys j <= i."""
    return jnp.tril(jnp.ones((length, length), bool))[None]


def dot_product_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """softmax(q k^T / sqrt(d)) v per head: q f32[B, Tq, H, d], k, v f32[B, Tk, H, d] -> f32[B, Tq, H, d];
    ``mask`` bool broadcastable to [B, Tq, Tk]."""
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = jnp.where(mask[:, None], scores, jnp.finfo(scores.dtype).min)
    weights = jax.nn.softmax(scores, axis=-1)
    return jnp.einsum("bhqk,bkhd->bqhd", weights, v)


def attention(params: dict, x_q: jax.Array, x_kv: jax.Array | None = None, *, num_heads: int,
              mask: jax.Array | None = None) -> jax.Array:
    """Multi-head attention (module docstring); self-attention when ``x_kv`` is None."""
    x_kv = x_q if x_kv is None else x_kv
    features = params["q"]["w"].shape[1]
    if features % num_heads:
        raise ValueError(f"attention: features {features} is not a multiple of num_heads {num_heads}")
    if x_q.shape[-1] != params["q"]["w"].shape[0]:
        raise ValueError(f"attention: input has {x_q.shape[-1]} features, params expect {params['q']['w'].shape[0]}")

    def heads(name, x):
        return layers.dense(params[name], x).reshape(x.shape[:-1] + (num_heads, features // num_heads))
    out = dot_product_attention(heads("q", x_q), heads("k", x_kv), heads("v", x_kv), mask)
    return layers.dense(params["o"], out.reshape(out.shape[:-2] + (features,)))
