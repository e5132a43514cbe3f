"""Small datasets jaxml makes itself: the tutorial's four people, the GRU adding problem, Gaussian blobs."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# Victor Zhou's tutorial: (weight - 135 lb, height - 66 in), gender F = 1.
ZHOU_PEOPLE = {"Alice": ([-2.0, -1.0], 1.0), "Bob": ([25.0, 6.0], 0.0),
               "Charlie": ([17.0, 4.0], 0.0), "Diana": ([-15.0, -6.0], 1.0)}
ZHOU_QUERIES = {"Emily": [-7.0, -3.0], "Frank": [20.0, 2.0]}


def zhou_gender() -> dict:
    """{"x": f32[4, 2], "y": f32[4]} in the tutorial's order (Alice, Bob, Charlie, Diana)."""
    return {"x": np.array([p[0] for p in ZHOU_PEOPLE.values()], np.float32),
            "y": np.array([p[1] for p in ZHOU_PEOPLE.values()], np.float32)}


def adding_problem(key: jax.Array, batch_size: int, length: int = 100) -> dict:
    """The adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015).

    x f32[batch, length, 2]: channel 0 values ~ U[0, 1], channel 1 a marker that is 1 at exactly two
    positions, one in each half of the sequence; y f32[batch] = the sum of the two marked values.
    Always predicting E[y] = 1 scores MSE Var(y) = 2/12 ~= 0.1667.
    """
    kv, k1, k2 = jax.random.split(key, 3)
    values = jax.random.uniform(kv, (batch_size, length))
    half = length // 2
    i1 = jax.random.randint(k1, (batch_size,), 0, half)
    i2 = jax.random.randint(k2, (batch_size,), half, length)
    pos = jnp.arange(length)
    marker = ((pos == i1[:, None]) | (pos == i2[:, None])).astype(jnp.float32)
    return {"x": jnp.stack([values, marker], axis=-1), "y": (values * marker).sum(axis=1)}


def gaussian_blobs(seed: int, n: int, *, num_classes: int = 4, features: int = 8, spread: float = 1.0) -> dict:
    """A small classification set: class c ~ N(mu_c, spread^2 I) with mu_c ~ N(0, 9 I), seeded.
    {"x": f32[n, features], "y": int32[n]} — used by tests, demos and the multi-device checks."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, (num_classes, features))
    y = rng.integers(0, num_classes, n).astype(np.int32)
    x = (centres[y] + spread * rng.normal(size=(n, features))).astype(np.float32)
    return {"x": x, "y": y}
