"""``kmeans``: validated entry point; one jitted program does init, restarts, Lloyd and the final statistics.

Program (per device; ``shard_map`` over the ``data`` axis when a mesh is given):
    mean  = sum_i w_i x_i / sum_i w_i                  (psum of d + 1 numbers)
    x     its n rows padded with 0-weight rows to a bucket (``bucket_rows``: nearby n share one program),
          viewed as blocks of B rows (padded further only when no B near the target divides the rows per
          device), centred on the fly block by block
    c0    = init for each of R restarts                 (vmap over keys, or the given centres)
          (k-means++ on small data is drawn on the host first: ``host_init``, then given)
    c^R   = Lloyd for each restart                       (vmap: all restarts advance together)
    best  = argmin_r inertia(c^r)                        (on device)
    labels, within-cluster SS, cluster weights from one exact final pass (labels through the bounds
          when the run used them).
Only k x (d+1) sums, k-vectors and scalars are ever psum-ed, so one device and N devices give the
same centres up to float summation order.

Precision: the program runs in float32 on the points of ``frame.Frame`` (float64 input centred in float64
on the host first; data beyond float32's range rescaled by a power of two). When that frame is not the
identity, ``frame.restore`` returns the centres in float64 user coordinates and recomputes the sums of squares
in float64 from the labels, so the reported inertia is that of the user's points.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from jaxml import buckets, compile_cache, export_cache
from jaxml.kmeans import assign, host_init, validate
from jaxml.kmeans.assign import Blocks, final_assignment, final_stats
from jaxml.kmeans.bounds import lloyd_bounded
from jaxml.kmeans.frame import Frame, restore
from jaxml.kmeans.init import kmeans_plusplus, random_points
from jaxml.kmeans.lloyd import lloyd, lloyd_batch
from jaxml.kmeans.shards import Shards

INITS = ("k-means++", "random")


class KMeansResult(NamedTuple):
    """A fitted clustering. Weights are sample weights (point counts when unweighted).

    Float32 jax arrays as listed when x is float32-exact (float32, float16, small integers) and within float32's
    range; otherwise (float64 or int32/int64 x, or rescaled data: ``frame.Frame``) centers, sizes and the
    sums of squares are float64 NumPy arrays in the user's coordinates.
    """

    centers: jax.Array     # f32[k, d]
    labels: jax.Array      # i32[n]      index of the nearest centre
    inertia: jax.Array     # f32[]       sum_i w_i ||x_i - c_label_i||^2 (= sum of within_ss)
    sizes: jax.Array       # f32[k]      sum of w_i per cluster
    within_ss: jax.Array   # f32[k]      sum_{label_i = j} w_i ||x_i - c_j||^2
    between_ss: jax.Array  # f32[]       total_ss - inertia
    total_ss: jax.Array    # f32[]       sum_i w_i ||x_i - mean||^2
    n_iter: jax.Array      # i32[]       Lloyd iterations of the returned restart


@dataclasses.dataclass(frozen=True)
class Plan:
    """Static shape of one compiled program (the cache key)."""

    n: int            # rows the program sees: the data's, padded up to ``bucket_rows`` with weight 0
    d: int
    k: int            # centres (k_max for the automatic-k sweep)
    n_init: int
    init: str         # "k-means++" | "random" | "given"
    block: int        # rows per block B
    n_blocks: int     # blocks per device
    mesh: Mesh | None
    bounds: bool = False  # a single run through Hamerly's bounds (bounds.py) instead of brute force

    @property
    def count(self) -> int:
        return device_count(self.mesh)

    @property
    def axis(self) -> str | None:
        return None if self.mesh is None else self.mesh.axis_names[0]

    @property
    def padded(self) -> int:
        return self.count * self.n_blocks * self.block


def bucket_rows(n: int, count: int = 1) -> int:
    """The rows a program for n points is compiled for (``buckets.bucket``: at most 1/16 padding, rows of
    weight 0 that change no centre, label or statistic), a multiple of the device count."""
    return buckets.bucket(n, multiple=count)


def device_count(mesh: Mesh | None) -> int:
    """Devices a program over ``mesh`` runs on (1 without one)."""
    return 1 if mesh is None else mesh.devices.size


def given_rows(result: KMeansResult, n: int) -> KMeansResult:
    """The result with the labels of the padding rows dropped (labels i32[rows] -> i32[n]). On one CPU device the
    host view is cut and put back (no program: jnp slicing would compile one, in a first palette run)."""
    labels = result.labels
    if labels.shape[0] == n:
        return result
    if len(labels.devices()) == 1 and next(iter(labels.devices())).platform == "cpu":
        return result._replace(labels=jax.device_put(np.asarray(labels)[:n], labels.sharding))
    return result._replace(labels=labels[:n])


def default_block(k: int) -> int:
    """Rows per block: a k x B score tile of ~128 KiB stays in a core's L2 cache (measured on CPU)."""
    return int(min(8192, max(256, 2 ** round(math.log2(32768 / max(k, 1))))))


