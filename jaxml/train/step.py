"""Pure train and eval steps, written once per device.

``make_train_step`` returns ``train_step(state, batch, hp) -> (state, metrics)``: the masked mean of the
objective's per-example loss plus l1 * sum|w| + l2 * sum w^2, its gradient, one optax update; a single run
and each member of a vmapped population train through this same function. When ``axis_name`` is given the
function runs per device (inside ``jax.shard_map``): the loss and metrics are ``lax.psum``-ed over that axis
*before* differentiation, so the gradient of the replicated params is already the global one (the shard_map
gradient rule; under pmap the gradients are pmean-ed instead). Metrics come back as sums and a count (``n``)
so they can be accumulated across steps and devices exactly.

Randomness: the step key is ``fold_in(key(seed), step)``; a model that takes ``example_ids`` (models/base.py; the
MLP and CNN) also gets each example's index in the step's global batch, and draws example b's dropout mask from
(step key, layer, that index) alone — so 1 device == N devices and every driver trains the same run, and a run
resumed under another driver continues the same random stream. Other models get the key folded with the device
index instead (distinct per-device masks, but layout-dependent).
"""
from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax
from jax import lax

from jaxml import losses
from jaxml.train import accumulate, precision
from jaxml.train.state import TrainState


def _masked_sums(per_example: dict, mask: jax.Array) -> dict:
    sums = {k: jnp.sum(v * mask) for k, v in per_example.items()}
    sums["n"] = jnp.sum(mask)
    return sums


def batch_inputs(model, batch: dict) -> dict:
    """The batch's per-example model inputs beyond ``x``: ``lengths`` (int[B]) for a model that takes it (text
    models), so the data's own lengths, not the padding id, mark where each sequence ends."""
    if "lengths" in batch and "lengths" in getattr(model, "extras", ()):
        return {"lengths": batch["lengths"]}
    return {}


def step_loss(model, objective, params, model_state, batch: dict, key, mask, *, l1=None, l2=None,
              axis_name: str | None = None, psum_loss: bool = False, apply_kwargs: dict | None = None):
    """The training loss of one batch and its metric sums: ``(loss, (sums, new_model_state))``.

    loss = sum_i mask_i loss_i / sum_i mask_i  (+ l1 * |params|_1 + l2 * |params|_2^2 where given; a
    penalty of None is left out of the program). With ``psum_loss`` the numerator and denominator are
    summed over ``axis_name`` first (shard_map: the gradient of replicated params is then reduced).
    Both the single-model step and the vmapped population member step differentiate this function.
    """
    outputs, new_model_state = model.apply(params, batch["x"], state=model_state, train=True, key=key,
                                           axis_name=axis_name, **batch_inputs(model, batch), **(apply_kwargs or {}))
    loss_pe, metrics_pe = objective(outputs, batch)
    chex.assert_shape([loss_pe, *metrics_pe.values()], mask.shape)   # an objective returns per-example values
    sums = _masked_sums(metrics_pe, mask)
    data_loss_sum, count = jnp.sum(loss_pe * mask), sums["n"]
    if psum_loss:
        data_loss_sum, count = lax.psum((data_loss_sum, count), axis_name)
    loss = data_loss_sum / jnp.maximum(count, 1.0)
    if l1 is not None:
        loss = loss + l1 * losses.l1_penalty(params)
    if l2 is not None:
        loss = loss + l2 * losses.l2_penalty(params)
    return loss, (sums, new_model_state)


class Hparams(NamedTuple):
    """What a train step may take per run rather than compile in: Python scalars for one run (constants of
    the program), or traced scalars for one member of a vmapped population (jaxml/tune/population.py)."""
    seed: int | jax.Array                      # step key fold_in(key(seed), step): dropout masks
    l1: float | jax.Array | None = None        # None: the penalty is left out of the program
    l2: float | jax.Array | None = None
    dropout_rates: jax.Array | None = None     # f32[L]: replaces a layer spec's dropout rates (None: its own)


