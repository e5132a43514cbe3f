"""The model contract shared by every model in jaxml.

A ``Model`` bundles three pure functions built from hyperparameters:

    params = model.init(key)                                   # nested dict, named leaves
    state  = model.init_state()                                # {} unless the model has batch norm
    y, state = model.apply(params, x, *, state=None, train=False, key=None, axis_name=None, **extras)

``apply`` always returns the (possibly updated) state so that batch-norm statistics are passed in
and out explicitly, never hidden; stateless models return ``{}``. ``key`` drives dropout in training
(the train step derives it per step with ``jax.random.fold_in(key, step)``). ``axis_name``, when given, names a
mapped device axis over which batch-norm statistics are averaged. ``extras`` names the model's own extra
keyword inputs of ``apply``, part of the contract so the loop and populations can check before they pass one:
``dropout_rates`` (f32[L], replaces the rates of a layer spec's L dropout layers; MLP, CNN), ``example_ids``
(int[batch], each example's index in the step's global batch: dropout masks then depend on (key, layer, index)
only, so any device layout trains alike; MLP, CNN) and ``lengths`` (int[batch], per-sequence lengths; GRU).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

Params = dict
State = dict


class Model(NamedTuple):
    name: str
    init: Callable[[Any], Params]
    init_state: Callable[[], State]
    apply: Callable[..., tuple[Any, State]]
    extras: tuple[str, ...] = ()
