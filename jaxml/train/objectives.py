"""Objectives: what a task minimises and reports, per example.

An objective maps (model outputs, batch) to (loss f32[batch], {metric: f32[batch]}); the training
loop averages them under the batch's ``mask`` and adds parameter penalties. Register new ones in
``OBJECTIVES``; the clock task's live in train/clock_task.py.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxml import losses, metrics

Objective = Callable[[object, dict], tuple[jax.Array, dict]]


def mse(outputs, batch):
    loss = losses.mse(outputs, batch["y"])
    return loss, {"loss": loss, "mse": loss}


def softmax_xent(outputs, batch):
    loss = losses.softmax_cross_entropy(outputs, batch["y"])
    return loss, {"loss": loss, "accuracy": metrics.correct(outputs, batch["y"])}


def sigmoid_xent(outputs, batch):
    loss = losses.sigmoid_cross_entropy(outputs, batch["y"])
    acc = ((outputs > 0) == (batch["y"] > 0.5)).astype(jnp.float32)
    return loss, {"loss": loss, "accuracy": acc.reshape(acc.shape[0], -1).mean(-1)}


def _clock(name):
    def objective(outputs, batch):
        from jaxml.train import clock_task
        return getattr(clock_task, name)(outputs, batch)
    return objective


OBJECTIVES: dict[str, Objective] = {"mse": mse, "softmax_xent": softmax_xent, "sigmoid_xent": sigmoid_xent,
                                    "clock_heads": _clock("heads_objective"),
                                    "clock_periodic": _clock("periodic_objective"),
                                    "clock_absolute": _clock("absolute_objective")}


def view_maps(name: str) -> dict:
    """For an objective whose outputs know how they transform under the square's symmetries: {head: map back}
    (jaxml/models/views.py; ``config.model.test_views``). Only the clock objectives have them."""
    if name.startswith("clock_") and name in OBJECTIVES:
        from jaxml.train import clock_task
        return clock_task.VIEW_MAPS
    raise ValueError(f"config.model.test_views > 1: objective {name!r} does not say how its outputs transform "
                     "when the image is rotated or mirrored; only the clock_* objectives do")


def get(name: str) -> Objective:
    if name not in OBJECTIVES:
        raise ValueError(f"config.objective: unknown objective {name!r}; known: {sorted(OBJECTIVES)}")
    return OBJECTIVES[name]
