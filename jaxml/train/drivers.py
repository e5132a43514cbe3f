"""How a pure per-device step is run: on one device with ``jax.jit`` (``backend="none"``), or
data-parallel over the ``data`` mesh axis (``shard_map``/``pmap``, see jaxml/parallel.py).

A driver offers ``init(make_state) -> state``, ``train_step(state, batch)``, ``eval_step(params,
model_state, batch)`` and ``put(batch)`` (host numpy -> device arrays in the right layout), ``fetch(tree)`` (one host copy) and
``to_saveable``/``from_saveable`` (the checkpoint layout: one unreplicated copy for every driver, so a
run may resume under another driver).
"""
from __future__ import annotations

import jax

from jaxml.train import step as step_lib


class SingleDevice:
    """jit on the default device; the train state is donated to the step."""

    def __init__(self, model, objective, optimizer, *, seed: int, l1: float, l2: float):
        self.train_step = jax.jit(step_lib.make_train_step(model, objective, optimizer, seed=seed, l1=l1, l2=l2),
                                  donate_argnums=0)
        self.eval_step = jax.jit(step_lib.make_eval_step(model, objective))
        self.shard = (0, 1)

    def init(self, make_state):
        return jax.jit(make_state)()

    def put(self, batch: dict) -> dict:
        return jax.device_put(batch)

    def fetch(self, tree):
        return jax.device_get(tree)

    def to_saveable(self, state):
        return state

    def from_saveable(self, state):
        return state


def make(config, model, objective, optimizer):
    backend = config.parallel.backend
    kwargs = dict(seed=config.seed, l1=config.regularization.l1, l2=config.regularization.l2)
    if backend == "none":
        return SingleDevice(model, objective, optimizer, **kwargs)
    from jaxml import parallel
    return parallel.make_driver(backend, model, objective, optimizer, **kwargs)
