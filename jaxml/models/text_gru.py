"""Text classifier: token embedding -> GRU layers (models/gru.py) -> pooled states -> dense head.

    x int[B, T] token ids, pad id 0 after each text's last token (or ``apply(..., lengths=int[B])``)
    e = embed(x) f32[B, T, E], dropout(e);  h_t = GRU(e) f32[B, T, H] with steps t >= length frozen
    pool "last": the state after each text's last token;  "mean": the mean of h_t over its real steps
    bidirectional: a second GRU reads each text reversed within its own length; the two pools are concatenated
    y = dense(dropout(pool)) f32[B, num_outputs]

Why lengths rather than a mask inside the cell: the GRU's custom VJP already freezes the state past each
sequence's end (gru.scan), so padding to a length bucket changes neither the logits nor the gradients.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from jaxml.models import gru
from jaxml.models.base import Model
from jaxml.nn import embedding, layers, residual

POOLS = ("last", "mean")


def reverse_within_lengths(x: jax.Array, lengths: jax.Array) -> jax.Array:
    """out[b, t] = x[b, lengths[b] - 1 - t] for t < lengths[b], x[b, t] after (the padding stays in place)."""
    t = jnp.arange(x.shape[1])[None, :]
    idx = jnp.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
    return jnp.take_along_axis(x, idx.reshape(idx.shape + (1,) * (x.ndim - 2)), axis=1)


def make(*, input_shape: Sequence[int], vocab_size: int, embed_dim: int = 64, hidden: Sequence[int] = (64,),
         bidirectional: bool = False, pool: str = "last", num_outputs: int = 2, dropout: float = 0.0,
         pad_id: int = 0, unroll: int = 1) -> Model:
    """A text GRU Model (see models/base.py); input_shape is (T,) of token ids."""
    input_shape = tuple(int(s) for s in input_shape)
    hidden = tuple(int(h) for h in hidden)
    if len(input_shape) != 1:
        raise ValueError(f"text_gru input_shape must be (length,) of token ids, got {input_shape}")
    if vocab_size <= 0 or embed_dim <= 0 or not hidden or min(hidden) <= 0 or num_outputs <= 0:
        raise ValueError(f"text_gru sizes must be positive: vocab_size={vocab_size}, embed_dim={embed_dim}, "
                         f"hidden={hidden}, num_outputs={num_outputs}")
    if pool not in POOLS:
        raise ValueError(f"text_gru pool must be one of {POOLS}, got {pool!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"text_gru dropout must be in [0, 1), got {dropout}")
    directions = ("fwd", "bwd") if bidirectional else ("fwd",)
    sizes = (embed_dim,) + hidden

    def init(key):
        ke, kh, *kd = jax.random.split(key, 2 + len(directions))
        params = {"embed": embedding.init_embedding(ke, vocab_size, embed_dim, stddev=0.1)}
        for d, k in zip(directions, kd):
            for i, k_i in enumerate(jax.random.split(k, len(hidden))):
                params[f"gru_{d}_{i}"] = gru.init_layer(k_i, sizes[i], sizes[i + 1])
        params["head_out"] = layers.init_dense(kh, hidden[-1] * len(directions), num_outputs)
        return params

    def apply(params, x, *, state=None, train=False, key=None, axis_name=None, example_ids=None, lengths=None):
        if x.ndim != 2 or not 0 < x.shape[1] <= input_shape[0]:                   # narrower: a length bucket
            raise ValueError(f"text_gru expects x of shape [batch, <= {input_shape[0]}], got {x.shape}")
        if lengths is None:
            lengths = jnp.sum(x != pad_id, axis=1)
        lengths = jnp.asarray(lengths, jnp.int32)
        e = embedding.embedding(params["embed"], x)
        if train and dropout > 0:
            e = layers.dropout(e, dropout, train=True, key=jax.random.fold_in(key, 0), example_ids=example_ids)
        pooled = []
        for d in directions:
            hs = e if d == "fwd" else reverse_within_lengths(e, lengths)
            for i in range(len(hidden)):
                h_last, hs = gru.scan(params[f"gru_{d}_{i}"], hs, lengths=lengths, unroll=unroll)
            real = jnp.arange(x.shape[1])[None, :] < lengths[:, None]
            pooled.append(h_last if pool == "last" else residual.masked_mean(hs, real))
        h = jnp.concatenate(pooled, axis=-1)
        if train and dropout > 0:
            h = layers.dropout(h, dropout, train=True, key=jax.random.fold_in(key, 1), example_ids=example_ids)
        return layers.dense(params["head_out"], h), {}

    return Model(name="text_gru", init=init, init_state=dict, apply=apply, extras=("example_ids", "lengths"))
