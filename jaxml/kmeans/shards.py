"""The per-device view of data split over the ``data`` mesh axis, and the few collectives K-means needs.

Every K-means kernel is written once for one device's shard of the points. ``Shards(axis=None)``
is the single-device case (every collective is the identity); ``Shards(axis="data", count=n)``
is the body of a ``jax.shard_map`` over a 1-D mesh, where only small statistics (k x d sums,
k counts, scalars, one point at a time) ever cross devices.

Shard ``i`` holds the global rows ``[i * n_local, (i + 1) * n_local)``, so "lowest global index"
tie-breaks mean the same thing on one device and on many.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax import lax


@dataclasses.dataclass(frozen=True)
class Shards:
    """Collectives over the mesh axis ``axis`` with ``count`` devices (``axis=None``: one device)."""

    axis: str | None = None
    count: int = 1

    def sum(self, x):
        """Sum over devices (``lax.psum``): the one reduction the map-reduce needs."""
        return x if self.axis is None else lax.psum(x, self.axis)

    def max(self, x):
        return x if self.axis is None else lax.pmax(x, self.axis)

    def min(self, x):
        return x if self.axis is None else lax.pmin(x, self.axis)

    def index(self):
        """This device's position along the axis (0 on one device)."""
        return jnp.int32(0) if self.axis is None else lax.axis_index(self.axis).astype(jnp.int32)

    def gather(self, x):
        """Stack every device's ``x``: ``[count, *x.shape]`` (small arrays only)."""
        return x[None] if self.axis is None else lax.all_gather(x, self.axis)

    def from_owner(self, picked, owner):
        """Deliver to every device the rows ``picked[t]`` of the device ``owner[t]``.

        picked: [T, m] (each device's own candidates); owner: i32[T] -> [T, m]. Non-owners contribute
        zeros to a psum.
        """
        mine = (owner == self.index())[:, None]
        return self.sum(jnp.where(mine, picked, jnp.zeros_like(picked)))

    def argmax(self, value, global_idx, payload):
        """Global argmax of per-device candidates, ties to the lowest global index.

        value: f32[...]; global_idx: i32[...]; payload: a pytree of arrays of the winner.
        Returns (value, global_idx, payload) of the winner on every device.
        """
        if self.axis is None:
            return value, global_idx, payload
        best = self.max(value)
        big = jnp.iinfo(jnp.int32).max
        winner = self.min(jnp.where(value == best, global_idx, big))
        mine = global_idx == winner
        payload = jax.tree.map(lambda a: self.sum(jnp.where(mine, a, jnp.zeros_like(a))), payload)
        return best, winner, payload
