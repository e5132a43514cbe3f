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
With reset_after the layer is one custom VJP (``_layer``): the input projection xp = x W_i for all steps is
one f32[T*batch, in] x f32[in, 3H] matmul before the loop, the loop does the one recurrent f32[batch, H] x
f32[H, 3H] matmul per step, and the backward loop carries only dh and, with g = dh_t + dy_t,

    dp_n = g (.) (1 - z) (.) (1 - n^2)      dp_z = g (.) (h - n) (.) z (.) (1 - z)
    dp_r = dp_n (.) (h U_n + c_n) (.) r (.) (1 - r)
    da = [dp_r, dp_z, r (.) dp_n]           dh_{t-1} = g (.) z + da U^T

writing da over the stored a_t = h_{t-1} U + c and dxp = [dp_r, dp_z, dp_n] over xp_t in place; after it
dU = [h_0 .. h_T]^T da, dW_i = x^T dxp and dx = dxp W_i^T are one matmul each. Why: on XLA:CPU a scan's per-step
work and every fresh buffer (page-faulted on each call) cost more than the FLOPs, so the loop stores only h_t and
a_t and reuses buffers that are dead.
"""
from __future__ import annotations

from functools import partial
from typing import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from jaxml import parallel
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
    return n + z * (h - n)


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


def _at(stack: jax.Array, t) -> jax.Array:
    """stack[:, t] of a batch-major f32[batch, T, ...] stack (t traced)."""
    return lax.dynamic_index_in_dim(stack, t, 1, keepdims=False)


def _put(stack: jax.Array, row: jax.Array, t) -> jax.Array:
    """stack with stack[:, t] = row, in place when stack is dead afterwards (a loop carry)."""
    return lax.dynamic_update_index_in_dim(stack, row, t, 1)


def _gates(a, xp, b, hidden):
    """(r, z, n) f32[batch, H] from a = h U + c f32[batch, 3H], xp = x_t W f32[batch, 3H] and b = b_i f32[3H]."""
    r = _sigmoid(xp[..., :hidden] + b[:hidden] + a[..., :hidden])
    z = _sigmoid(xp[..., hidden:2 * hidden] + b[hidden:2 * hidden] + a[..., hidden:2 * hidden])
    n = jnp.tanh(xp[..., 2 * hidden:] + b[2 * hidden:] + r * a[..., 2 * hidden:])
    return r, z, n


def _layer_forward(w_i, b_i, u, c, h0, xs, valid, unroll):
    """The forward loop; returns h_T, hs f32[batch, T + 1, H] (hs[:, 0] = h0), a_s f32[batch, T + 1, 3H]
    (a_s[:, t] = hs[:, t] U + c, the last slot zero so dU is one matmul over all of hs) and xp = x W
    f32[batch, T, 3H] (b_i is added in the loop, where it fuses, rather than as one more buffer). All batch-major
    like xs: a time-major layout would cost a transpose of x, hs and dhs per call."""
    batch, steps, hidden = xs.shape[0], xs.shape[1], h0.shape[-1]
    xp = (xs.reshape(batch * steps, -1) @ w_i).reshape(batch, steps, -1)

    def body(t, carry):
        h, hs, a_s, xp_t = carry
        xp_next = _at(xp, jnp.minimum(t + 1, steps - 1))   # read a step ahead: a slice read in the step that
        # uses it fuses into the gates' fusion, which XLA:CPU runs slower (bench/README.md)
        a = h @ u + c
        r, z, n = _gates(a, xp_t, b_i, hidden)
        h_new = n + z * (h - n)
        if valid is not None:
            h_new = jnp.where(_at(valid, t) > 0, h_new, h)
        return h_new, _put(hs, h_new, t + 1), _put(a_s, a, t), xp_next
    hs = lax.empty((batch, steps + 1, hidden), h0.dtype).at[:, 0].set(h0)
    a_s = lax.empty((batch, steps + 1, xp.shape[-1]), xp.dtype).at[:, steps].set(0)
    hs, a_s, _ = parallel.vary_alike(hs, a_s, xp)                    # shard_map: carries of the data's type
    h, hs, a_s, _ = lax.fori_loop(0, steps, body, (h0, hs, a_s, _at(xp, 0)), unroll=unroll)
    return h, hs, a_s, xp


@partial(jax.custom_vjp, nondiff_argnums=(7,))
def _layer(w_i, b_i, u, c, h0, xs, valid, unroll):
    """reset_after GRU layer: (w_i, b_i, w_h, b_h, h0 f32[batch, H], xs f32[batch, T, in], valid f32[batch, T, 1]
    or None) -> (h_T, hs f32[batch, T, H]); where valid is 0 the state is kept."""
    h, hs, _, _ = _layer_forward(w_i, b_i, u, c, h0, xs, valid, unroll)
    return h, hs[:, 1:]


def _layer_fwd(w_i, b_i, u, c, h0, xs, valid, unroll):
    h, hs, a_s, xp = _layer_forward(w_i, b_i, u, c, h0, xs, valid, unroll)
    return (h, hs[:, 1:]), (w_i, b_i, u, xs, valid, hs, a_s, xp)


def _layer_bwd(unroll, res, cts):
    w_i, b_i, u, xs, valid, hs, a_s, xp = res
    dh_last, dhs = cts
    batch, steps, hidden = xp.shape[0], xp.shape[1], hs.shape[-1]
    u_t = u.T

    def body(j, carry):
        dh, da_s, dxp = carry                   # da_s / dxp start as a_s / xp and are overwritten step by step
        t = steps - 1 - j
        a, hp, g = _at(da_s, t), _at(hs, t), dh + _at(dhs, t)
        r, z, n = _gates(a, _at(dxp, t), b_i, hidden)
        if valid is not None:
            v = _at(valid, t)
            g, g_frozen = g * v, g * (1 - v)
        dpn = g * (1 - z) * (1 - n * n)
        dpz = g * (hp - n) * z * (1 - z)
        dpr = dpn * a[..., 2 * hidden:] * r * (1 - r)
        da = jnp.concatenate([dpr, dpz, dpn * r], axis=-1)
        dh = g * z + da @ u_t
        if valid is not None:
            dh = dh + g_frozen
        return dh, _put(da_s, da, t), _put(dxp, jnp.concatenate([dpr, dpz, dpn], axis=-1), t)
    dh_last, _ = parallel.vary_alike(dh_last, xp)
    dh0, das, dxp = lax.fori_loop(0, steps, body, (dh_last, a_s, xp), unroll=unroll)
    das, dxp = das.reshape(batch * (steps + 1), -1), dxp.reshape(batch * steps, -1)
    dw_i = xs.reshape(batch * steps, -1).T @ dxp
    du = hs.reshape(-1, hidden).T @ das
    dxs = (dxp @ w_i.T).reshape(xs.shape)
    dvalid = None if valid is None else jnp.zeros_like(valid)
    return dw_i, dxp.sum(0), du, das.sum(0), dh0, dxs, dvalid


_layer.defvjp(_layer_fwd, _layer_bwd)


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
    h_last is the state after each sequence's own last step. With reset_after the layer is the custom VJP
    ``_layer`` (module docstring); reset_after=False runs the cell under a plain ``lax.scan`` over the
    per-gate time-major input projections f32[time, batch, H].
    """
    if xs.ndim != 3 or xs.shape[-1] != params["w_i"].shape[0]:
        raise ValueError(f"gru.scan expects xs of shape [batch, time, {params['w_i'].shape[0]}], got {xs.shape}")
    batch, time = xs.shape[0], xs.shape[1]
    if time == 0:
        raise ValueError("gru.scan: xs has an empty time axis (0 steps); give at least one step")
    hidden = params["w_h"].shape[0]
    h0 = jnp.zeros((batch, hidden), xs.dtype) if h0 is None else h0
    valid = None
    if lengths is not None:
        valid = (jnp.arange(time)[None, :] < jnp.asarray(lengths)[:, None]).astype(xs.dtype)[..., None]
    w_i, b_i = params["w_i"], params["b_i"]
    if reset_after:
        # shard_map: cast replicated operands to the data's varying type, so their cotangents get psummed
        operands = parallel.vary_alike(w_i, b_i, params["w_h"], params["b_h"], h0, xs,
                                       *(() if valid is None else (valid,)))
        h_last, hs = _layer(*operands[:6], None if valid is None else operands[6], unroll)
    else:
        h0, xs = parallel.vary_alike(h0, xs)                             # shard_map: a carry of xs's type
        xt = jnp.swapaxes(xs, 0, 1)                                      # [time, batch, in]
        x_gates = tuple(xt @ w_i[:, k * hidden:(k + 1) * hidden] + b_i[k * hidden:(k + 1) * hidden]
                        for k in range(3))
        if valid is not None:
            x_gates = x_gates + (jnp.swapaxes(valid, 0, 1),)             # f32[time, batch, 1]

        def step(h, x_t):
            h = _step_before(params, h, x_t)
            return h, h
        h_last, hs = lax.scan(step, h0, x_gates, unroll=unroll)
        hs = jnp.swapaxes(hs, 0, 1)
    if valid is not None:
        hs = jnp.where(valid > 0, hs, 0.0)
    return h_last, hs


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
