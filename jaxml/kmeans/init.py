"""Initial centres on one device's shard: greedy k-means++ and weighted random points.

k-means++, greedy variant (Arthur & Vassilvitskii 2007; scikit-learn's ``_kmeans_plusplus``):
    c_1 ~ w_i;  D_i = min_j ||x_i - c_j||^2
    for each next centre: draw T = 2 + floor(ln k) candidates with probability proportional to
    w_i D_i, keep the candidate that minimises the potential sum_i w_i min(D_i, ||x_i - cand||^2).
A draw u * total is located on the running total of w_i D_i in three levels: across devices
(per-device totals, all-gathered: one number per device), across blocks, then within the one
block hit — so the data never move and no O(n) cumsum is needed.

Random: k distinct points drawn without replacement with probability proportional to w_i, by
Gumbel-top-k (the k largest of log w_i + G_i, G_i ~ Gumbel): each device keeps its local top k,
then the top k of those. The noise is drawn for the true global row count, so one device and
many devices pick the same points.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from jaxml.kmeans.assign import Blocks
from jaxml.kmeans.shards import Shards


def _cumsum_rows(v):
    """Running sums along the last axis of f32[T, B] as two small triangular matmuls (chunks of c, then
    chunk offsets): compiles far faster on XLA:CPU than cumsum's log-depth scan, and is as exact. Chunks are
    64 wide whatever B (zeros pad the last one): a B with no factor near 64 (4,270 = 2 x 2,135) would otherwise
    make the offsets' triangle B/2 wide, ~B^2/4 multiply-adds per row."""
    t, b = v.shape
    c = 64
    pad = -b % c
    if pad:
        return _cumsum_rows(jnp.pad(v, ((0, 0), (0, pad))))[:, :b]

    def tri(m):  # tri[i, j] = 1 for i <= j
        return jnp.triu(jnp.ones((m, m), v.dtype))

    hi = lax.Precision.HIGHEST
    chunks = v.reshape(t, b // c, c)
    within = jnp.einsum("tgi,ij->tgj", chunks, tri(c), precision=hi)
    offsets = jnp.einsum("tg,gh->th", within[:, :, -1], tri(b // c), precision=hi) - within[:, :, -1]
    return (within + offsets[:, :, None]).reshape(t, b)


def _locate(u, weights, shards: Shards):
    """Rows hit by draws u (f32[T] in [0, 1)) on the global running total of ``weights`` (f32[nb, B]).

    Returns (local flat index i32[T], owning device i32[T]): the first row whose running total
    reaches u * total (numpy's ``searchsorted(side='left')``, as scikit-learn uses). The total is
    located in three levels — device, block, row — so only T blocks of B rows are ever cumsum-ed.
    """
    nb, bsz = weights.shape

    def first_reaching(ends, r):  # searchsorted, side="left"
        return jnp.sum(ends[None, :] < r[:, None], axis=1)

    block_tot = jnp.sum(weights, axis=1)
    totals = shards.gather(jnp.sum(block_tot))
    ends = jnp.cumsum(totals)
    r = u * ends[-1]
    owner = jnp.minimum(first_reaching(ends, r), shards.count - 1).astype(jnp.int32)
    block_ends = jnp.cumsum(block_tot)
    r = jnp.minimum(r - (ends[owner] - totals[owner]), block_ends[-1])
    blk = jnp.minimum(first_reaching(block_ends, r), nb - 1)
    row_ends = _cumsum_rows(weights[blk])  # f32[T, B]
    r = jnp.minimum(r - (block_ends[blk] - block_tot[blk]), row_ends[:, -1])
    row = jnp.minimum(jnp.sum(row_ends < r[:, None], axis=1), bsz - 1)
    return (blk * bsz + row).astype(jnp.int32), owner


def _block_dist(x, xx, mean, cand):
    """||x - mean - cand||^2 for one block and T centred candidates.

    Shapes: x f32[B, d], xx f32[B], mean f32[d], cand f32[T, d] -> f32[T, B]."""
    cross = lax.dot_general(cand, x - mean, (((1,), (1,)), ((), ())), precision=lax.Precision.HIGHEST)
    return jnp.maximum(xx + jnp.sum(cand * cand, axis=1)[:, None] - 2.0 * cross, 0.0)


def kmeans_plusplus(key, blocks: Blocks, k: int, shards: Shards):
    """Greedy k-means++ from one device's blocked points.

    Returns (centres f32[k, d] centred, local flat row index i32[k], owning device i32[k]). Each step
    is two passes over the blocks (potentials of the T candidates, then the new nearest distances),
    so nothing of size T x n is stored. Every draw is made up front, u f32[k, T] from ``key`` (row 0, first
    entry: the first centre; row c: step c's candidates): one generator call, where one per step made XLA:CPU
    compile longer (bench/README.md).
    """
    x, w, xx, mean = blocks
    trials = 2 + int(math.log(k))
    draws = jax.random.uniform(key, (k, trials))   # row 0: the first centre; row c: step c's candidates
    idx, owner = _locate(draws[0, :1], w, shards)
    first = shards.from_owner(blocks.point(idx)[0], owner)
    _, closest = lax.scan(lambda _, b: (None, _block_dist(b[0], b[1], mean, first)[0]), None, (x, xx))
    centers = jnp.zeros((k, x.shape[-1]), x.dtype).at[0].set(first[0])
    picks = (jnp.zeros((k,), jnp.int32).at[0].set(idx[0]), jnp.zeros((k,), jnp.int32).at[0].set(owner[0]))

    def potentials(cand, closest):
        def body(pots, b):
            xb, wb, xxb, cb = b
            return pots + jnp.minimum(cb, _block_dist(xb, xxb, mean, cand)) @ wb, None
        pots, _ = lax.scan(body, jnp.zeros((cand.shape[0],), x.dtype), (x, w, xx, closest))
        return shards.sum(pots)

    def step(c, state):
        centers, closest, picks = state
        idx, owner = _locate(draws[c], w * closest, shards)
        cand = shards.from_owner(blocks.point(idx)[0], owner)
        best = jnp.argmin(potentials(cand, closest))
        chosen = cand[best]
        _, closest = lax.scan(lambda _, b: (None, jnp.minimum(b[2], _block_dist(b[0], b[1], mean, chosen[None])[0])),
                              None, (x, xx, closest))
        picks = (picks[0].at[c].set(idx[best]), picks[1].at[c].set(owner[best]))
        return centers.at[c].set(chosen), closest, picks

    centers, _, (idx, owner) = lax.fori_loop(1, k, step, (centers, closest, picks))
    return centers, idx, owner


def random_points(key, blocks: Blocks, k: int, n_true: int, shards: Shards):
    """k distinct rows drawn without replacement with probability proportional to w.

    Returns (centres f32[k, d] centred, local flat row index i32[k], owning device i32[k]).
    """
    w = blocks.w.reshape(-1)
    n_local = w.shape[0]
    u = jax.random.uniform(key, (n_true,), minval=jnp.finfo(jnp.float32).tiny, maxval=1.0)
    u = jnp.pad(u, (0, shards.count * n_local - n_true), constant_values=0.5)
    u = lax.dynamic_slice(u, (shards.index() * n_local,), (n_local,))
    score = jnp.where(w > 0, jnp.log(jnp.where(w > 0, w, 1.0)) - jnp.log(-jnp.log(u)), -jnp.inf)
    m = min(k, n_local)
    vals, local = lax.top_k(score, m)
    owners = jnp.broadcast_to(shards.index(), (m,))
    vals, local, owners = (shards.gather(a).reshape(-1) for a in (vals, local, owners))
    _, pick = lax.top_k(vals, k)
    idx, owner = local[pick].astype(jnp.int32), owners[pick].astype(jnp.int32)
    return shards.from_owner(blocks.point(idx)[0], owner), idx, owner
