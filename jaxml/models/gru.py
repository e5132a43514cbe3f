"""Gated recurrent units: a cell ``(params, h, x_t) -> h`` and a ``lax.scan`` over time.

Gates (sigma = logistic sigmoid, (.) = elementwise product), for input x_t f32[batch, in] and state
h f32[batch, hidden]:

    r = sigma(x_t W_r + b_r + h U_r + c_r)                            reset gate
    z = sigma(x_t W_z + b_z + h U_z + c_z)                            update gate
    reset_after=True  (cuDNN, PyTorch, flax, Keras default):
        n = tanh(x_t W_n + b_n + r (.) (h U_n + c_n))
    reset_after=False (Cho et al. 2014 / Keras reset_after=False, W . [r (.) h, x]):
        n = tanh(x_t W_n + b_n + (r (.) h) U_n + c_n)
    h' = z (.) h + (1 - z) (.) n

Params of one layer: ``{"w_i": f32[in, 3H], "w_h": f32[H, 3H], "b_i": f32[3H], "b_h": f32[3H]}`` with the
gate blocks in the order (r, z, n) — PyTorch's weight_ih_l0.T / weight_hh_l0.T / bias_ih_l0 / bias_hh_l0.
The input projection x W + b for all time steps is one matmul before the scan; the scan body only does
the recurrent f32[batch, H] x f32[H, 3H] matmul.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from jaxml.models.base import Model
from jaxml.nn import initializers, layers


def init_layer(key, in_features: int, hidden: int, *, kernel_init: str = "glorot_uniform",
               recurrent_init: str = "orthogonal", dtype=jnp.float32) -> dict:
    """One GRU layer: input kernel (glorot), recurrent kernel (orthogonal per gate), zero biases."""
    ki, kh = jax.random.split(key)
    w_h = jnp.concatenate([initializers.get(recurrent_init)(k, (hidden, hidden), dtype)
                           for k in jax.random.split(kh, 3)], axis=1)
    return {"w_i": initializers.get(kernel_init)(ki, (in_features, 3 * hidden), dtype),
            "w_h": w_h,
            "b_i": jnp.zeros((3 * hidden,), dtype),
            "b_h": jnp.zeros((3 * hidden,), dtype)}


def cell_from_projection(params: dict, h: jax.Array, xp: jax.Array, *, reset_after: bool = True) -> jax.Array:
    """One step given the precomputed input projection xp = x_t W + b (f32[batch, 3H])."""
    hidden = h.shape[-1]
    w_h, b_h = params["w_h"], params["b_h"]
    xr, xz, xn = xp[..., :hidden], xp[..., hidden:2 * hidden], xp[..., 2 * hidden:]
    if reset_after:
        hp = h @ w_h + b_h
        r = jax.nn.sigmoid(xr + hp[..., :hidden])
        z = jax.nn.sigmoid(xz + hp[..., hidden:2 * hidden])
        n = jnp.tanh(xn + r * hp[..., 2 * hidden:])
    else:
        hp = h @ w_h[:, :2 * hidden] + b_h[:2 * hidden]
        r = jax.nn.sigmoid(xr + hp[..., :hidden])
        z = jax.nn.sigmoid(xz + hp[..., hidden:])
        n = jnp.tanh(xn + (r * h) @ w_h[:, 2 * hidden:] + b_h[2 * hidden:])
    return z * h + (1.0 - z) * n


def cell(params: dict, h: jax.Array, x_t: jax.Array, *, reset_after: bool = True) -> jax.Array:
    """The GRU cell (params, h f32[batch, H], x_t f32[batch, in]) -> h' f32[batch, H]."""
    return cell_from_projection(params, h, x_t @ params["w_i"] + params["b_i"], reset_after=reset_after)


def scan(params: dict, xs: jax.Array, h0: jax.Array | None = None, *, reset_after: bool = True,
         lengths: jax.Array | None = None, unroll: int = 1) -> tuple[jax.Array, jax.Array]:
    """Run one layer over xs f32[batch, time, in]; returns (h_last f32[batch, H], hs f32[batch, time, H]).

    With ``lengths`` int[batch], steps t >= lengths[b] leave the state unchanged (and emit zeros), so
    h_last is the state after each sequence's own last step.
    """
    batch, time = xs.shape[0], xs.shape[1]
    hidden = params["w_h"].shape[0]
    h0 = jnp.zeros((batch, hidden), xs.dtype) if h0 is None else h0
    xp = jnp.swapaxes(xs @ params["w_i"] + params["b_i"], 0, 1)        # [time, batch, 3H], one matmul

    if lengths is None:
        def step(h, xp_t):
            h = cell_from_projection(params, h, xp_t, reset_after=reset_after)
            return h, h
        h_last, hs = lax.scan(step, h0, xp, unroll=unroll)
    else:
        lengths = jnp.asarray(lengths)

        def step(h, inp):
            xp_t, t = inp
            h_new = cell_from_projection(params, h, xp_t, reset_after=reset_after)
            valid = (t < lengths)[:, None]
            return jnp.where(valid, h_new, h), jnp.where(valid, h_new, 0.0)
        h_last, hs = lax.scan(step, h0, (xp, jnp.arange(time)), unroll=unroll)
    return h_last, jnp.swapaxes(hs, 0, 1)


def make(*, input_features: int, hidden: Sequence[int] = (64,), num_outputs: int = 1, reset_after: bool = True,
         return_sequences: bool = False, initializer: str = "glorot_uniform", unroll: int = 1) -> Model:
    """Stacked GRU layers (``gru_0``, ``gru_1``, ...) then a dense head ``head_out``.

    x: f32[batch, time, input_features] -> y: f32[batch, num_outputs] from the last state, or
    f32[batch, time, num_outputs] when ``return_sequences``. Per-sequence lengths may be passed to
    ``apply(..., lengths=int[batch])``. A num_outputs of 1 returns f32[batch] (regression targets).
    """
    sizes = [int(input_features)] + [int(h) for h in hidden]
    if any(s <= 0 for s in sizes) or num_outputs <= 0:
        raise ValueError(f"gru sizes must be positive: input_features={input_features}, hidden={hidden}, "
                         f"num_outputs={num_outputs}")

    def init(key):
        keys = jax.random.split(key, len(sizes))
        params = {f"gru_{i}": init_layer(keys[i], sizes[i], sizes[i + 1], kernel_init=initializer)
                  for i in range(len(sizes) - 1)}
        params["head_out"] = layers.init_dense(keys[-1], sizes[-1], num_outputs, kernel_init=initializer)
        return params

    def apply(params, x, *, state=None, train=False, key=None, axis_name=None, lengths=None):
        if x.ndim != 3 or x.shape[-1] != sizes[0]:
            raise ValueError(f"gru expects x of shape [batch, time, {sizes[0]}], got {x.shape}")
        hs = x
        for i in range(len(sizes) - 1):
            h_last, hs = scan(params[f"gru_{i}"], hs, reset_after=reset_after, lengths=lengths, unroll=unroll)
        y = layers.dense(params["head_out"], hs if return_sequences else h_last)
        return (y[..., 0] if num_outputs == 1 else y), {}

    return Model(name="gru", init=init, init_state=dict, apply=apply, extras=("lengths",))


def from_config(input_shape, **hyper) -> Model:
    """The GRU of a config's model section: ``input_features`` is the last axis of the data's input shape."""
    hyper.setdefault("input_features", int(input_shape[-1]))
    return make(**hyper)
