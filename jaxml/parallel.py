"""Device mesh and sharding helpers: one ``data`` axis over every device of every process.

Params are replicated (``P()``) and batches are sharded along their leading axis (``P("data")``).
Per-device programs are written once with ``jax.shard_map``; kernels (K-means, naive Bayes) reduce
their shard to small statistics and combine them with one ``lax.psum(..., DATA_AXIS)``.
"""
from __future__ import annotations

from typing import Sequence

import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named ``data`` over ``devices`` (default: all devices of all processes).

    The axis is ``AxisType.Explicit``-free (``Auto``) so jit's sharding propagation works as in
    JAX < 0.10; shard_map bodies see it as a manual axis either way.
    """
    devices = list(jax.devices() if devices is None else devices)
    return jax.make_mesh((len(devices),), (DATA_AXIS,), axis_types=(AxisType.Auto,), devices=devices)


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding that keeps a full copy on every device (params, optimizer state)."""
    return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """Sharding that splits the leading (batch) axis over the ``data`` axis."""
    return NamedSharding(mesh, P(DATA_AXIS))
