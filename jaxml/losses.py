"""Per-example losses and parameter penalties.

Per-example functions return f32[batch] so the training loop can weight/mask and average them.
- mse(pred, target)                    = mean over non-batch axes of (pred - target)^2
- softmax_cross_entropy(logits, label) = logsumexp(logits) - logits[label]        logits f32[b, C], label int[b]
- sigmoid_cross_entropy(logit, target) = softplus(logit) - target * logit          (stable for any logit)
- l1_penalty(params) = sum |w|, l2_penalty(params) = sum w^2 over kernels (leaves named "w") only,
  as Keras' kernel_regularizer: biases and batch-norm scales are not penalised.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def mse(pred: jax.Array, target: jax.Array) -> jax.Array:
    err = jnp.square(pred - target)
    return err.reshape(err.shape[0], -1).mean(axis=-1) if err.ndim > 1 else err


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def sigmoid_cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
    loss = jax.nn.softplus(logits) - targets * logits
    return loss.reshape(loss.shape[0], -1).mean(axis=-1) if loss.ndim > 1 else loss


def _kernels(params) -> list[jax.Array]:
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    return [leaf for path, leaf in flat if getattr(path[-1], "key", None) in ("w", "w_i", "w_h")]


def l1_penalty(params) -> jax.Array:
    return sum((jnp.abs(w).sum() for w in _kernels(params)), jnp.zeros(()))


def l2_penalty(params) -> jax.Array:
    return sum((jnp.square(w).sum() for w in _kernels(params)), jnp.zeros(()))
