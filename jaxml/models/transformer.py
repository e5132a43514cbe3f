"""Transformer encoder of pre-LN blocks (Vaswani et al. 2017; pre-LN as in ViT), as a ViT or a text classifier.

    front end   "image":  x f32[B, H, W, C] -> patch embedding f32[B, N, D]      (N = HW / P^2; ViT)
                "tokens": x int[B, T] (pad id 0 after the last token) -> token embedding f32[B, T, D]
    [cls]       pool "cls" prepends a learned token c f32[D]
    positions   h = h + learned positions
    block (L):  h = h + drop(attn(LN(h), mask));  h = h + drop(W2 gelu(W1 LN(h))) (exact GELU; optional stoch. depth)
    pool        LN(h), then the class token's row ("cls") or the mean over real positions ("mean") -> dense head

Padding: for tokens (x may be narrower than input_shape: a length bucket), key j of sequence b is masked where
x[b, j] == pad id, or j >= lengths[b] when ``apply(..., lengths=int[B])`` is given; mean pooling averages the
same real positions, so padding never changes the logits. Dropout and stochastic depth draw per example from
``example_ids`` (models/base.py). ``remat=True`` scans the blocks under ``jax.checkpoint`` (nn/remat.py: same
gradients; the backward pass keeps block inputs only).
Params: ``embed``, ``pos``, [``cls``], ``block_i`` {ln1, attn {q, k, v, o}, ln2, mlp_in, mlp_out}, ``ln_out``,
``head_out``.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from jaxml.models.base import Model
from jaxml.nn import attention, embedding, layers, normalization, residual
from jaxml.nn import remat as remat_lib

POOLS = ("cls", "mean")


def _encoder_params(key, blocks: int, dim: int, heads: int, mlp_dim: int) -> dict:
    params = {}
    for i, k in enumerate(jax.random.split(key, blocks)):
        ka, k1, k2 = jax.random.split(k, 3)
        params[f"block_{i}"] = {"ln1": normalization.init_layer_norm(dim),
                                "attn": attention.init_attention(ka, dim, heads),
                                "ln2": normalization.init_layer_norm(dim),
                                "mlp_in": layers.init_dense(k1, dim, mlp_dim),
                                "mlp_out": layers.init_dense(k2, mlp_dim, dim)}
    return params


def make(*, input_shape: Sequence[int], input: str = "tokens", vocab_size: int = 0, patch_size: int = 4,
         dim: int = 64, depth: int = 2, heads: int = 4, mlp_dim: int = 128, pool: str = "mean",
         num_outputs: int = 2, dropout: float = 0.0, stochastic_depth: float = 0.0, pad_id: int = 0,
         remat: bool = False) -> Model:
    """An encoder Model (see models/base.py): ``input="tokens"`` (input_shape (T,), needs vocab_size) or
    ``"image"`` (input_shape (H, W, C), P x P patches)."""
    input_shape = tuple(int(s) for s in input_shape)
    if input == "tokens":
        if len(input_shape) != 1 or vocab_size <= 0:
            raise ValueError(f"transformer on tokens needs input_shape (length,) and vocab_size > 0, got "
                             f"input_shape={input_shape}, vocab_size={vocab_size}")
        length = input_shape[0]
    elif input == "image":
        if len(input_shape) != 3 or input_shape[0] % patch_size or input_shape[1] % patch_size:
            raise ValueError(f"transformer on images needs input_shape (H, W, C) divisible by patch_size "
                             f"{patch_size}, got {input_shape}")
        length = (input_shape[0] // patch_size) * (input_shape[1] // patch_size)
    else:
        raise ValueError(f"transformer input must be 'tokens' or 'image', got {input!r}")
    if pool not in POOLS:
        raise ValueError(f"transformer pool must be one of {POOLS}, got {pool!r}")
    if min(dim, depth, heads, mlp_dim, num_outputs) <= 0 or dim % heads:
        raise ValueError(f"transformer sizes must be positive with dim % heads == 0: dim={dim}, depth={depth}, "
                         f"heads={heads}, mlp_dim={mlp_dim}, num_outputs={num_outputs}")
    for field, rate in (("dropout", dropout), ("stochastic_depth", stochastic_depth)):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"transformer {field} must be in [0, 1), got {rate}")
    positions = length + (pool == "cls")

    def init(key):
        ke, kp, kc, kb, kh = jax.random.split(key, 5)
        params = {"embed": (embedding.init_embedding(ke, vocab_size, dim, stddev=dim ** -0.5) if input == "tokens"
                            else embedding.init_patch_embedding(ke, patch_size, input_shape[2], dim)),
                  "pos": embedding.init_positions(kp, positions, dim),
                  **_encoder_params(kb, depth, dim, heads, mlp_dim),
                  "ln_out": normalization.init_layer_norm(dim),
                  "head_out": layers.init_dense(kh, dim, num_outputs, kernel_init="zeros")}
        if pool == "cls":
            params["cls"] = jnp.zeros((dim,), jnp.float32)
        return params

    def apply(params, x, *, state=None, train=False, key=None, axis_name=None, example_ids=None, lengths=None):
        short_tokens = input == "tokens" and x.ndim == 2 and x.shape[1] <= length        # a length bucket
        if x.shape[1:] != input_shape and not short_tokens:
            raise ValueError(f"transformer expects x of shape [batch, *{input_shape}], got {x.shape}")
        batch = x.shape[0]
        if input == "tokens":
            t = x.shape[1]
            real = (x != pad_id) if lengths is None else (jnp.arange(t)[None, :] < jnp.asarray(lengths)[:, None])
            h = embedding.embedding(params["embed"], x)
        else:
            real = jnp.ones((batch, length), bool)
            h = embedding.patch_embedding(params["embed"], x, patch_size)
        if pool == "cls":
            h = jnp.concatenate([jnp.broadcast_to(params["cls"], (batch, 1, dim)), h], axis=1)
            real = jnp.concatenate([jnp.ones((batch, 1), bool), real], axis=1)
        h = embedding.add_positions(params["pos"], h)
        mask = real[:, None, :]

        def drop(v, i):
            if not train or dropout == 0.0:
                return v
            return layers.dropout(v, dropout, train=True, key=jax.random.fold_in(key, i), example_ids=example_ids)

        def add(h, branch, i):
            if not train or stochastic_depth == 0.0:
                return h + branch
            rate = stochastic_depth * (i // 2 + 1) / depth                  # linearly growing with depth
            return residual.stochastic_depth(h, branch, rate, train=True, key=jax.random.fold_in(key, 10_000 + i),
                                             example_ids=example_ids)

        def block(p, h, i):
            a = attention.attention(p["attn"], normalization.layer_norm(p["ln1"], h), num_heads=heads, mask=mask)
            h = add(h, drop(a, 2 * i + 1), 2 * i)
            m = layers.dense(p["mlp_in"], normalization.layer_norm(p["ln2"], h))
            m = layers.dense(p["mlp_out"], jax.nn.gelu(m, approximate=False))
            return add(h, drop(m, 2 * i + 2), 2 * i + 1), None

        h = drop(h, 0)
        h, _ = remat_lib.chain(lambda h, d, _: block(d[0], h, d[1]), h,
                               [(None, (params[f"block_{i}"], i)) for i in range(depth)], remat=remat)
        h = normalization.layer_norm(params["ln_out"], h)
        pooled = h[:, 0] if pool == "cls" else residual.masked_mean(h, real)
        return layers.dense(params["head_out"], pooled), {}

    extras = ("example_ids", "lengths") if input == "tokens" else ("example_ids",)
    return Model(name="transformer" if input == "tokens" else "vit", init=init, init_state=dict, apply=apply,
                 extras=extras)


def make_vit(*, input_shape: Sequence[int], patch_size: int = 4, dim: int = 64, depth: int = 4, heads: int = 4,
             mlp_dim: int = 128, pool: str = "cls", num_outputs: int = 10, dropout: float = 0.0,
             stochastic_depth: float = 0.0, remat: bool = False) -> Model:
    """A Vision Transformer: ``make(input="image", ...)`` with ViT's defaults (class-token pooling)."""
    return make(input_shape=input_shape, input="image", patch_size=patch_size, dim=dim, depth=depth, heads=heads,
                mlp_dim=mlp_dim, pool=pool, num_outputs=num_outputs, dropout=dropout,
                stochastic_depth=stochastic_depth, remat=remat)
