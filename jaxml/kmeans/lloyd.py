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

from jaxml.kmeans.assign import Blocks, cluster_stats, cluster_stats_runs, farthest_points, half_norms
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


def lloyd_step(blocks: Blocks, c, active, shards: Shards):
    """One Lloyd iteration from centres c (f32[k, d], centred): (new centres, summed squared shift f32[])."""
    h = half_norms(c, active)
    return finish_step(blocks, c, h, cluster_stats(blocks, c, h, shards), active, shards)


def finish_step(blocks: Blocks, c, h, sums, active, shards: Shards):
    """The rest of an iteration once the sums of the assignment to c are known: re-seed empty clusters,
    move the centres. Returns (new centres, summed squared shift of the active centres)."""
    sums = reseed_empty(blocks, c, h, sums, active, shards)
    new = update_centers(sums, c)
    moved = jnp.sum((new - c) ** 2, axis=1)
    return new, jnp.sum(moved if active is None else jnp.where(active, moved, 0.0))


def lloyd(blocks: Blocks, c0, active, *, max_iter: int, tol_abs, shards: Shards):
    """Run Lloyd iterations from centres c0 (f32[k, d], centred). Returns (centres f32[k, d], n_iter i32[])."""

    def cond(state):
        i, _, shift = state
        return (i < max_iter) & (shift > tol_abs)

    def body(state):
        i, c, _ = state
        new, shift = lloyd_step(blocks, c, active, shards)
        return i + 1, new, shift

    state = (jnp.int32(0), c0, jnp.float32(jnp.inf))
    n_iter, c, _ = lax.while_loop(cond, body, state)
    return c, n_iter


def batch_sizes(r: int, compact: bool = True) -> tuple[int, ...]:
    """Compiled batch sizes for R runs, ascending: R, ceil(R/2), ceil(R/4), ..., 1 (10 -> 1, 2, 3, 5, 10);
    just (R,) without ``compact``."""
    sizes, m = {r}, r
    while compact and m > 1:
        m = -(-m // 2)
        sizes.add(m)
    return tuple(sorted(sizes))


def lloyd_batch(blocks: Blocks, c0, active, *, max_iter, tol_abs, shards: Shards, compact: bool = True):
    """R independent Lloyd runs (restarts, or k values of a sweep) from c0 f32[R, k, d]; active: bool[R, k] or None.

    Returns (centres f32[R, k, d], n_iter i32[R]), each run exactly as ``lloyd`` would give it alone.

    ``vmap(lloyd)`` would step every run until the slowest converges: on scikit-learn's china image with
    k = 8 the ten k-means++ restarts need 9..49 iterations, so 490 run-iterations are computed where ~230
    are needed. Here each iteration gathers the still-running runs into the smallest compiled batch that
    holds them (``batch_sizes``: R, R/2, ..., 1, chosen by ``lax.switch``), steps that batch (one pass over
    the blocks scores all its runs: ``assign.cluster_stats_runs``; the rest of the step under vmap), and
    scatters the results back; finished runs are not touched again. The branch index is computed from
    replicated values, so under ``shard_map`` every device takes the same branch (the psums match).
    ``compact=False`` compiles the R-run batch only (finished runs ride along, frozen): each batch size is
    another copy of the step for XLA to compile, which small data never earns back (``fit.compacts``).
    """
    r = c0.shape[0]
    sizes = batch_sizes(r, compact)

    def stepped(m):
        def branch(state, running):
            n_iter, c, shift = state
            idx = jnp.argsort(~running, stable=True)[:m]  # running runs first, in index order
            live = running[idx]
            act = None if active is None else active[idx]
            if m == 1:  # no batch of one: vmap would turn the scatters into batched (slower) ones
                new, sh = lloyd_step(blocks, c[idx[0]], None if act is None else act[0], shards)
                new, sh = new[None], sh[None]
            else:
                ci = c[idx]
                hi = jax.vmap(half_norms)(ci) if act is None else jax.vmap(half_norms)(ci, act)
                sums = cluster_stats_runs(blocks, ci, hi, shards)  # one pass over the blocks for the m runs
                new, sh = jax.vmap(lambda cr, hr, sr, ar: finish_step(blocks, cr, hr, sr, ar, shards),
                                   in_axes=(0, 0, 0, None if act is None else 0))(ci, hi, sums, act)
            c = c.at[idx].set(jnp.where(live[:, None, None], new, c[idx]), unique_indices=True)
            shift = shift.at[idx].set(jnp.where(live, sh, shift[idx]), unique_indices=True)
            return n_iter.at[idx].add(live.astype(jnp.int32), unique_indices=True), c, shift
        return branch

    branches = [stepped(m) for m in sizes]

    def still_running(state):
        n_iter, _, shift = state
        return (n_iter < max_iter) & (shift > tol_abs)

    def body(state):
        running = still_running(state)
        n_running = jnp.sum(running.astype(jnp.int32))
        which = jnp.searchsorted(jnp.asarray(sizes, jnp.int32), n_running)  # smallest size >= n_running
        return lax.switch(which, branches, state, running)

    state = (jnp.zeros((r,), jnp.int32), c0, jnp.full((r,), jnp.inf, jnp.float32))
    n_iter, c, _ = lax.while_loop(lambda st: jnp.any(still_running(st)), body, state)
    return c, n_iter
