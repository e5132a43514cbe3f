"""Weight initializers by name, all ``init(key, shape, dtype) -> array``.

For a weight of shape (..., fan_in, fan_out) (dense: (in, out); conv HWIO: receptive field
times in/out channels):
- glorot_uniform:  U(-a, a), a = sqrt(6 / (fan_in + fan_out))        (Keras default)
- glorot_normal:   truncated N(0, 2 / (fan_in + fan_out))
- lecun_uniform:   U(-a, a), a = sqrt(3 / fan_in)
- he_normal:       truncated N(0, 2 / fan_in)
- standard_normal: N(0, 1)                                            (the from-scratch tutorial)
- zeros
- orthogonal:      a (semi-)orthogonal matrix from the QR of a Gaussian (recurrent kernels)
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp

Initializer = Callable[[jax.Array, Sequence[int], jnp.dtype], jax.Array]

_vs = jax.nn.initializers.variance_scaling

INITIALIZERS: dict[str, Initializer] = {
    "glorot_uniform": jax.nn.initializers.glorot_uniform(),
    "glorot_normal": jax.nn.initializers.glorot_normal(),
    "lecun_uniform": jax.nn.initializers.lecun_uniform(),
    "lecun_normal": jax.nn.initializers.lecun_normal(),
    "he_uniform": jax.nn.initializers.he_uniform(),
    "he_normal": jax.nn.initializers.he_normal(),
    "standard_normal": jax.nn.initializers.normal(stddev=1.0),
    "zeros": jax.nn.initializers.zeros,
    "orthogonal": jax.nn.initializers.orthogonal(),
}


def get(name: str) -> Initializer:
    """Look an initializer up by name; unknown names list the known ones."""
    try:
        return INITIALIZERS[name]
    except KeyError:
        raise ValueError(f"unknown initializer {name!r}; known: {sorted(INITIALIZERS)}") from None
