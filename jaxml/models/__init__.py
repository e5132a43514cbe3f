"""Model registry: ``get(name, **hyper)`` and ``from_config(config.model, input_shape)``; the contract is in
models/base.py. A new model is one file with a ``make(**hyper) -> Model`` plus one ``register`` line:

    models.register("linear", linear.make)            # then config.model.name = "linear"

``from_config`` builds a model from its config section (every field but ``name`` and ``test_views`` is a
keyword of ``make``) and the input spec: ``input_shape`` is passed when ``make`` takes it, unless the model
registers its own ``from_config(input_shape, **hyper)`` (the GRU takes ``input_features`` = the last axis).
``summary(params)`` prints a parameter pytree as a table.
"""
from __future__ import annotations

import inspect
from typing import Callable, NamedTuple, Sequence

from jaxml.models import cnn, gru, mlp, neuron, resnet, text_gru, transformer
from jaxml.models.base import Model
from jaxml.models.summary import num_params, summary

__all__ = ["Model", "REGISTRY", "defaults", "from_config", "get", "hyperparameters", "num_params", "register",
           "summary"]

# Config fields of the model section that are not hyperparameters of ``make``.
NON_HYPER_FIELDS = ("name", "test_views")


class Entry(NamedTuple):
    make: Callable[..., Model]
    from_config: Callable[..., Model]


REGISTRY: dict[str, Entry] = {}


def register(name: str, make: Callable[..., Model], *, from_config: Callable[..., Model] | None = None) -> None:
    """Make ``name`` buildable by ``get`` and ``from_config``. ``from_config(input_shape, **hyper)`` defaults to
    ``make(input_shape=input_shape, **hyper)`` when ``make`` takes ``input_shape``, else ``make(**hyper)``."""
    if from_config is None:
        takes_shape = "input_shape" in inspect.signature(make).parameters

        def from_config(input_shape, **hyper):
            if takes_shape:
                hyper.setdefault("input_shape", tuple(input_shape))
            return make(**hyper)
    REGISTRY[name] = Entry(make, from_config)


def get(name: str, **hyper) -> Model:
    """Build a model by registry name; an unknown name lists the known ones."""
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; known: {sorted(REGISTRY)}")
    return REGISTRY[name].make(**hyper)


def defaults(name: str) -> dict:
    """The keyword defaults of model ``name``'s ``make`` ({} for a name not registered)."""
    if name not in REGISTRY:
        return {}
    params = inspect.signature(REGISTRY[name].make).parameters.items()
    return {k: p.default for k, p in params if p.default is not inspect.Parameter.empty}


def hyperparameters(model_config) -> dict:
    """The ``make`` keywords of a config's model section (lists as tuples)."""
    hyper = {k: v for k, v in model_config.to_dict().items() if k not in NON_HYPER_FIELDS}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in hyper.items()}


def from_config(model_config, input_shape: Sequence[int]) -> Model:
    """The model named ``model_config.name``, built from that section and the data's ``input_shape``."""
    if model_config.name not in REGISTRY:
        raise ValueError(f"config.model.name: unknown model {model_config.name!r}; known: {sorted(REGISTRY)}")
    return REGISTRY[model_config.name].from_config(tuple(input_shape), **hyperparameters(model_config))


register("neuron_net", neuron.make)
register("mlp", mlp.make)
register("cnn", cnn.make)
register("gru", gru.make, from_config=gru.from_config)
register("resnet", resnet.make)
register("transformer", transformer.make)
register("vit", transformer.make_vit)
register("text_gru", text_gru.make)
