"""Lloyd's algorithm with Hamerly's distance bounds: brute force's iterates, most distances skipped.

Brute force (``lloyd.lloyd``) scores every point against every centre in every iteration, yet once the
centres settle most points keep their centre, and Hamerly (2010) proves that cheaply. Each point i
carries between iterations

    label_i                                         its centre at the last assignment,
    u_i >= ||x_i - c_{label_i}||                    an upper bound,
    l_i <= min_{j != label_i} ||x_i - c_j||         a lower bound.

When the centres move by delta_j = ||c_j^{t+1} - c_j^t||:  u_i += delta_{label_i},
l_i -= max_{j != label_i} delta_j. With s_j = 1/2 min_{j' != j} ||c_j - c_j'|| the triangle inequality
puts every other centre at least L_i = max(l_i, 2 s_{label_i} - u_i) away, and brute force picks
label_i again whenever

    L_i^2 - u_i^2 > 3 eps_i,      eps_i = 4 (d + 4) eps_f32 (||x'_i||^2 + max_j ||c_j||^2)

(eps_i bounds the rounding error of its squared distances, so near-ties are never skipped). Those
points are skipped; the rest are gathered into dense chunks and scored by the same ``scores`` /
``argmax_rows`` as brute force. Bounds are rounded outwards (u up, l down), so they stay bounds in
float32. The cluster sums are recomputed from the labels every iteration, block by block in brute
force's order (``assign.add_block_sums``): with the same labels the centres are the same bit for bit,
and so are the iteration counts — only the work differs.

An iteration costs a pass over (label, u, l), a compaction, the sums, and brute force's work for the points
that fail the test, so it pays when scoring a point is costly (k * d large; ``fit.use_bounds`` decides).
Memory: 12 bytes per point. Single runs only: restarts and the k sweep use ``lloyd.lloyd_batch``.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxml.kmeans.assign import Blocks, add_block_sums, half_norms, scores, stats_from_labels, top2_rows
from jaxml.kmeans.lloyd import finish_step
from jaxml.kmeans.shards import Shards

EPS = float(jnp.finfo(jnp.float32).eps)


class PointBounds(NamedTuple):
    """Per-point state of one device, in the blocked layout of ``Blocks``."""

    label: jax.Array  # i32[nb, B]  centre at the last assignment
    upper: jax.Array  # f32[nb, B]  >= distance to that centre
    lower: jax.Array  # f32[nb, B]  <= distance to every other centre


def unknown(blocks: Blocks) -> PointBounds:
    """Before the first assignment: u = inf, so every point is scored."""
    shape = blocks.w.shape
    return PointBounds(jnp.zeros(shape, jnp.int32), jnp.full(shape, jnp.inf, jnp.float32),
                       jnp.zeros(shape, jnp.float32))


def slack(d: int):
    """Relative rounding allowance 4 (d + 4) eps of a d-term dot product, a norm or a distance."""
    return 4 * (d + 4) * EPS


def moved(bounds: PointBounds, delta, d: int) -> PointBounds:
    """Bounds after the centres moved by delta (f32[k], as computed): rounded outwards."""
    up = delta * (1 + slack(d))
    top, arg = lax.top_k(up, min(2, up.shape[0]))
    first, second = top[0], (top[1] if up.shape[0] > 1 else jnp.float32(0))
    other = jnp.where(bounds.label == arg[0], second, first)  # max shift of any centre but its own
    upper = (bounds.upper + up[bounds.label]) * (1 + 4 * EPS)
    lower = jnp.maximum(bounds.lower - other, 0.0) * (1 - 4 * EPS)
    return PointBounds(bounds.label, upper, lower)


def half_separation(c, active, d: int):
    """s_j = 1/2 min over other active centres of ||c_j - c_j'||, rounded down: f32[k, d] -> f32[k]
    (inf for a lone active centre). From the k x k Gram matrix, so k = 1024 costs one small matmul."""
    cn2 = jnp.sum(c * c, axis=1)
    gram = lax.dot_general(c, c, (((1,), (1,)), ((), ())), precision=lax.Precision.HIGHEST)
    sq = cn2[:, None] + cn2[None, :] - 2.0 * gram - slack(d) * (cn2[:, None] + cn2[None, :])
    k = c.shape[0]
    other = ~jnp.eye(k, dtype=bool)
    if active is not None:
        other = other & active[None, :]
    nearest = jnp.min(jnp.where(other, sq, jnp.inf), axis=1)
    return 0.5 * jnp.sqrt(jnp.maximum(nearest, 0.0)) * (1 - 4 * EPS)


def fresh_bounds(xx, best, second, cmax, d: int):
    """(u, l) from a point's two best scores (f32[...]): squared distances xx - 2 score, widened by the
    rounding allowance and rounded outwards so they bound the true distances."""
    err = slack(d) * (xx + cmax)
    d1 = jnp.maximum(xx - 2.0 * best, 0.0)
    d2 = jnp.maximum(xx - 2.0 * second, 0.0)
    return jnp.sqrt(d1 + err) * (1 + 4 * EPS), jnp.sqrt(jnp.maximum(d2 - err, 0.0)) * (1 - 4 * EPS)


def assign_dense(blocks: Blocks, c, h, cmax, with_sums: bool = True):
    """Score every point (brute force's pass, tracking the runner-up too): (local sums f32[k, d+1], bounds);
    the sums stay 0 without ``with_sums``."""
    k, d = c.shape

    def body(sums, blk):
        x, w, xx = blk
        xc = x - blocks.mean
        best, label, second = top2_rows(scores(c, h, xc))
        sums = add_block_sums(sums, xc, w, label) if with_sums else sums
        return sums, (label,) + fresh_bounds(xx, best, second, cmax, d)

    sums, out = lax.scan(body, jnp.zeros((k, d + 1), c.dtype), blocks.rows())
    return sums, PointBounds(*out)


def assign_sparse(blocks: Blocks, c, h, cmax, bounds: PointBounds, need, with_sums: bool = True):
    """Score only the points where need (bool[nb, B]): (local sums f32[k, d+1], 0 without ``with_sums``; bounds).

    They are compacted (cumsum + scatter of their indices); chunk t scores idx[tB : (t+1)B] into slots
    tB.. of compact buffers (in-place dynamic_update_slice), and one gather puts the results back.
    """
    k, d = c.shape
    nb, bsz = blocks.w.shape
    n = nb * bsz
    flat = need.reshape(n)
    pos = jnp.cumsum(flat.astype(jnp.int32)) - 1
    count = pos[-1] + 1
    idx = jnp.full((n + bsz,), n, jnp.int32).at[jnp.where(flat, pos, n + bsz)].set(
        jnp.arange(n, dtype=jnp.int32), mode="drop", unique_indices=True)
    xs, xxs = blocks.x.reshape(n, d), blocks.xx.reshape(n)

    def score_chunk(state):
        t, lab, up, lo = state
        start = t * bsz
        safe = jnp.minimum(lax.dynamic_slice(idx, (start,), (bsz,)), n - 1)
        xx = xxs[safe]
        best, arg, second = top2_rows(scores(c, h, xs[safe] - blocks.mean))
        u, low = fresh_bounds(xx, best, second, cmax, d)
        return (t + 1, lax.dynamic_update_slice(lab, arg, (start,)), lax.dynamic_update_slice(up, u, (start,)),
                lax.dynamic_update_slice(lo, low, (start,)))

    buffers = (jnp.zeros((n + bsz,), jnp.int32), jnp.zeros((n + bsz,), jnp.float32),
               jnp.zeros((n + bsz,), jnp.float32))
    _, *scored = lax.while_loop(lambda st: st[0] * bsz < count, score_chunk, (jnp.int32(0),) + buffers)
    slot = jnp.where(flat, pos, 0).reshape(nb, bsz)
    new = PointBounds(*(jnp.where(need, buf[slot], old) for buf, old in zip(scored, bounds)))
    if not with_sums:
        return jnp.zeros((k, d + 1), c.dtype), new
    return stats_from_labels(blocks, new.label, k, Shards()), new


# Above this fraction of points to score, one dense pass is cheaper than compacting them (jaxml/kmeans/README.md).
DENSE_FRACTION = 0.5


def assign_bounded(blocks: Blocks, c, h, bounds: PointBounds, delta, active, shards: Shards,
                   with_sums: bool = True):
    """One assignment through the bounds. c: f32[k, d] centred centres, h their half-norms (masked),
    bounds w.r.t. the previous centres, delta f32[k] their shift since. Returns (sums f32[k, d+1] summed
    over devices — brute force's ``cluster_stats`` —, the bounds w.r.t. c, and how many of this device's
    points the bounds could not settle, i32[]). Each device picks the dense or the sparse pass for its own
    points (no collective inside either). Without ``with_sums`` (labels only) the sums are 0."""
    d = c.shape[1]
    cmax = jnp.max(jnp.sum(c * c, axis=1))
    bounds = moved(bounds, delta, d)
    s = half_separation(c, active, d)
    far = jnp.maximum(bounds.lower, 2.0 * s[bounds.label] - bounds.upper)
    # u = inf (first pass) gives NaN or -inf here: the comparison is False and the point is scored.
    need = ~((far * far - bounds.upper * bounds.upper) > 3.0 * slack(d) * (blocks.xx + cmax))
    unsettled = jnp.sum(need.astype(jnp.int32))
    sums, bounds = lax.cond(unsettled > DENSE_FRACTION * need.size,
                            lambda: assign_dense(blocks, c, h, cmax, with_sums),
                            lambda: assign_sparse(blocks, c, h, cmax, bounds, need, with_sums))
    return (shards.sum(sums) if with_sums else sums), bounds, unsettled


def lloyd_bounded(blocks: Blocks, c0, active, *, max_iter, tol_abs, shards: Shards):
    """``lloyd.lloyd`` with Hamerly's bounds: same arguments, same (centres f32[k, d], n_iter i32[]), and the
    labels of the returned centres (i32[nb, B]: brute force's argmax, through the bounds once more — most points
    are not scored again, where ``assign.final_assignment`` scores them all)."""
    def cond(state):
        i, _, shift, _, _ = state
        return (i < max_iter) & (shift > tol_abs)

    def body(state):
        i, c, _, bounds, delta = state
        h = half_norms(c, active)
        sums, bounds, _ = assign_bounded(blocks, c, h, bounds, delta, active, shards)
        new, shift = finish_step(blocks, c, h, sums, active, shards)
        return i + 1, new, shift, bounds, jnp.sqrt(jnp.sum((new - c) ** 2, axis=1))

    k = c0.shape[0]
    state = (jnp.int32(0), c0, jnp.float32(jnp.inf), unknown(blocks), jnp.zeros((k,), c0.dtype))
    n_iter, c, _, bounds, delta = lax.while_loop(cond, body, state)
    _, bounds, _ = assign_bounded(blocks, c, half_norms(c, active), bounds, delta, active, shards, with_sums=False)
    return c, n_iter, bounds.label
