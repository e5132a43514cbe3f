"""Automatic k: every k = 1..k_max fitted in one compiled call with masked centres, then a rule picks k.

All k share one k-means++ draw of k_max centres (k-means++ is sequential, so its first k centres
are a k-means++ start for k); the run for k masks centres k..k_max-1 out of the argmax (score
-1e30) and out of empty-cluster re-seeding. The k runs (and the restarts within each) advance
together under ``vmap``, so the whole curve W(k) = within-cluster SS comes from one program.

Rules (T = total SS, N = total weight):
    "ch"   Calinski-Harabasz: argmax_{k >= 2} [(T - W_k) / (k - 1)] / [W_k / (N - k)] — a large
           between/within ratio per degree of freedom; parameter-free. Default.
    "drop" H2O's idea: the smallest k whose next relative improvement (W_k - W_{k+1}) / W_k falls
           below ``min_drop`` (k_max if none does).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxml import compile_cache
from jaxml.kmeans import validate
from jaxml.kmeans.assign import final_assignment
from jaxml.kmeans.fit import (
    KMeansResult,
    Plan,
    best_restart,
    checked_points,
    given_rows,
    init_argument,
    initial_centers,
    is_small,
    lloyd_knobs,
    make_plan,
    prepare,
    program_cache,
    shard_program,
)
from jaxml.kmeans.frame import restore
from jaxml.kmeans.lloyd import lloyd_batch
from jaxml.kmeans.shards import Shards

CRITERIA = ("ch", "drop")


class AutoKResult(NamedTuple):
    k: int                  # the chosen number of clusters
    inertia: np.ndarray     # f32[k_max]  W(k) for k = 1..k_max (index k - 1); f64 when rescaled (frame.Frame)
    score: np.ndarray       # f32[k_max]  the rule's value per k (CH index, or relative drop to k + 1)
    result: KMeansResult    # the clustering at the chosen k


def choose_k(curve, total_ss, weight, criterion, min_drop):
    """(chosen k i32[], score f32[k_max]) from the curve W(k), k = 1..k_max; criterion: i32 index into CRITERIA."""
    k_max = curve.shape[0]
    ks = jnp.arange(1, k_max + 1, dtype=curve.dtype)
    tiny = jnp.finfo(curve.dtype).tiny
    # Calinski-Harabasz; W_k = 0 (a perfect fit) gives a huge score, the smallest such k wins.
    within = jnp.maximum(curve, tiny) / jnp.maximum(weight - ks, tiny)
    ch = jnp.where(ks >= 2, ((total_ss - curve) / jnp.maximum(ks - 1, 1)) / within, -jnp.inf)
    # Relative drop from k to k + 1; the first k whose drop is small (k_max if none).
    drop = jnp.where(curve[:-1] > 0, (curve[:-1] - curve[1:]) / jnp.maximum(curve[:-1], tiny), 0.0)
    drop = jnp.concatenate([drop, jnp.zeros((1,), curve.dtype)])
    small = (drop < min_drop).at[-1].set(True)
    use_ch = criterion == CRITERIA.index("ch")
    k = jnp.where(use_ch, jnp.argmax(ch), jnp.argmax(small)) + 1
    return k.astype(jnp.int32), jnp.where(use_ch, ch, drop)


@program_cache(maxsize=32)
def _sweep_program(plan: Plan):
    k_max = plan.k

    def per_device(x, w, init_arg, knobs):
        shards = Shards(plan.axis, plan.count)
        blocks, total_ss, weight = prepare(plan, x, w, shards)
        tol_abs = knobs["tol"] * total_ss / (weight * plan.d)
        c0, _ = initial_centers(plan, blocks, init_arg, shards)
        slots = jnp.arange(k_max)
        n_init = c0.shape[0]
        # Every (k, restart) pair is one run of the compacting batch: a run stops being stepped as soon as
        # it converges, whatever its k (small k converge in a few iterations, large k take longer).
        ks = jnp.repeat(jnp.arange(1, k_max + 1), n_init)                       # i32[k_max * n_init]
        active = slots[None, :] < ks[:, None]                                   # bool[k_max * n_init, k_max]
        starts = jnp.tile(c0, (k_max, 1, 1))                                    # run j: restart j % n_init
        centers, n_iters = lloyd_batch(blocks, starts, active, max_iter=knobs["max_iter"], tol_abs=tol_abs,
                                       shards=shards, compact=not is_small(plan, k_max * plan.n_init))
        centers = centers.reshape((k_max, n_init) + centers.shape[1:])
        n_iters = n_iters.reshape(k_max, n_init)
        centers, n_iters, curve = jax.vmap(lambda c, n, a: best_restart(blocks, c, n, a, shards))(
            centers, n_iters, slots[None, :] < jnp.arange(1, k_max + 1)[:, None])
        k, score = choose_k(curve, total_ss, weight, knobs["criterion"], knobs["min_drop"])
        c, active = centers[k - 1], slots < k
        labels, within, sizes = final_assignment(blocks, c, active, shards)
        inertia = jnp.sum(within)
        return (k, curve, score, c + blocks.mean, labels, inertia, sizes, within, total_ss - inertia, total_ss,
                n_iters[k - 1])

    return shard_program("sweep", plan, per_device, ("", "", "", "", "data", "", "", "", "", "", ""),
                         small_fit=is_small(plan, k_max * plan.n_init))


def kmeans_auto_k(x, k_max: int = 10, *, criterion: str = "ch", min_drop: float = 0.1, init="k-means++",
                  n_init: int = 1, max_iter: int = 300, tol: float = 1e-4, sample_weight=None, seed=0,
                  mesh=None, block_size: int | None = None, check_input: bool = True, bucket: bool = True
                  ) -> AutoKResult:
    """Fit k = 1..k_max at once and pick k by ``criterion`` ("ch" or "drop", see the module docstring).

    k_max is lowered to the number of distinct points when there are fewer. Other arguments as
    ``kmeans`` (init: "k-means++" or "random"; given centres do not apply to a sweep).
    """
    compile_cache.enable()
    who = "kmeans_auto_k"
    if criterion not in CRITERIA:
        raise ValueError(f"{who}: criterion must be one of {CRITERIA}, got {criterion!r}")
    if not isinstance(init, str):
        raise ValueError(f"{who}: init must be 'k-means++' or 'random', not given centres")
    if not (0 < min_drop < 1):
        raise ValueError(f"{who}: min_drop must be in (0, 1), got {min_drop!r}")
    pts = checked_points(x, sample_weight, mesh, bucket=bucket, check=check_input, who=who)
    rows, d = pts.x.shape
    validate.params(k=k_max, n_init=n_init, max_iter=max_iter, tol=tol, who=who, k_name="k_max")
    k_max = min(k_max, validate.distinct_up_to(pts.x, pts.w, k_max) if check_input else pts.n)
    _, arg = init_argument(init, n_init, seed, k_max, d, who=who)
    plan = make_plan(rows, d, k_max, n_init=n_init, init=init, block_size=block_size, mesh=mesh)
    knobs = dict(lloyd_knobs(max_iter, tol), criterion=jnp.int32(CRITERIA.index(criterion)),
                 min_drop=jnp.float32(min_drop))
    k, curve, score, *fit = _sweep_program(plan)(pts.x, pts.w, arg, knobs)
    k = int(k)
    centers, labels, inertia, sizes, within, between, total, n_iter = fit
    fit = KMeansResult(centers[:k], labels, inertia, sizes[:k], within[:k], between, total, n_iter)
    result = restore(given_rows(fit, pts.n), pts)
    curve = np.asarray(curve) if pts.frame.scale == 1.0 else np.asarray(curve, np.float64) / pts.frame.scale ** 2
    return AutoKResult(k, curve, np.asarray(score), result)
