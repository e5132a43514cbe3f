"""The assignment pass: nearest centre per point and per-cluster statistics, one block of rows at a time.

Maths. For centred points x_i and centres c_j, the nearest centre is

    label_i = argmin_j ||x_i - c_j||^2 = argmin_j (||c_j||^2 - 2 x_i.c_j) = argmax_j (x_i.c_j - ||c_j||^2 / 2)

so one matmul of the augmented points [x_i, 1] (``xa``: f32[..., d+1]) with the augmented centres
[c_j, -||c_j||^2/2] (``ca``: f32[k, d+1]) gives every score; the squared distance to the winner is
max(||x_i||^2 - 2 * score_i, 0) (clamped: rounding may make it slightly negative). The data are
centred on their weighted mean first (as scikit-learn does), which keeps ||x||^2 small and the
expansion accurate in float32; the final inertia is recomputed exactly as ||x_i - c_label||^2.

The pass never materialises the n x k score matrix: ``lax.scan`` walks blocks of B rows
(``Blocks``: f32[nb, B, ...]), so a k x B score tile stays in cache, its argmax is taken at once,
and one scatter-add of w_i * [x_i, 1] into f32[k, d+1] yields the sums (first d columns) and the
weights (last column) of every cluster.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxml.kmeans.shards import Shards

# Score of a masked (inactive) centre: finite, so 0-weight padding rows never produce NaN.
MASKED_SCORE = -1e30


class Blocks(NamedTuple):
    """One device's points, centred and blocked. Padding rows have weight 0."""

    xa: jax.Array  # f32[nb, B, d+1]  centred points with a trailing 1
    w: jax.Array   # f32[nb, B]       sample weights
    xx: jax.Array  # f32[nb, B]       ||x||^2 of the centred points


def augment_centers(c, active=None):
    """[c, -||c||^2/2]: f32[k, d] -> f32[k, d+1]; rows where ``active`` is False never win."""
    half_sq = 0.5 * jnp.sum(c * c, axis=1)
    if active is not None:
        half_sq = jnp.where(active, half_sq, -MASKED_SCORE)
    return jnp.concatenate([c, -half_sq[:, None]], axis=1)


def scores(ca, xa):
    """x.c - ||c||^2/2 for every centre and row: f32[k, d+1], f32[B, d+1] -> f32[k, B]."""
    return lax.dot_general(ca, xa, (((1,), (1,)), ((), ())), precision=lax.Precision.HIGHEST)


def argmax_rows(s):
    """Max and first argmax along axis 0 of s: f32[k, B] -> (f32[B], i32[B]).

    XLA's variadic argmax reduction is slow on CPU; a chain of elementwise compare/selects over the
    k rows fuses into one vectorised loop. For large k a pairwise tree (adjacent pairs, so the left
    operand always holds the lower indices and ``>`` keeps the first maximum) bounds the graph size.
    """
    k = s.shape[0]
    if k <= 64:
        best, idx = s[0], jnp.zeros(s.shape[1:], jnp.int32)
        for j in range(1, k):
            better = s[j] > best
            best = jnp.where(better, s[j], best)
            idx = jnp.where(better, jnp.int32(j), idx)
        return best, idx
    idx = jnp.broadcast_to(jnp.arange(k, dtype=jnp.int32)[:, None], s.shape)
    while s.shape[0] > 1:
        if s.shape[0] % 2:
            s = jnp.concatenate([s, jnp.full((1,) + s.shape[1:], -jnp.inf, s.dtype)])
            idx = jnp.concatenate([idx, idx[-1:]])
        better = s[1::2] > s[0::2]
        s = jnp.where(better, s[1::2], s[0::2])
        idx = jnp.where(better, idx[1::2], idx[0::2])
    return s[0], idx[0]


