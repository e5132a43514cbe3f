"""Multi-layer perceptron: x -> [dense -> (bn) -> act -> (dropout)] * len(widths) -> dense head(s).

x: f32[batch, *input_shape] (flattened first), y: f32[batch, num_outputs] logits (or a dict for
several heads). For layouts the knobs below cannot express (e.g. batch norm on the first layer only,
as in the report's digit MLP), pass ``layers`` — a sequential spec (see models/sequential.py).
"""
from __future__ import annotations

from typing import Sequence

from jaxml.models import sequential
from jaxml.models.base import Model


def spec_from_widths(widths: Sequence[int], *, batch_norm: bool = False, dropout: float = 0.0) -> tuple[str, ...]:
    """('flatten', 'dense:w0', ['bn'], 'act', ['dropout:r'], 'dense:w1', ...)."""
    spec = ["flatten"]
    for w in widths:
        spec.append(f"dense:{int(w)}")
        if batch_norm:
            spec.append("bn")
        spec.append("act")
        if dropout > 0:
            spec.append(f"dropout:{dropout}")
    return tuple(spec)


def make(*, input_shape: Sequence[int], widths: Sequence[int] = (), num_outputs: int = 10,
         heads: dict[str, int] | None = None, activation: str = "relu", initializer: str = "glorot_uniform",
         batch_norm: bool = False, dropout: float = 0.0, layers: Sequence[str] | None = None,
         bn_momentum: float = 0.99, remat: bool = False) -> Model:
    """An MLP Model (see models/base.py for the contract); ``remat``: see models/sequential.py."""
    spec = tuple(layers) if layers else spec_from_widths(widths, batch_norm=batch_norm, dropout=dropout)
    if spec[0] != "flatten":
        spec = ("flatten",) + spec
    return sequential.build("mlp", spec, input_shape, heads or {"out": num_outputs}, activation=activation,
                            initializer=initializer, bn_momentum=bn_momentum, remat=remat)
