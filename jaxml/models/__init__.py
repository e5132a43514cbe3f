"""Model registry: ``get(name, **hyper) -> Model``; see models/base.py for the contract."""
from __future__ import annotations

from jaxml.models import cnn, gru, mlp, neuron
from jaxml.models.base import Model

REGISTRY = {"neuron_net": neuron.make, "mlp": mlp.make, "cnn": cnn.make, "gru": gru.make}


def get(name: str, **hyper) -> Model:
    """Build a model by registry name; an unknown name lists the known ones."""
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; known: {sorted(REGISTRY)}")
    return REGISTRY[name](**hyper)