def _divisor_near(n: int, target: int) -> int | None:
    """The divisor of n in [target / 2, 2 * target] closest to target, if any (blocks then need no padding)."""
    for step in range(target):
        for b in (target - step, target + step):
            if target // 2 <= b <= 2 * target and b > 0 and n % b == 0:
                return b
    return None


# Bounds pay when scoring a point costs more than their bookkeeping (~5 passes over 4-byte arrays); the
# threshold was chosen on CPU with bench/kmeans.py (jaxml/kmeans/README.md).
BOUNDS_MIN_KD = 128


# A small fit (rows x runs below this) is compiled for compile time, not run time: its whole run takes far less
# than XLA:CPU's compile. So its runs do not shed finished runs (``lloyd.lloyd_batch(compact=False)``: each batch
# size is one more copy of the step to compile), and XLA:CPU uses its elemental emitters and LLVM -O1, which
# compile faster (jaxml/kmeans/README.md has the figures).
SMALL_ROW_RUNS = 2 ** 20


def is_small(plan: Plan, runs: int) -> bool:
    """Whether ``runs`` Lloyd runs over the plan's rows make a small fit (see SMALL_ROW_RUNS)."""
    return plan.padded * runs < SMALL_ROW_RUNS


def use_bounds(bounds: bool | None, k: int, d: int, n_init: int, platform: str = "cpu") -> bool:
    """Resolve ``kmeans(bounds=...)``: None chooses bounds for single runs (n_init = 1) on CPU with
    k * d >= BOUNDS_MIN_KD. Accelerators keep brute force by default: their matmuls are cheap next to
    the compaction's scatters, and the trade-off has not been measured there."""
    if bounds is None:
        return platform == "cpu" and n_init == 1 and k * d >= BOUNDS_MIN_KD
    if bounds and n_init != 1:
        raise ValueError(f"bounds=True applies to a single run (n_init=1), got n_init={n_init}: restarts step "
                         "as one compacting batch of brute-force runs")
    return bool(bounds)


