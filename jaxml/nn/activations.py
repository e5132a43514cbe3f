"""Activation functions by name.

sigmoid(x) = 1 / (1 + e^-x); relu(x) = max(0, x); tanh; linear(x) = x;
softmax(x)_i = e^{x_i} / sum_j e^{x_j} over the last axis.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

Activation = Callable[[jax.Array], jax.Array]


def linear(x: jax.Array) -> jax.Array:
    return x


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu, "tanh": jnp.tanh, "linear": linear,
    "softmax": jax.nn.softmax, "elu": jax.nn.elu, "gelu": jax.nn.gelu,
}


def get(name: str) -> Activation:
    """Look an activation up by name; unknown names list the known ones."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}") from None