def _nearest(ca, xa, xx):
    """(labels i32[B], squared distance f32[B]) of one block, from the expanded form."""
    best, label = argmax_rows(scores(ca, xa))
    return label, jnp.maximum(xx - 2.0 * best, 0.0)


def cluster_stats(blocks: Blocks, ca, shards: Shards, *, with_inertia: bool = True):
    """One Lloyd map-reduce: (f32[k, d+1] weighted sums with weights last, f32[] inertia), summed over devices.

    ``with_inertia=False`` (inside the Lloyd loop) skips the distances and returns inertia 0: the
    argmax alone is one fused loop over the score tile.
    """
    k, da = ca.shape

    def body(carry, blk):
        sums, inertia = carry
        xa, w, xx = blk
        best, label = argmax_rows(scores(ca, xa))
        sums = sums + jax.ops.segment_sum(xa * w[:, None], label, k)
        if with_inertia:
            inertia = inertia + jnp.dot(w, jnp.maximum(xx - 2.0 * best, 0.0))
        return (sums, inertia), None

    zero = (jnp.zeros((k, da), ca.dtype), jnp.zeros((), ca.dtype))
    (sums, inertia), _ = lax.scan(body, zero, blocks)
    return shards.sum(sums), shards.sum(inertia)


def farthest_point(blocks: Blocks, ca, taken, shards: Shards):
    """The positive-weight point farthest from its nearest centre, skipping global indices in ``taken``.

    taken: i32[k] (-1 = none). Returns (distance f32[], global index i32[], its label i32[],
    its augmented row f32[d+1], its weight f32[]), identical on every device; ties -> lowest index.
    """
    nb, bsz = blocks.w.shape
    base = shards.index() * (nb * bsz)

    def body(carry, blk):
        i, xa, w, xx = blk
        label, dist = _nearest(ca, xa, xx)
        gidx = base + i * bsz + jnp.arange(bsz, dtype=jnp.int32)
        ok = (w > 0) & ~jnp.any(gidx[:, None] == taken[None, :], axis=1)
        dist = jnp.where(ok, dist, -1.0)
        j = jnp.argmax(dist)
        cand = (dist[j], gidx[j], label[j], xa[j], w[j])
        better = cand[0] > carry[0]  # strict: an earlier block keeps ties
        return jax.tree.map(lambda a, b: jnp.where(better, a, b), cand, carry), None

    da = blocks.xa.shape[-1]
    init = (jnp.float32(-2.0), jnp.int32(-1), jnp.int32(0), jnp.zeros((da,), jnp.float32), jnp.float32(0))
    steps = jnp.arange(nb, dtype=jnp.int32)
    (dist, gidx, label, row, w), _ = lax.scan(body, init, (steps, blocks.xa, blocks.w, blocks.xx))
    dist, gidx, (label, row, w) = shards.argmax(dist, gidx, (label, row, w))
    return dist, gidx, label, row, w


def final_assignment(blocks: Blocks, c, active, shards: Shards):
    """Labels and exact per-cluster statistics for the centres ``c`` (f32[k, d], centred coordinates).

    Returns (labels i32[nb * B] of this device, within-cluster SS f32[k], weights per cluster f32[k]);
    the distance is recomputed as ||x - c_label||^2, not from the expansion.
    """
    k, d = c.shape
    ca = augment_centers(c, active)

    def body(carry, blk):
        within, sizes = carry
        xa, w, xx = blk
        label, _ = _nearest(ca, xa, xx)
        diff = xa[:, :d] - c[label]
        dist = jnp.sum(diff * diff, axis=1)
        within = within + jax.ops.segment_sum(w * dist, label, k)
        sizes = sizes + jax.ops.segment_sum(w, label, k)
        return (within, sizes), label

    zero = (jnp.zeros((k,), c.dtype), jnp.zeros((k,), c.dtype))
    (within, sizes), labels = lax.scan(body, zero, blocks)
    return labels.reshape(-1), shards.sum(within), shards.sum(sizes)