def make_plan(n, d, k, *, n_init, init, block_size, mesh, bounds: bool = False) -> Plan:
    count = device_count(mesh)
    per_device = -(-n // count)
    target = block_size or default_block(k)
    if n % count == 0 and per_device <= target:
        block = per_device  # one block, no padding
    else:
        block = (_divisor_near(per_device, target) if n % count == 0 else None) or min(target, -(-per_device // 8) * 8)
    return Plan(n, d, k, n_init, init, block, -(-per_device // block), mesh, bounds)


def prepare(plan: Plan, x, w, shards: Shards):
    """Weighted mean and blocked views of this device's points. Returns (Blocks, total_ss, total weight).

    x is only reshaped (a view); ||x - mean||^2 (f32[nb, B]) is the one per-point array computed."""
    weight = shards.sum(jnp.sum(w))
    mean = shards.sum(jnp.dot(w, x, precision=assign.HIGHEST)) / weight
    nb, bsz = plan.n_blocks, plan.block
    xb, wb = x.reshape(nb, bsz, plan.d), w.reshape(nb, bsz)
    xx = jnp.sum((xb - mean) ** 2, axis=2)
    return Blocks(xb, wb, xx, mean), shards.sum(jnp.sum(wb * xx)), weight


def initial_centers(plan: Plan, blocks: Blocks, init_arg, shards: Shards):
    """(f32[n_init, k, d] centred starting centres, (row index, owner) i32[n_init, k] of drawn points or None)."""
    if plan.init == "given":
        return init_arg - blocks.mean, None
    if not jax.dtypes.issubdtype(init_arg.dtype, jax.dtypes.prng_key):  # an integer seed (init_argument)
        init_arg = jax.random.split(jax.random.key(init_arg), plan.n_init)
    if plan.init == "k-means++":
        c, idx, owner = jax.vmap(lambda key: kmeans_plusplus(key, blocks, plan.k, shards))(init_arg)
    else:
        c, idx, owner = jax.vmap(lambda key: random_points(key, blocks, plan.k, plan.n, shards))(init_arg)
    return c, (idx, owner)


def best_restart(blocks: Blocks, centers, n_iters, active, shards: Shards):
    """The restart of least inertia (first on ties): (f32[k, d], i32[], f32[] inertia)."""
    inertia = jax.vmap(lambda c: assign.inertia(blocks, c, assign.half_norms(c, active), shards))(centers)
    best = jnp.argmin(inertia)
    return centers[best], n_iters[best], inertia[best]


def compile_options(mesh: Mesh | None, small_fit: bool = False) -> dict | None:
    """XLA options for the program, on CPU only and per program (nothing else in the process changes):
    on a mesh of several devices no intra-op (Eigen) threads — each device already runs its shard on a
    thread of its own, one per core, and Eigen's pool would only contend with them (jaxml/kmeans/README.md);
    for a ``small_fit`` the elemental emitters and LLVM -O1, which compile faster (SMALL_ROW_RUNS)."""
    platform = jax.default_backend() if mesh is None else mesh.devices.flat[0].platform
    if platform != "cpu":
        return None
    options = {}
    if device_count(mesh) > 1:
        options["xla_cpu_multi_thread_eigen"] = False
    if small_fit:
        options["xla_cpu_use_fusion_emitters"] = False
        options["xla_backend_optimization_level"] = 1   # LLVM -O1 (XLA enables no fast-math at any level)
    return options or None


def shard_program(name: str, plan: Plan, per_device, out_specs, static_key: str = "", small_fit: bool = False):
    """jit(pad -> [shard_map] per_device -> drop padded labels), through ``export_cache.jit_once`` (a later
    process reuses the traced program; ``name``, the plan and ``static_key`` identify it).

    per_device(x, w, init_arg, knobs) -> tuple; ``knobs`` holds run-time scalars (max_iter, tol, ...)
    so changing them does not recompile. out_specs: "data" for per-point outputs, "" otherwise.
    """
    def program(x, w, init_arg, knobs):
        pad = plan.padded - plan.n
        if pad:  # a copy of the points; make_plan avoids it when it can
            x = jnp.pad(x, ((0, pad), (0, 0)))
            w = jnp.pad(w, (0, pad))
        if plan.mesh is None:
            out = per_device(x, w, init_arg, knobs)
        else:
            data = P(plan.axis)

            def rep(tree):
                return jax.tree.map(lambda _: P(), tree)

            specs = tuple(data if s == "data" else P() for s in out_specs)
            out = jax.shard_map(per_device, mesh=plan.mesh, in_specs=(data, data, rep(init_arg), rep(knobs)),
                                out_specs=specs, check_vma=False)(x, w, init_arg, knobs)
        return tuple(o[: plan.n] if s == "data" else o for o, s in zip(out, out_specs))
    return export_cache.jit_once(f"kmeans_{name}", program, static_key=f"{plan!r} {static_key}",
                                  compiler_options=compile_options(plan.mesh, small_fit), mesh=plan.mesh)


_program_caches: list = []   # every plan -> program builder, for clear_programs


def program_cache(maxsize: int):
    """``functools.lru_cache(maxsize)`` for a builder ``plan -> program``, registered with ``clear_programs``."""
    def wrap(builder):
        cached = functools.lru_cache(maxsize=maxsize)(builder)
        _program_caches.append(cached)
        return cached
    return wrap


def clear_programs() -> None:
    """Forget every program built per plan, so that the next fit traces anew (after a module setting such as
    SMALL_ROW_RUNS or ``bounds.DENSE_FRACTION`` has changed)."""
    for cached in _program_caches:
        cached.cache_clear()


def lloyd_knobs(max_iter: int, tol: float) -> dict:
    return {"max_iter": np.int32(max_iter), "tol": np.float32(tol)}   # host scalars: no eager programs


@program_cache(maxsize=64)
def _fit_program(plan: Plan):
    def per_device(x, w, init_arg, knobs):
        shards = Shards(plan.axis, plan.count)
        blocks, total_ss, weight = prepare(plan, x, w, shards)
        tol_abs = knobs["tol"] * total_ss / (weight * plan.d)
        c0, _ = initial_centers(plan, blocks, init_arg, shards)
        labels = None
        if plan.bounds:  # the final labels come through the bounds too
            c, n_iter, labels = lloyd_bounded(blocks, c0[0], None, max_iter=knobs["max_iter"], tol_abs=tol_abs,
                                              shards=shards)
        elif plan.n_init == 1:  # no batch of one: vmap would turn the scatters into batched (slower) ones
            c, n_iter = lloyd(blocks, c0[0], None, max_iter=knobs["max_iter"], tol_abs=tol_abs, shards=shards)
        else:
            centers, n_iters = lloyd_batch(blocks, c0, None, max_iter=knobs["max_iter"], tol_abs=tol_abs,
                                           shards=shards, compact=not is_small(plan, plan.n_init))
            c, n_iter, _ = best_restart(blocks, centers, n_iters, None, shards)
        if labels is None:
            labels, within, sizes = final_assignment(blocks, c, None, shards)
        else:
            labels, within, sizes = final_stats(blocks, c, labels, shards)
        inertia = jnp.sum(within)
        return c + blocks.mean, labels, inertia, sizes, within, total_ss - inertia, total_ss, n_iter

    return shard_program("fit", plan, per_device, ("", "data", "", "", "", "", "", ""),
                         small_fit=is_small(plan, plan.n_init))


@program_cache(maxsize=16)
def _init_program(plan: Plan):
    def per_device(x, w, init_arg, knobs):
        shards = Shards(plan.axis, plan.count)
        blocks, _, _ = prepare(plan, x, w, shards)
        _, (idx, owner) = initial_centers(plan, blocks, init_arg, shards)
        rows = jax.vmap(lambda i, o: shards.from_owner(x[i], o))(idx, owner)  # the data rows, bit for bit
        return rows, owner * (plan.n_blocks * plan.block) + idx                # and their global row indices

    return shard_program("init", plan, per_device, ("", ""), small_fit=is_small(plan, plan.n_init))


def checked_points(x, sample_weight, mesh: Mesh | None, *, bucket: bool, check: bool, who: str,
                   init=None) -> validate.Points:
    """What every entry point starts with: switch the compilation cache on, then ``validate.inputs`` with the
    rows padded to ``bucket_rows`` (when ``bucket`` and x is a matrix)."""
    compile_cache.enable()
    rows = bucket_rows(np.shape(x)[0], device_count(mesh)) if bucket and np.ndim(x) == 2 else None
    return validate.inputs(x, sample_weight, init=init, check=check, who=who, rows=rows)


def _start(x, k: int, init, n_init: int, max_iter: int, tol: float, sample_weight, seed, mesh: Mesh | None,
           check_input: bool, bucket: bool, who: str):
    """The checks ``kmeans`` and ``init_centers`` share: (checked points, init kind, the program's init
    argument)."""
    pts = checked_points(x, sample_weight, mesh, bucket=bucket, check=check_input, who=who, init=init)
    validate.params(k=k, n_init=n_init, max_iter=max_iter, tol=tol, who=who)
    if check_input:
        validate.enough_distinct(pts.x, pts.w, k, who, n=pts.n)
    kind, arg = init_argument(init, n_init, seed, k, pts.x.shape[1], pts.frame, who=who)
    return pts, kind, arg


def init_centers(x, k: int, *, init: str = "k-means++", n_init: int = 1, sample_weight=None, seed=0,
                 mesh: Mesh | None = None, check_input: bool = True, bucket: bool = True) -> jax.Array:
    """The starting centres ``kmeans`` would use: f32[n_init, k, d] (same seed, same restarts); the rows of x
    itself (float64 NumPy) when x is not float32-exact (``KMeansResult``). ``bucket`` as ``kmeans``."""
    who = "init_centers"
    if not isinstance(init, str):
        raise ValueError(f"{who}: init must be one of {INITS}, got {type(init).__name__}")
    pts, kind, arg = _start(x, k, init, n_init, 1, 0.0, sample_weight, seed, mesh, check_input, bucket, who)
    rows, d = pts.x.shape
    if kind == "k-means++" and host_init.use_host(rows, d, k, n_init):
        rows, index = host_init.kmeans_plusplus(pts.x, pts.w, k, n_init, seed)
        rows = jax.device_put(rows)
    else:
        plan = make_plan(rows, d, k, n_init=n_init, init=kind, block_size=None, mesh=mesh)
        rows, index = _init_program(plan)(pts.x, pts.w, arg, {})
    if pts.frame.identity:
        return rows
    return np.asarray(pts.source)[np.asarray(index)].astype(np.float64)


def init_argument(init, n_init: int, seed, k: int, d: int, frame: Frame = Frame(None, 1.0),
                  who: str = "kmeans"):
    """(init name, jitted argument): restart keys (or a seed in [0, 2^31) the program turns into the same keys,
    ``split(key(seed), n_init)``), or the given centres as the program's f32[n_init, k, d]."""
    if isinstance(init, str):
        if init not in INITS:
            raise ValueError(f"{who}: init must be one of {INITS} or an array of centres, got {init!r}")
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and 0 <= seed < 2 ** 31:
            return init, np.int32(seed)   # keys drawn in the program: no small programs before it
        if not isinstance(seed, jax.Array) and not (isinstance(seed, (int, np.integer)) and 0 <= seed < 2 ** 63):
            raise ValueError(f"{who}: seed must be a whole number in [0, 2**63) or a jax.random.key, got {seed!r}")
        key = seed if isinstance(seed, jax.Array) else jax.random.key(int(seed))
        return init, jax.random.split(key, n_init)
    centers = validate.centers(init, k, d, frame, who)
    return "given", centers


def _platform(x, mesh: Mesh | None) -> str:
    if mesh is not None:
        return mesh.devices.flat[0].platform
    return next(iter(x.devices())).platform if isinstance(x, jax.Array) else jax.default_backend()


def kmeans(x, k: int, *, init="k-means++", n_init: int = 1, max_iter: int = 300, tol: float = 1e-4,
           sample_weight=None, seed=0, mesh: Mesh | None = None, block_size: int | None = None,
           bounds: bool | None = None, check_input: bool = True, bucket: bool = True) -> KMeansResult:
    """Cluster the rows of x (f32[n, d]) into k groups by Lloyd's algorithm.

    init: "k-means++" (greedy, as scikit-learn), "random" (k distinct weighted points), or centres
        f32[k, d] / f32[R, k, d] (R given restarts; n_init is then R).
    n_init: restarts, run together under vmap; the one of least inertia is returned.
    tol: stop when the summed squared centre shift <= tol * mean per-feature (weighted) variance.
    sample_weight: f32[n] >= 0 (default all ones).
    seed: int or a ``jax.random.key`` for the initialisation.
    mesh: a 1-D mesh (``jaxml.parallel.data_mesh()``): points are split over its devices and only
        per-cluster sums and counts cross devices (one psum per iteration).
    block_size: rows per assignment block (default: chosen from k).
    bounds: skip distances through Hamerly's bounds (``bounds.py``: same iterates, less work); None
        chooses (single runs on CPU with k * d >= 128), True needs n_init = 1.
    check_input: validate on the host (finite values, weights, k <= distinct points) and rescale data whose
        float32 squared distances would overflow or underflow (``validate``).
    bucket: pad the rows to ``bucket_rows(n)`` with weight 0 (same centres, labels and statistics), so that
        another row count in the same bucket reuses the compiled program; False compiles for exactly n rows.
    Float64 (or int32/int64) x is centred in float64 before the float32 program; see ``KMeansResult``.
    The first call switches on the persistent compilation cache (``jaxml.compile_cache``).
    """
    pts, kind, arg = _start(x, k, init, n_init, max_iter, tol, sample_weight, seed, mesh, check_input, bucket,
                            "kmeans")
    rows, d = pts.x.shape
    if kind == "k-means++" and host_init.use_host(rows, d, k, n_init):   # no seeding program to compile
        kind, (arg, _) = "given", host_init.kmeans_plusplus(pts.x, pts.w, k, n_init, seed)
    if kind == "given":
        n_init = arg.shape[0]
    plan = make_plan(rows, d, k, n_init=n_init, init=kind, block_size=block_size, mesh=mesh,
                     bounds=use_bounds(bounds, k, d, n_init, _platform(pts.x, mesh)))
    fit = KMeansResult(*_fit_program(plan)(pts.x, pts.w, arg, lloyd_knobs(max_iter, tol)))
    return restore(given_rows(fit, pts.n), pts)
