"""The from-scratch tutorial's sigmoid neuron and the 2-2-1 network built from it
(Victor Zhou, "Machine Learning for Beginners: An Introduction to Neural Networks").

neuron:  y = sigmoid(w . x + b)                          w: f32[2], b: f32[], x: f32[..., 2]
network: h1 = neuron(h1; x), h2 = neuron(h2; x), o1 = neuron(o1; [h1, h2])

Params of the network: ``{"h1": {"w", "b"}, "h2": {"w", "b"}, "o1": {"w", "b"}}`` — the tutorial's
w1, w2, b1 are h1's, w3, w4, b2 are h2's, w5, w6, b3 are o1's. Like the tutorial, every weight and
bias starts from a standard normal.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxml.models.base import Model

NEURONS = ("h1", "h2", "o1")


def neuron(params: dict, x: jax.Array) -> jax.Array:
    """sigmoid(x . w + b) for x f32[..., n] -> f32[...]."""
    return jax.nn.sigmoid(x @ params["w"] + params["b"])


def init_network(key, dtype=jnp.float32) -> dict:
    """Standard-normal weights and biases for h1, h2 and o1."""
    keys = jax.random.split(key, 2 * len(NEURONS))
    return {name: {"w": jax.random.normal(keys[2 * i], (2,), dtype),
                   "b": jax.random.normal(keys[2 * i + 1], (), dtype)}
            for i, name in enumerate(NEURONS)}


def network(params: dict, x: jax.Array) -> jax.Array:
    """The 2-2-1 network: x f32[..., 2] -> o1 f32[...]."""
    h = jnp.stack([neuron(params["h1"], x), neuron(params["h2"], x)], axis=-1)
    return neuron(params["o1"], h)


def make() -> Model:
    """The 2-2-1 network as a Model (stateless, no dropout)."""
    def apply(params, x, *, state=None, train=False, key=None, axis_name=None):
        return network(params, x), {}
    return Model(name="neuron_net", init=init_network, init_state=dict, apply=apply)