def global_example_ids(batch_size: int, axis_name: str | None = None) -> jax.Array:
    """int32[batch_size]: each local example's index in the step's global batch, d * n + arange(n) on device d
    of ``axis_name`` (shard_map and pmap hold rows [d n, (d + 1) n) of the global batch on device d, processes
    in order), arange(n) without one."""
    ids = jnp.arange(batch_size, dtype=jnp.int32)
    return ids if axis_name is None else ids + lax.axis_index(axis_name) * batch_size


def make_train_step(model, objective, optimizer: optax.GradientTransformation, *, axis_name: str | None = None,
                    pmean_grads: bool = False, accum_steps: int = 1):
    """The one pure per-device train step ``train_step(state, batch, hp: Hparams) -> (state, metric sums)``;
    jit / shard_map / pmap / vmap it in the caller (jaxml/train/drivers.py, jaxml/tune/population.py).

    pmean_grads=True is the pmap convention: each device differentiates its local loss and the
    gradients are ``lax.pmean``-ed. The default (shard_map / single device) differentiates the
    already-averaged loss. accum_steps = k > 1 sums the gradients of k microbatches (jaxml/train/accumulate.py).
    """
    per_example = "example_ids" in getattr(model, "extras", ())

    def train_step(state: TrainState, batch: dict, hp: Hparams):
        key = jax.random.fold_in(jax.random.key(hp.seed), state.step)
        if axis_name is not None and not per_example:
            key = jax.random.fold_in(key, lax.axis_index(axis_name))   # no example ids: masks differ per device
        mask = batch.get("mask")
        if mask is None:
            mask = jnp.ones((batch["x"].shape[0],), jnp.float32)
        extras = {} if hp.dropout_rates is None else {"dropout_rates": hp.dropout_rates}
        ids = global_example_ids(batch["x"].shape[0], axis_name) if per_example else None
        psum_loss = axis_name is not None and not pmean_grads

        def loss_fn(params, model_state, batch, mask, ids, key, l1=hp.l1, l2=hp.l2):
            kwargs = extras if ids is None else {**extras, "example_ids": ids}
            return step_loss(model, objective, params, model_state, batch, key, mask, l1=l1, l2=l2,
                             axis_name=axis_name, psum_loss=psum_loss, apply_kwargs=kwargs)

        scale = precision.loss_scale(state.opt_state)          # float16: dynamic loss scale, else None
        if accum_steps == 1:
            (loss, (sums, new_model_state)), grads = precision.value_and_grad(loss_fn, scale)(
                state.params, state.model_state, batch, mask, ids, key)
        else:
            (loss, (sums, new_model_state)), grads = accumulate.value_and_grad(
                loss_fn, state.params, state.model_state, batch, mask, ids, key, accum_steps, l1=hp.l1, l2=hp.l2,
                count_axis=axis_name if psum_loss else None, fold_key=not per_example, loss_scale=scale)
        if axis_name is not None:
            if pmean_grads:
                grads = lax.pmean(grads, axis_name)
                loss = lax.pmean(loss, axis_name)
            sums = lax.psum(sums, axis_name)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        sums["objective"] = loss * sums["n"]  # loss incl. penalties, as a sum for averaging
        sums = precision.drop_skipped(sums, state.opt_state, opt_state)   # a skipped float16 step counts nothing
        return TrainState(state.step + 1, params, new_model_state, opt_state), sums

    return train_step


def run_hparams(config) -> Hparams:
    """The Hparams of one run's config: its seed and its nonzero penalties."""
    return Hparams(int(config.seed), float(config.regularization.l1) or None, float(config.regularization.l2) or None)


def make_eval_step(model, objective, *, axis_name: str | None = None):
    """``eval_step(params, model_state, batch) -> metric sums`` (train=False, masked)."""
    def eval_step(params, model_state, batch):
        outputs, _ = model.apply(params, batch["x"], state=model_state, train=False, **batch_inputs(model, batch))
        _, metrics_pe = objective(outputs, batch)
        sums = _masked_sums(metrics_pe, batch["mask"])
        return lax.psum(sums, axis_name) if axis_name is not None else sums
    return eval_step
