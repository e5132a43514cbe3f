"""Lloyd's algorithm as one ``lax.while_loop``, with deterministic empty-cluster re-seeding.

Iteration t (centres c^t, centred coordinates):
    assign  label_i = argmin_j ||x_i - c_j^t||^2               (assign.cluster_stats, one psum)
    reseed  each empty active cluster j, in increasing j, takes the positive-weight point farthest
            from its nearest centre (not yet taken this iteration), which leaves its old cluster
            (scikit-learn's rule for empty clusters)
    update  c_j^{t+1} = sum_{label_i = j} w_i x_i / sum_{label_i = j} w_i   (a cluster of weight 0
            keeps its centre: never a division by zero, never NaN)
    stop    when sum_j ||c_j^{t+1} - c_j^t||^2 <= tol_abs, or after max_iter iterations.

``active`` (bool[k] or None = all) masks centres out entirely — the automatic-k sweep runs every k <= k_max as the
same k_max-centre program. Everything here runs unchanged under ``vmap`` (restarts, k sweep) and
inside ``shard_map`` (``Shards`` supplies the collectives).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxml.kmeans.assign import Blocks, cluster_stats, farthest_points, half_norms
from jaxml.kmeans.shards import Shards


def reseed_empty(blocks: Blocks, c, h, sums, active, shards: Shards):
    """Give every empty active cluster the farthest remaining point; sums: f32[k, d+1] (weights last).

    Only when some cluster is empty (a while_loop of at most one trip, so a batch of restarts under
    vmap pays nothing when none is empty): one extra pass finds the k farthest points, then the
    e-th empty cluster (increasing index) takes the e-th farthest point, which leaves its cluster.
    """
    k, da = sums.shape
    empty = sums[:, da - 1] <= 0
    if active is not None:
        empty = empty & active
    n_empty = jnp.sum(empty.astype(jnp.int32))
    ar = jnp.arange(k, dtype=jnp.int32)
    order = jnp.argsort(jnp.where(empty, ar, k + ar))  # empty clusters first, increasing index

    def reseed(state):
        _, sums = state
        # Tie the pass to the loop state, or XLA hoists it out of the (usually 0-trip) loop.
        live_h, sums = lax.optimization_barrier((h, sums))
        _, _, label, rows, w = farthest_points(blocks, c, live_h, k, shards)
        take = (ar < n_empty)[:, None]
        moved = jnp.where(take, w[:, None] * jnp.concatenate([rows, jnp.ones_like(rows[:, :1])], 1), 0.0)
        sums = sums - jax.ops.segment_sum(moved, label, k)  # leaves its old (non-empty) cluster
        sums = sums.at[order].set(jnp.where(take, moved, sums[order]), unique_indices=True)
        return jnp.bool_(True), sums

    _, sums = lax.while_loop(lambda s: ~s[0] & (n_empty > 0), reseed, (jnp.bool_(False), sums))
    return sums


def update_centers(sums, c):
    """Weighted means; clusters of zero weight keep their centre c. sums: f32[k, d+1] -> f32[k, d]."""
    d = c.shape[1]
    weight = sums[:, d]
    nonempty = weight > 0
    return jnp.where(nonempty[:, None], sums[:, :d] / jnp.where(nonempty, weight, 1.0)[:, None], c)


def lloyd(blocks: Blocks, c0, active, *, max_iter: int, tol_abs, shards: Shards):
    """Run Lloyd iterations from centres c0 (f32[k, d], centred). Returns (centres f32[k, d], n_iter i32[])."""

    def cond(state):
        i, _, shift = state
        return (i < max_iter) & (shift > tol_abs)

    def body(state):
        i, c, _ = state
        h = half_norms(c, active)
        sums = cluster_stats(blocks, c, h, shards)
        sums = reseed_empty(blocks, c, h, sums, active, shards)
        new = update_centers(sums, c)
        moved = jnp.sum((new - c) ** 2, axis=1)
        shift = jnp.sum(moved if active is None else jnp.where(active, moved, 0.0))
        return i + 1, new, shift

    state = (jnp.int32(0), c0, jnp.float32(jnp.inf))
    n_iter, c, _ = lax.while_loop(cond, body, state)
    return c, n_iter
