"""A scan for recurrences whose only use of the recurrent weight is one matmul, with a backward pass that
computes that weight's gradient as one big matmul after the scan.

The recurrence, for per-step inputs x_t (any pytree of f32[batch, ...] leaves stacked on a leading time axis):

    a_t = h_{t-1} W + b                    W: f32[H, K], b: f32[K]      (the one recurrent matmul)
    h_t = g(a_t, x_t, h_{t-1})             g elementwise-cheap, free of W and b

covers the GRU with the reset gate applied after the matmul (cuDNN / PyTorch form), LSTMs and Elman RNNs.
Reverse-mode through ``lax.scan`` adds h_{t-1}^T da_t into a dW accumulator at every step; here the
backward scan only carries dh and emits da_t:

    dh_t  += dy_t                                       (the gradient reaching h_t from the outputs)
    da_t, dx_t, dh' = vjp(g at (a_t, x_t, h_{t-1}))(dh_t)
    dh_{t-1} = dh' + da_t W^T

then dW = [h_0 .. h_{T-1}]^T [da_1 .. da_T] is one f32[T*batch, H]^T x f32[T*batch, K] matmul and
db = sum_t da_t (W may also be a pytree of matrices, one product each). The forward saves a_t and h_{t-1};
g is recomputed in the backward, which is cheap.
Why: on CPU the per-iteration cost of a scan dominates small recurrent steps; moving work out of the loop
body into one large matmul is what XLA:CPU runs well.
"""
from __future__ import annotations

from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax

from jaxml import parallel


def _matmul(h, w, b):
    return jax.tree.map(lambda w, b: h @ w + b, w, b)


def _forward(g, w, b, h0, xs, unroll):
    def step(h, x_t):
        a = _matmul(h, w, b)
        h_new = g(a, x_t, h)
        return h_new, (h_new, a)
    h_last, (hs, a_s) = lax.scan(step, h0, xs, unroll=unroll)
    return h_last, hs, a_s


def matmul_recurrence(g: Callable, w, b, h0: jax.Array, xs, unroll: int = 1):
    """Run h_t = g(h_{t-1} @ w + b, x_t, h_{t-1}) over the leading (time) axis of ``xs``.

    w f32[H, K], b f32[K] (or matching pytrees of them, e.g. one matrix per gate: then a_t is that pytree of
    products), h0 f32[batch, H]; returns (h_T f32[batch, H], hs f32[time, batch, H]). Leaves of ``xs`` must
    be floating point (they get cotangents).
    ``g`` must be a pure function of its arguments (closed-over arrays get no gradient); ``unroll`` is
    passed to both the forward and the backward ``lax.scan``. Inside ``shard_map`` the operands are first cast to
    vary over the same mesh axes (``parallel.vary_alike``), so replicated weights get the psummed gradient.
    """
    steps = {leaf.shape[0] for leaf in jax.tree.leaves(xs)}
    if steps == {0}:
        raise ValueError("matmul_recurrence: xs has an empty time axis (0 steps); give at least one step")
    leaves, tree = jax.tree.flatten((w, b, h0, xs))
    w, b, h0, xs = jax.tree.unflatten(tree, parallel.vary_alike(*leaves))
    return _recurrence(g, w, b, h0, xs, unroll)


@partial(jax.custom_vjp, nondiff_argnums=(0, 5))
def _recurrence(g, w, b, h0, xs, unroll):
    """``matmul_recurrence`` on operands of one type, with the one-matmul weight-gradient backward."""
    h_last, hs, _ = _forward(g, w, b, h0, xs, unroll)
    return h_last, hs


def _fwd(g, w, b, h0, xs, unroll):
    h_last, hs, a_s = _forward(g, w, b, h0, xs, unroll)
    h_prev = jnp.concatenate([h0[None], hs[:-1]], axis=0)
    return (h_last, hs), (w, b, xs, h_prev, a_s)


def _bwd(g, unroll, res, cts):
    w, b, xs, h_prev, a_s = res
    dh_last, dhs = cts
    w_t = jax.tree.map(lambda w: w.T, w)

    def step(dh, inp):
        dy, a, x_t, hp = inp
        _, vjp = jax.vjp(g, a, x_t, hp)
        da, dx, dh_direct = vjp(dh + dy)
        return dh_direct + sum(jax.tree.leaves(jax.tree.map(jnp.matmul, da, w_t))), (da, dx)
    dh0, (das, dxs) = lax.scan(step, dh_last, (dhs, a_s, xs, h_prev), reverse=True, unroll=unroll)
    h_flat = h_prev.reshape(-1, h_prev.shape[-1])
    dw = jax.tree.map(lambda da, w: (h_flat.T @ da.reshape(-1, da.shape[-1])).astype(w.dtype), das, w)
    db = jax.tree.map(lambda da, b: da.reshape(-1, da.shape[-1]).sum(axis=0).astype(b.dtype), das, b)
    return dw, db, dh0, dxs


_recurrence.defvjp(_fwd, _bwd)
