"""Activation functions by name.

sigmoid(x) = 1 / (1 + e^-x); relu(x) = max(0, x); tanh; linear(x) = x;
softmax(x)_i = e^{x_i} / sum_j e^{x_j} over the last axis.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

Activation = Callable[[jax.Array], jax.Array]


def sigmoid(x: jax.Array) -> jax.Array:
    return jax.nn.sigmoid(x)


def relu(x: jax.Array) -> jax.Array:
    return jax.nn.relu(x)


def tanh(x: jax.Array) -> jax.Array:
    return jnp.tanh(x)


def linear(x: jax.Array) -> jax.Array:
    return x


def softmax(x: jax.Array) -> jax.Array:
    return jax.nn.softmax(x, axis=-1)


def elu(x: jax.Array) -> jax.Array:
    return jax.nn.elu(x)


def gelu(x: jax.Array) -> jax.Array:
    return jax.nn.gelu(x)


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": sigmoid, "relu": relu, "tanh": tanh, "linear": linear, "softmax": softmax,
    "elu": elu, "gelu": gelu,
}


def get(name: str) -> Activation:
    """Look an activation up by name; unknown names list the known ones."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}") from None
