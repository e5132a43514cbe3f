"""The assignment pass: nearest centre per point and per-cluster statistics, one block of rows at a time.

Maths. With the data centred on their weighted mean m (x'_i = x_i - m, centres likewise), the
nearest centre is

    label_i = argmin_j ||x'_i - c_j||^2 = argmax_j (x'_i.c_j - h_j),   h_j = ||c_j||^2 / 2,

so one matmul gives every score, and the squared distance to the winner is
max(||x'_i||^2 - 2 * score_i, 0) (clamped: rounding may make it slightly negative). Centring (as
scikit-learn does) keeps ||x'||^2 small and the expansion accurate in float32; the final
statistics are recomputed exactly as ||x'_i - c_label||^2.

Memory. ``Blocks.x`` is the caller's points viewed as f32[nb, B, d] (no copy when B divides the
rows); each block is centred on the fly, so a fit allocates nothing of size n x d. ``lax.scan``
walks the blocks: a k x B score tile stays in cache, its argmax is taken at once, and one
scatter-add of w_i [x'_i, 1] into f32[k, d+1] gives every cluster's sum (first d columns) and
weight (last column). The n x k distance matrix never exists.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxml.kmeans.shards import Shards

# Half-norm of a masked (inactive) centre: its score is -1e30, finite, so it never wins and never NaNs.
MASKED_HALF_NORM = 1e30
HIGHEST = lax.Precision.HIGHEST


class Blocks(NamedTuple):
    """One device's points in blocks of B rows. Padding rows (if any) have weight 0."""

    x: jax.Array     # f32[nb, B, d]  the points as given (not centred)
    w: jax.Array     # f32[nb, B]     sample weights
    xx: jax.Array    # f32[nb, B]     ||x - mean||^2
    mean: jax.Array  # f32[d]         weighted mean of all points (all devices)

    def rows(self):
        """Per-block scan inputs (x, w, xx)."""
        return self.x, self.w, self.xx

    def point(self, idx):
        """Centred rows and weights at local flat indices idx (i32[T]): (f32[T, d], f32[T])."""
        bsz = self.w.shape[1]
        return self.x[idx // bsz, idx % bsz] - self.mean, self.w[idx // bsz, idx % bsz]


def half_norms(c, active=None):
    """h_j = ||c_j||^2 / 2 (f32[k]); centres where ``active`` is False get 1e30 and never win."""
    h = 0.5 * jnp.sum(c * c, axis=1)
    return h if active is None else jnp.where(active, h, MASKED_HALF_NORM)


# Up to this many coordinates the products c.x are d broadcast multiply-adds, not a matmul: a contraction of
# depth 3 (RGB pixels) wastes most of a matmul kernel, while the elementwise chain fuses with the argmax.
SMALL_D = 4


def cross(c, xc):
    """c_j.x'_i for every centre and row: f32[k, d], f32[B, d] -> f32[k, B]. For d <= SMALL_D a chain of d
    broadcast multiply-adds (elementwise, so the same bits whatever k, B or batching), else one matmul."""
    d = c.shape[1]
    if d > SMALL_D:
        return lax.dot_general(c, xc, (((1,), (1,)), ((), ())), precision=HIGHEST)
    k, b = c.shape[0], xc.shape[0]

    def term(j):  # c[:, j] x'[:, j]^T as a [k, B] product of broadcasts (lax: cheap to trace)
        cj = lax.broadcast_in_dim(lax.slice_in_dim(c, j, j + 1, axis=1), (k, b), (0, 1))
        xj = lax.broadcast_in_dim(lax.slice_in_dim(xc, j, j + 1, axis=1), (k, b), (1, 0))
        return cj * xj
    s = term(0)
    for j in range(1, d):
        s = s + term(j)
    return s


def scores(c, h, xc):
    """x.c - h for every centre and row: f32[k, d], f32[k], f32[B, d] -> f32[k, B]."""
    return cross(c, xc) - h[:, None]


def _row(s, j: int):
    """s[j] by lax (a static slice; jnp indexing costs ~10x more to trace, and the small fits' first run traces)."""
    return lax.squeeze(lax.slice_in_dim(s, j, j + 1), (0,))


def argmax_rows(s):
    """Max and first argmax along axis 0 of s: f32[k, B] -> (f32[B], i32[B]).

    XLA's variadic argmax reduction is slow on CPU; a chain of elementwise compare/selects over the
    k rows fuses into one vectorised loop. For large k a pairwise tree (adjacent pairs, so the left
    operand always holds the lower indices and ``>`` keeps the first maximum) bounds the graph size.
    """
    k = s.shape[0]
    if k <= 64:
        best, idx = _row(s, 0), jnp.zeros(s.shape[1:], jnp.int32)
        for j in range(1, k):
            sj = _row(s, j)
            better = sj > best
            best = lax.select(better, sj, best)
            idx = lax.select(better, lax.full_like(idx, j), idx)
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


def max_rows(s):
    """Max along axis 0 of s: f32[k, B] -> f32[B], as a fused elementwise chain (k <= 64) or pairwise tree.
    XLA:CPU's reduce over the major axis is much slower here (figures in jaxml/kmeans/README.md)."""
    if s.shape[0] <= 64:
        best = _row(s, 0)
        for j in range(1, s.shape[0]):
            best = lax.max(best, _row(s, j))
        return best
    while s.shape[0] > 1:
        if s.shape[0] % 2:
            s = jnp.concatenate([s, jnp.full((1,) + s.shape[1:], -jnp.inf, s.dtype)])
        s = jnp.maximum(s[0::2], s[1::2])
    return s[0]


def top2_rows(s):
    """(max, first argmax, largest value in the other rows) along axis 0 of s: f32[k, B] -> (f32[B], i32[B],
    f32[B]); the third is -inf when k = 1. One chain tracks both (k <= 64): masking s by a separately
    computed argmax makes XLA fuse the whole argmax chain into every masked element (k^2 work)."""
    k = s.shape[0]
    if k > 64:
        best, idx = argmax_rows(s)
        idx = lax.optimization_barrier(idx)
        rows = jnp.arange(k, dtype=jnp.int32)[:, None]
        return best, idx, max_rows(jnp.where(rows == idx[None, :], -jnp.inf, s))
    best, idx, second = s[0], jnp.zeros(s.shape[1:], jnp.int32), jnp.full(s.shape[1:], -jnp.inf, s.dtype)
    for j in range(1, k):
        better = s[j] > best
        second = jnp.where(better, best, jnp.maximum(second, s[j]))
        best = jnp.where(better, s[j], best)
        idx = jnp.where(better, jnp.int32(j), idx)
    return best, idx, second


def cluster_stats(blocks: Blocks, c, h, shards: Shards):
    """One Lloyd map-reduce: f32[k, d+1] weighted sums of the (centred) points nearest each centre,
    weights last, summed over devices. Per block: one matmul, one fused argmax loop, one scatter-add."""
    k, d = c.shape

    def body(sums, blk):
        x, w, _ = blk
        xc = x - blocks.mean
        _, label = argmax_rows(scores(c, h, xc))
        return add_block_sums(sums, xc, w, label), None

    sums, _ = lax.scan(body, jnp.zeros((k, d + 1), c.dtype), blocks.rows())
    return shards.sum(sums)


# Above this many runs a batch sums through one batched scatter instead of one scatter per run (compile size).
MAX_UNROLLED_RUNS = 16


def cluster_stats_runs(blocks: Blocks, c, h, shards: Shards):
    """``cluster_stats`` for m runs at once: c f32[m, k, d], h f32[m, k] -> f32[m, k, d+1], summed over devices.

    Each block is read once for all m runs; run r sums exactly as ``cluster_stats(blocks, c[r], h[r])`` (the same
    scatter in the same order; for d <= SMALL_D the same score bits, else a batched matmul's). ``vmap(cluster_stats)``
    would turn the m scatters into one batched scatter, several times slower on XLA:CPU than m plain ones.
    """
    m, k, d = c.shape

    def body(sums, blk):
        x, w, _ = blk
        xc = x - blocks.mean
        _, label = argmax_rows(jnp.swapaxes(jax.vmap(scores, in_axes=(0, 0, None))(c, h, xc), 0, 1))  # i32[m, B]
        if m > MAX_UNROLLED_RUNS:
            return jax.vmap(add_block_sums, in_axes=(0, None, None, 0))(sums, xc, w, label), None
        return jnp.stack([add_block_sums(sums[r], xc, w, label[r]) for r in range(m)]), None

    sums, _ = lax.scan(body, jnp.zeros((m, k, d + 1), c.dtype), blocks.rows())
    return shards.sum(sums)


def add_block_sums(sums, xc, w, label):
    """sums f32[k, d+1] + the scatter-add of w_i [x'_i, 1] by label (xc f32[B, d], w f32[B], label i32[B]).
    Every Lloyd variant sums through this, block by block in the same order, so they agree bit for bit."""
    update = jnp.concatenate([xc * w[:, None], w[:, None]], axis=1)
    return sums + jax.ops.segment_sum(update, label, sums.shape[0])


def stats_from_labels(blocks: Blocks, labels, k: int, shards: Shards):
    """The sums of ``cluster_stats`` for given labels (i32[nb, B]) instead of the nearest centres."""
    def body(sums, blk):
        x, w, label = blk
        return add_block_sums(sums, x - blocks.mean, w, label), None

    d = blocks.x.shape[2]
    sums, _ = lax.scan(body, jnp.zeros((k, d + 1), blocks.x.dtype), (blocks.x, blocks.w, labels))
    return shards.sum(sums)


def inertia(blocks: Blocks, c, h, shards: Shards):
    """sum_i w_i min_j ||x'_i - c_j||^2 (expanded form, clamped at 0): one pass, no labels, no scatter."""
    def body(total, blk):
        x, w, xx = blk
        best = max_rows(scores(c, h, x - blocks.mean))
        return total + jnp.dot(w, jnp.maximum(xx - 2.0 * best, 0.0)), None

    total, _ = lax.scan(body, jnp.zeros((), c.dtype), blocks.rows())
    return shards.sum(total)


def farthest_points(blocks: Blocks, c, h, m: int, shards: Shards):
    """The m positive-weight points farthest from their nearest centre, farthest first (ties: lowest index).

    One pass computes every point's distance to its nearest centre; each device keeps its top m and
    the devices' lists are all-gathered (m rows each) and merged. Returns, identical on every device:
    (distance f32[m], global index i32[m], label i32[m], centred row f32[m, d], weight f32[m]); when
    fewer than m points have positive weight the tail has distance -1 and weight 0.
    """
    nb, bsz = blocks.w.shape

    def body(_, blk):
        x, w, xx = blk
        best, label = argmax_rows(scores(c, h, x - blocks.mean))
        return None, (jnp.where(w > 0, jnp.maximum(xx - 2.0 * best, 0.0), -1.0), label)

    _, (dist, label) = lax.scan(body, None, blocks.rows())
    dist, label = dist.reshape(-1), label.reshape(-1)
    top = min(m, dist.shape[0])
    dist, idx = lax.top_k(dist, top)  # equal distances keep the lower index first
    rows, w = blocks.point(idx)
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
    the distance is recomputed as ||x'_i - c_label||^2, not from the expansion. Two scans: the labels
    are materialised first, because XLA would otherwise re-run the argmax chain inside the gather
    for every gathered element.
    """
    h = half_norms(c, active)
    _, labels = lax.scan(lambda _, x: (None, argmax_rows(scores(c, h, x - blocks.mean))[1]), None, blocks.x)
    return final_stats(blocks, c, labels, shards)


def final_stats(blocks: Blocks, c, labels, shards: Shards):
    """``final_assignment`` for known labels (i32[nb, B], e.g. from Hamerly's bounds): (labels i32[nb * B],
    within-cluster SS f32[k], weights per cluster f32[k]), the sums of squares as ||x'_i - c_label||^2."""
    k = c.shape[0]

    def body(carry, blk):
        within, sizes = carry
        x, w, label = blk
        diff = (x - blocks.mean) - c[label]
        within = within + jax.ops.segment_sum(w * jnp.sum(diff * diff, axis=1), label, k)
        sizes = sizes + jax.ops.segment_sum(w, label, k)
        return (within, sizes), None

    zero = (jnp.zeros((k,), c.dtype), jnp.zeros((k,), c.dtype))
    (within, sizes), _ = lax.scan(body, zero, (blocks.x, blocks.w, labels))
    return labels.reshape(-1), shards.sum(within), shards.sum(sizes)
