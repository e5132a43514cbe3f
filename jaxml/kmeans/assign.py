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


def cluster_stats(blocks: Blocks, ca, shards: Shards):
    """One Lloyd map-reduce: f32[k, d+1] weighted sums of the points nearest each centre, weights last,
    summed over devices. Per block: one matmul, one fused argmax loop, one scatter-add."""
    k, da = ca.shape

    def body(sums, blk):
        xa, w, _ = blk
        _, label = argmax_rows(scores(ca, xa))
        return sums + jax.ops.segment_sum(xa * w[:, None], label, k), None

    sums, _ = lax.scan(body, jnp.zeros((k, da), ca.dtype), blocks)
    return shards.sum(sums)


def inertia(blocks: Blocks, ca, shards: Shards):
    """sum_i w_i min_j ||x_i - c_j||^2 (expanded form, clamped at 0): one pass, no labels, no scatter."""
    def body(total, blk):
        xa, w, xx = blk
        s = scores(ca, xa)
        best = s[0]
        for j in range(1, s.shape[0]):  # an elementwise max chain fuses into one loop (see argmax_rows)
            best = jnp.maximum(best, s[j])
        return total + jnp.dot(w, jnp.maximum(xx - 2.0 * best, 0.0)), None

    total, _ = lax.scan(body, jnp.zeros((), ca.dtype), blocks)
    return shards.sum(total)


def farthest_points(blocks: Blocks, ca, m: int, shards: Shards):
    """The m positive-weight points farthest from their nearest centre, farthest first (ties: lowest index).

    One pass computes every point's distance to its nearest centre; each device keeps its top m and
    the devices' lists are all-gathered (m rows each) and merged. Returns, identical on every device:
    (distance f32[m], global index i32[m], label i32[m], augmented row f32[m, d+1], weight f32[m]);
    when fewer than m points have positive weight the tail has distance -1 and weight 0.
    """
    nb, bsz = blocks.w.shape

    def body(_, blk):
        xa, w, xx = blk
        label, dist = _nearest(ca, xa, xx)
        return None, (jnp.where(w > 0, dist, -1.0), label)

    _, (dist, label) = lax.scan(body, None, blocks)
    dist, label = dist.reshape(-1), label.reshape(-1)
    top = min(m, dist.shape[0])
    dist, idx = lax.top_k(dist, top)  # equal distances keep the lower index first
    # 2-D indexing: a flattened view would be a second (copied) buffer in the enclosing while loop.
    rows, w = blocks.xa[idx // bsz, idx % bsz], blocks.w[idx // bsz, idx % bsz]
    gidx = shards.index() * (nb * bsz) + idx.astype(jnp.int32)
    cand = (dist, gidx, label[idx], rows, jnp.where(dist >= 0, w, 0.0))
    if shards.axis is not None:  # device-major concatenation keeps global-index order among ties
        cand = tuple(a.reshape((-1,) + a.shape[2:]) for a in map(shards.gather, cand))
        _, pick = lax.top_k(cand[0], m)
        cand = tuple(a[pick] for a in cand)
    elif top < m:
        pad = m - top
        cand = (jnp.pad(cand[0], (0, pad), constant_values=-1.0), jnp.pad(cand[1], (0, pad), constant_values=-1),
                jnp.pad(cand[2], (0, pad)), jnp.pad(cand[3], ((0, pad), (0, 0))), jnp.pad(cand[4], (0, pad)))
    return cand


def final_assignment(blocks: Blocks, c, active, shards: Shards):
    """Labels and exact per-cluster statistics for the centres ``c`` (f32[k, d], centred coordinates).

    Returns (labels i32[nb * B] of this device, within-cluster SS f32[k], weights per cluster f32[k]);
    the distance is recomputed as ||x - c_label||^2, not from the expansion. Two scans: the labels
    are materialised first, because XLA would otherwise re-run the argmax chain inside the gather
    for every gathered element.
    """
    k, d = c.shape
    ca = augment_centers(c, active)
    _, labels = lax.scan(lambda _, blk: (None, argmax_rows(scores(ca, blk[0]))[1]), None, blocks)

    def body(carry, blk):
        within, sizes = carry
        xa, w, label = blk
        diff = xa[:, :d] - c[label]
        within = within + jax.ops.segment_sum(w * jnp.sum(diff * diff, axis=1), label, k)
        sizes = sizes + jax.ops.segment_sum(w, label, k)
        return (within, sizes), None

    zero = (jnp.zeros((k,), c.dtype), jnp.zeros((k,), c.dtype))
    (within, sizes), _ = lax.scan(body, zero, (blocks.xa, blocks.w, labels))
    return labels.reshape(-1), shards.sum(within), shards.sum(sizes)
