"""Evaluation metrics: per-example values (for masked averaging) and confusion matrices."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def correct(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """f32[batch]: 1 where argmax(logits) == label."""
    return (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """int64[num_classes, num_classes], rows = true class, columns = predicted class."""
    labels, predictions = np.asarray(labels).ravel(), np.asarray(predictions).ravel()
    if labels.shape != predictions.shape:
        raise ValueError(f"confusion_matrix: {labels.shape[0]} labels but {predictions.shape[0]} predictions")
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (labels, predictions), 1)
    return cm
