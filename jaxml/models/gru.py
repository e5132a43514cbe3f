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
The input projections x W + b for all time steps are computed before the scan (one time-major array per
gate); the scan body only does the recurrent f32[batch, H] x f32[H, 3H] matmul. Gradients with reset_after
go through ``jaxml.nn.recurrent.matmul_recurrence`` (dU = sum_t h_{t-1}^T da_t as one matmul after the
backward scan), because on CPU a scan's per-step work, not its FLOPs, sets the step time.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from jaxml import parallel
from jaxml.models.base import Model
from jaxml.nn import initializers, layers, recurrent


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


def _sigmoid(v: jax.Array) -> jax.Array:
    """logistic(v) written as tanh(v / 2) / 2 + 1/2 (the same function): one tanh in the loop body instead of
    the exp and divide that logistic lowers to on XLA:CPU."""
    return 0.5 * jnp.tanh(0.5 * v) + 0.5


def _update_after(a: jax.Array, x_gates: tuple, h: jax.Array) -> jax.Array:
    """reset_after step from a = h U + c f32[batch, 3H] and the input projections (xr, xz, xn) f32[batch, H];
    h' = n + z (.) (h - n), PyTorch's order of operations."""
    hidden = h.shape[-1]
    xr, xz, xn = x_gates[:3]
    r = _sigmoid(xr + a[..., :hidden])
    z = _sigmoid(xz + a[..., hidden:2 * hidden])
    n = jnp.tanh(xn + r * a[..., 2 * hidden:])
    h_new = n + z * (h - n)
    if len(x_gates) == 4:                       # (xr, xz, xn, valid f32[batch, 1]): freeze finished rows
        h_new = jnp.where(x_gates[3] > 0, h_new, h)
    return h_new


def _step_before(params: dict, h: jax.Array, x_gates: tuple) -> jax.Array:
    """reset_after=False step: the candidate's recurrent matmul reads r (.) h, so it stays in the loop."""
    hidden = h.shape[-1]
    w_h, b_h = params["w_h"], params["b_h"]
    xr, xz, xn = x_gates[:3]
    a = h @ w_h[:, :2 * hidden] + b_h[:2 * hidden]
    r = _sigmoid(xr + a[..., :hidden])
    z = _sigmoid(xz + a[..., hidden:])
    n = jnp.tanh(xn + (r * h) @ w_h[:, 2 * hidden:] + b_h[2 * hidden:])
    h_new = n + z * (h - n)
    if len(x_gates) == 4:
        h_new = jnp.where(x_gates[3] > 0, h_new, h)
    return h_new


def cell_from_projection(params: dict, h: jax.Array, xp: jax.Array, *, reset_after: bool = True) -> jax.Array:
    """One step given the precomputed input projection xp = x_t W + b (f32[batch, 3H])."""
    hidden = h.shape[-1]
    x_gates = (xp[..., :hidden], xp[..., hidden:2 * hidden], xp[..., 2 * hidden:])
    if reset_after:
        return _update_after(h @ params["w_h"] + params["b_h"], x_gates, h)
    return _step_before(params, h, x_gates)


def cell(params: dict, h: jax.Array, x_t: jax.Array, *, reset_after: bool = True) -> jax.Array:
    """The GRU cell (params, h f32[batch, H], x_t f32[batch, in]) -> h' f32[batch, H]."""
    return cell_from_projection(params, h, x_t @ params["w_i"] + params["b_i"], reset_after=reset_after)


def scan(params: dict, xs: jax.Array, h0: jax.Array | None = None, *, reset_after: bool = True,
         lengths: jax.Array | None = None, unroll: int = 1) -> tuple[jax.Array, jax.Array]:
    """Run one layer over xs f32[batch, time, in]; returns (h_last f32[batch, H], hs f32[batch, time, H]).

    With ``lengths`` int[batch], steps t >= lengths[b] leave the state unchanged (and emit zeros), so
    h_last is the state after each sequence's own last step. The input projections are three time-major
    f32[time, batch, H] arrays (one per gate, so each step reads contiguous rows); with reset_after the
    recurrence runs through ``recurrent.matmul_recurrence``, whose backward computes dU as one matmul
    after the scan instead of one small accumulation per step.
    """
    if xs.ndim != 3 or xs.shape[-1] != params["w_i"].shape[0]:
        raise ValueError(f"gru.scan expects xs of shape [batch, time, {params['w_i'].shape[0]}], got {xs.shape}")
    batch, time = xs.shape[0], xs.shape[1]
    hidden = params["w_h"].shape[0]
    h0 = jnp.zeros((batch, hidden), xs.dtype) if h0 is None else h0
    h0, xs = parallel.vary_alike(h0, xs)                                 # shard_map: a carry of xs's type
    xt = jnp.swapaxes(xs, 0, 1)                                          # [time, batch, in]
    w_i, b_i = params["w_i"], params["b_i"]
    x_gates = tuple(xt @ w_i[:, k * hidden:(k + 1) * hidden] + b_i[k * hidden:(k + 1) * hidden] for k in range(3))
    valid = None
    if lengths is not None:
        valid = (jnp.arange(time)[:, None] < jnp.asarray(lengths)[None, :]).astype(xs.dtype)[..., None]
        x_gates = x_gates + (valid,)                                     # f32[time, batch, 1]
    if reset_after:
        h_last, hs = recurrent.matmul_recurrence(_update_after, params["w_h"], params["b_h"], h0, x_gates, unroll)
    else:
        def step(h, x_t):
            h = _step_before(params, h, x_t)
            return h, h
        h_last, hs = lax.scan(step, h0, x_gates, unroll=unroll)
    if valid is not None:
        hs = jnp.where(valid > 0, hs, 0.0)
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
