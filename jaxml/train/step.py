"""Pure train and eval steps, written once per device.

``make_train_step`` returns ``train_step(state, batch) -> (state, metrics)``: the masked mean of the
objective's per-example loss plus l1 * sum|w| + l2 * sum w^2, its gradient, one optax update. When
``axis_name`` is given the function runs per device (inside ``jax.shard_map``): the loss and metrics
are ``lax.pmean``-ed over that axis *before* differentiation, so the gradient of the replicated params
is already the global one — see DESIGN.md, "the gradient rule". Metrics come back as sums and a
count (``n``) so they can be accumulated across steps and devices exactly.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
import optax

from jaxml import losses
from jaxml.train.state import TrainState


def _masked_sums(per_example: dict, mask: jax.Array) -> dict:
    sums = {k: jnp.sum(v * mask) for k, v in per_example.items()}
    sums["n"] = jnp.sum(mask)
    return sums


def step_loss(model, objective, params, model_state, batch: dict, key, mask, *, l1=None, l2=None,
              axis_name: str | None = None, psum_loss: bool = False, apply_kwargs: dict | None = None):
    """The training loss of one batch and its metric sums: ``(loss, (sums, new_model_state))``.

    loss = sum_i mask_i loss_i / sum_i mask_i  (+ l1 * |params|_1 + l2 * |params|_2^2 where given; a
    penalty of None is left out of the program). With ``psum_loss`` the numerator and denominator are
    summed over ``axis_name`` first (shard_map: the gradient of replicated params is then reduced).
    Both the single-model step and the vmapped population member step differentiate this function.
    """
    outputs, new_model_state = model.apply(params, batch["x"], state=model_state, train=True, key=key,
                                           axis_name=axis_name, **(apply_kwargs or {}))
    loss_pe, metrics_pe = objective(outputs, batch)
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


def make_train_step(model, objective, optimizer: optax.GradientTransformation, *, seed: int = 0,
                    l1: float = 0.0, l2: float = 0.0, axis_name: str | None = None, pmean_grads: bool = False):
    """Build the pure per-device train step (jit/shard_map/pmap it in the caller).

    pmean_grads=True is the pmap convention: each device differentiates its local loss and the
    gradients are ``lax.pmean``-ed. The default (shard_map / single device) differentiates the
    already-averaged loss.
    """
    base_key = jax.random.key(seed)

    def train_step(state: TrainState, batch: dict):
        key = jax.random.fold_in(base_key, state.step)
        if axis_name is not None:
            key = jax.random.fold_in(key, lax.axis_index(axis_name))
        mask = batch.get("mask")
        if mask is None:
            mask = jnp.ones((batch["x"].shape[0],), jnp.float32)

        def loss_fn(params):
            return step_loss(model, objective, params, state.model_state, batch, key, mask, l1=l1 or None,
                             l2=l2 or None, axis_name=axis_name, psum_loss=axis_name is not None and not pmean_grads)

        (loss, (sums, new_model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        if axis_name is not None:
            if pmean_grads:
                grads = lax.pmean(grads, axis_name)
                loss = lax.pmean(loss, axis_name)
            sums = lax.psum(sums, axis_name)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        sums["objective"] = loss * sums["n"]  # loss incl. penalties, as a sum for averaging
        return TrainState(state.step + 1, params, new_model_state, opt_state), sums

    return train_step


def make_eval_step(model, objective, *, axis_name: str | None = None):
    """``eval_step(params, model_state, batch) -> metric sums`` (train=False, masked)."""
    def eval_step(params, model_state, batch):
        outputs, _ = model.apply(params, batch["x"], state=model_state, train=False)
        _, metrics_pe = objective(outputs, batch)
        sums = _masked_sums(metrics_pe, batch["mask"])
        return lax.psum(sums, axis_name) if axis_name is not None else sums
    return eval_step


def predict_fn(model):
    """``predict(params, model_state, x) -> outputs`` (train=False), jitted."""
    return jax.jit(lambda params, model_state, x: model.apply(params, x, state=model_state, train=False)[0])
