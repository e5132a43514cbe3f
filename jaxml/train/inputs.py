"""Inputs checked at the door of a run, before anything is trained or written.

A run's arrays must suit its model and objective: ``softmax_xent`` takes integer class labels in
``[0, num_outputs)`` (a label of -1 used to train as the last class, one of ``num_outputs`` or more gave NaN
that the NaN guard blamed on the learning rate), ``mse`` and ``sigmoid_xent`` take targets of the model's
output shape. ``check_splits`` finds the model's per-example output shape by tracing it once (no compile) and
checks the train arrays (when held in memory) and every evaluation split with ``jaxml.data.check_targets``;
objectives a task registers are not checked here.
"""
from __future__ import annotations

import jax
import numpy as np

from jaxml import data as data_lib
from jaxml.data import pipeline

TARGET_KINDS = {"softmax_xent": "labels", "mse": "real", "sigmoid_xent": "real"}


def output_shape(model, input_shape, dtype=np.float32) -> tuple | None:
    """The model's output shape for one example (eval mode), or None when its output is not one array."""
    params = jax.eval_shape(model.init, jax.random.key(0))
    x = jax.ShapeDtypeStruct((1, *input_shape), dtype)
    out = jax.eval_shape(lambda p, xb: model.apply(p, xb, state=model.init_state(), train=False)[0], params, x)
    return tuple(out.shape[1:]) if isinstance(out, jax.ShapeDtypeStruct) else None


def check_splits(config, splits: pipeline.Splits, model) -> None:
    """ValueError naming the split, ``y`` and the first bad example when the targets do not suit
    ``config.objective`` and ``model``."""
    kind = TARGET_KINDS.get(config.objective)
    if kind is None:
        return
    arrays = dict(splits.eval)
    if isinstance(splits.train, pipeline.ArraySource):
        arrays["train"] = splits.train.arrays
    if not any("y" in a for a in arrays.values()):
        return
    x = next((a["x"] for a in arrays.values() if "x" in a), None)
    shape = output_shape(model, splits.input_shape, np.float32 if x is None else np.asarray(x).dtype)
    if shape is not None and (kind == "real" or shape):
        data_lib.check_targets(arrays, config.objective, kind, shape)
