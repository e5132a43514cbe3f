"""Mixed precision from ``config.precision``: one policy applied at the model's ``apply``, and dynamic loss scaling.

``compute_dtype`` float32 | bfloat16 | float16. The master params, the optimizer state, batch-norm running statistics
(nn/layers.batch_norm also computes its batch statistics in float32), the loss and softmax stay float32: the
policy casts the float params and inputs to the compute dtype on the way into ``apply`` and the outputs back to
float32 on the way out, so the objective and the gradients (the transpose of a cast is a cast) are float32.
Why: matmuls and convolutions run at the accelerator's half-precision rate while updates keep float32 resolution.

float16 (5 exponent bits) underflows small gradients, so its loss is multiplied by a scale s before
differentiation and the gradients divided by s (``DynamicLossScale``, the outermost optax transformation, its
state in ``opt_state`` and so in every checkpoint). A step whose unscaled gradients are not all finite is
skipped — params and inner optimizer state unchanged, the step's metric sums dropped (``n`` = 0), s halved;
after ``loss_scale_period`` finite steps in a row s doubles. Only at s = 1 is a non-finite step applied, so
true divergence still reaches the loop's non-finite-loss guard while overflow never does (a log window of only
skipped steps records zero means and examples_per_s 0).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxml.models.base import Model

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}
MIN_SCALE = 1.0


def cast_floats(tree, dtype):
    """Every floating leaf of ``tree`` as ``dtype`` (integer leaves, e.g. token ids, unchanged)."""
    return jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating) else a,
                        tree)


def apply_policy(model: Model, compute_dtype: str) -> Model:
    """``model`` whose ``apply`` computes in ``compute_dtype`` (params and input cast in, outputs float32 out);
    float32: the model itself (programs and results unchanged)."""
    if compute_dtype not in DTYPES:
        raise ValueError(f"config.precision.compute_dtype must be one of {list(DTYPES)}, got {compute_dtype!r}")
    if compute_dtype == "float32":
        return model
    dtype = DTYPES[compute_dtype]

    def apply(params, x, **kwargs):
        outputs, state = model.apply(cast_floats(params, dtype), cast_floats(x, dtype), **kwargs)
        return cast_floats(outputs, jnp.float32), state

    return model._replace(apply=apply)


class LossScaleState(NamedTuple):
    scale: jax.Array         # f32[]: the loss is multiplied by it before differentiation
    good_steps: jax.Array    # int32[]: finite steps since the scale last changed
    inner: Any               # the wrapped optimizer's state


def dynamic_loss_scale(optimizer: optax.GradientTransformation, *, init_scale: float = 2.0 ** 15,
                       period: int = 2000, factor: float = 2.0) -> optax.GradientTransformation:
    """Wrap ``optimizer`` to take gradients of the loss times ``state.scale``: unscale them, and on a non-finite
    one (while scale > 1) return zero updates, keep the inner state, and divide the scale by ``factor``;
    multiply it by ``factor`` after ``period`` finite steps."""
    def init(params):
        return LossScaleState(jnp.asarray(init_scale, jnp.float32), jnp.zeros((), jnp.int32), optimizer.init(params))

    def update(scaled_grads, state: LossScaleState, params=None):
        grads = jax.tree.map(lambda g: g / state.scale, scaled_grads)
        finite = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
        skip = ~finite & (state.scale > MIN_SCALE)
        updates, inner = optimizer.update(grads, state.inner, params)
        updates = jax.tree.map(lambda u: jnp.where(skip, jnp.zeros_like(u), u), updates)
        inner = jax.tree.map(lambda new, old: jnp.where(skip, old, new), inner, state.inner)
        good = jnp.where(finite, state.good_steps + 1, 0)
        grow = good >= period
        scale = jnp.where(finite, jnp.where(grow, state.scale * factor, state.scale),
                          jnp.maximum(state.scale / factor, MIN_SCALE))
        return updates, LossScaleState(scale, jnp.where(grow, 0, good), inner)

    return optax.GradientTransformation(init, update)


def wrap_optimizer(optimizer: optax.GradientTransformation, precision_config) -> optax.GradientTransformation:
    """The run's optimizer: wrapped in dynamic loss scaling when ``compute_dtype`` is float16, else itself."""
    if precision_config is None or precision_config.compute_dtype != "float16":
        return optimizer
    return dynamic_loss_scale(optimizer, init_scale=float(precision_config.loss_scale_init),
                              period=int(precision_config.loss_scale_period))


def loss_scale(opt_state):
    """The current loss scale f32[] of a loss-scaled optimizer state; None otherwise."""
    return opt_state.scale if isinstance(opt_state, LossScaleState) else None


def value_and_grad(fn, scale):
    """``jax.value_and_grad(fn, has_aux=True)``, differentiating ``fn``'s loss times ``scale`` (None: 1) and
    returning the unscaled loss with the scaled gradients."""
    grad_fn = jax.value_and_grad(fn, has_aux=True)
    if scale is None:
        return grad_fn

    def scaled(*args):
        (loss, aux), grads = jax.value_and_grad(lambda *a: _times(fn(*a), scale), has_aux=True)(*args)
        return (loss / scale, aux), grads
    return scaled


def _times(loss_aux, scale):
    loss, aux = loss_aux
    return loss * scale, aux


def drop_skipped(sums: dict, old_opt_state, new_opt_state) -> dict:
    """The step's metric sums, all zero (``n`` too) when the loss-scaled update was skipped (its scale fell)."""
    if not isinstance(old_opt_state, LossScaleState):
        return sums
    skipped = new_opt_state.scale < old_opt_state.scale
    return jax.tree.map(lambda s: jnp.where(skipped, jnp.zeros_like(s), s), sums)
