"""Objectives: what a task minimises and reports, per example.

An objective maps (model outputs, batch) to (loss f32[batch], {metric: f32[batch]}); the training
loop averages them under the batch's ``mask`` and adds parameter penalties. Tasks add their own with
``register(name, fn, view_maps=...)`` when their package is imported.
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


OBJECTIVES: dict[str, Objective] = {"mse": mse, "softmax_xent": softmax_xent, "sigmoid_xent": sigmoid_xent}
VIEW_MAPS: dict[str, dict] = {}


def register(name: str, objective: Objective, *, view_maps: dict | None = None) -> None:
    """Add an objective under ``name`` (a task does this when imported). ``view_maps`` — {output head: map
    back} — says how its outputs transform when the input image is rotated or mirrored, which lets
    ``config.model.test_views`` average over those views (jaxml/models/views.py)."""
    OBJECTIVES[name] = objective
    if view_maps is not None:
        VIEW_MAPS[name] = dict(view_maps)


def view_maps(name: str) -> dict:
    """{head: map back} of an objective registered with view maps; ValueError naming it otherwise."""
    if name not in VIEW_MAPS:
        raise ValueError(f"config.model.test_views > 1: objective {name!r} does not say how its outputs transform "
                         f"when the image is rotated or mirrored; objectives that do: {sorted(VIEW_MAPS)}")
    return VIEW_MAPS[name]


def get(name: str) -> Objective:
    """The objective registered as ``name``: ``objective(outputs, batch) -> (loss f[b], {metric: f[b]})``."""
    if name not in OBJECTIVES:
        raise ValueError(f"config.objective: unknown objective {name!r}; known: {sorted(OBJECTIVES)} (a task "
                         "registers its objectives when its package, e.g. jaxml.tasks.<name>, is imported)")
    return OBJECTIVES[name]
