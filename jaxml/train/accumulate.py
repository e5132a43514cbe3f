"""Gradient accumulation: one optimizer update from k microbatches of the step's batch (``config.train.accum_steps``).

The batch's n rows (per device) split into k contiguous microbatches of n / k rows; a ``lax.scan`` differentiates
each in turn and sums. With c_j the masked count of microbatch j and C = sum_j c_j (both summed over devices
when the step psums its loss), microbatch j's mean loss is weighted by c_j / C, so

    sum_j grad(c_j / C * mean_j) + grad(penalty) = grad(sum_i mask_i loss_i / C + penalty)

— the gradient of the whole batch's loss, to float32 rounding. Metric sums add over microbatches. Peak activation
memory is that of one microbatch; why: a batch too large for the device trains as if it fitted.

Dropout: a model taking ``example_ids`` gets each row's index in the global batch, split like the rows, with the
step's key, so its masks are those of k = 1. Other models get the key folded with j (masks depend on k).

Batch norm normalises each microbatch with its own statistics (over the j-th microbatches of all devices under a
data-parallel driver: "ghost" batches of n / k rows per device) and updates the running statistics k times in
order, as big_vision and maxtext do; so a batch-norm model's k = 4 step is that of four batches of n / 4, not k = 1.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax

from jaxml import losses


def split(tree, k: int):
    """Each leaf [n, ...] -> [k, n / k, ...] (microbatch j = rows [j n / k, (j + 1) n / k))."""
    def one(a):
        if a.shape[0] % k:
            raise ValueError(f"accumulation: a batch of {a.shape[0]} rows does not split into "
                             f"config.train.accum_steps={k} microbatches")
        return a.reshape((k, a.shape[0] // k) + a.shape[1:])
    return jax.tree.map(one, tree)


def _zeros(shape: jax.ShapeDtypeStruct) -> jax.Array:
    """Zeros of ``shape``, varying over the same manual mesh axes (a scan carry under shard_map must match)."""
    zeros = jnp.zeros(shape.shape, shape.dtype)
    axes = tuple(sorted(getattr(getattr(shape, "manual_axis_type", None), "varying", ()) or ()))
    return lax.pcast(zeros, axes, to="varying") if axes else zeros


def penalty(params, l1, l2):
    """l1 * |params|_1 + l2 * |params|_2^2, a None penalty left out."""
    total = jnp.zeros((), jnp.float32)
    if l1 is not None:
        total = total + l1 * losses.l1_penalty(params)
    if l2 is not None:
        total = total + l2 * losses.l2_penalty(params)
    return total


def value_and_grad(micro_loss: Callable, params, model_state, batch: dict, mask, ids, key, k: int, *,
                   l1=None, l2=None, count_axis: str | None = None, fold_key: bool = False, loss_scale=None):
    """``((loss, (sums, model_state)), grads)`` of the whole batch, as ``jax.value_and_grad(step_loss)`` gives
    it, from k microbatches. ``micro_loss(params, model_state, batch, mask, ids, key, l1=None, l2=None)`` is the
    step's loss of one microbatch (its masked mean, penalties left out); ``count_axis`` names the axis its
    counts are summed over (shard_map), ``fold_key`` folds the microbatch index into the key (no example ids);
    ``loss_scale`` (float16, jaxml/train/precision.py) multiplies the differentiated loss and so the gradients."""
    micro = split({"batch": batch, "mask": mask, "ids": ids}, k)
    counts = jnp.sum(micro["mask"], axis=1)
    if count_axis is not None:
        counts = lax.psum(counts, count_axis)
    weights = counts / jnp.maximum(jnp.sum(counts), 1.0)
    scale = 1.0 if loss_scale is None else loss_scale

    def weighted(p, ms, mb, w, j):
        mkey = jax.random.fold_in(key, j) if fold_key else key
        loss, aux = micro_loss(p, ms, mb["batch"], mb["mask"], mb["ids"], mkey, l1=None, l2=None)
        return loss * (w * scale), aux

    grad_fn = jax.value_and_grad(weighted, has_aux=True)
    first = jax.tree.map(lambda a: a[0], micro)
    (loss0, (sums0, _)), grads0 = jax.tree.map(_zeros, jax.eval_shape(grad_fn, params, model_state, first,
                                                                       weights[0], 0))

    def body(carry, xs):
        loss, sums, grads, ms = carry
        mb, w, j = xs
        (l_j, (s_j, ms)), g_j = grad_fn(params, ms, mb, w, j)
        add = lambda a, b: jax.tree.map(jnp.add, a, b)  # noqa: E731
        return (loss + l_j, add(sums, s_j), add(grads, g_j), ms), None

    init = (loss0, sums0, grads0, model_state)
    (loss, sums, grads, model_state), _ = lax.scan(body, init, (micro, weights, jnp.arange(k)))
    if l1 is not None or l2 is not None:
        pen, pen_grads = jax.value_and_grad(lambda p: penalty(p, l1, l2) * scale)(params)
        loss, grads = loss + pen, jax.tree.map(jnp.add, grads, pen_grads)
    return (loss if loss_scale is None else loss / loss_scale, (sums, model_state)), grads
