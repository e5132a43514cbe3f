"""K-means: jaxml vs scikit-learn, both in this run, on the same float32 data and the same initial centres.

    flock /tmp/jaxml-bench.lock python bench/kmeans.py [--quick] [--repeats=5] [--workloads=china_ninit10,...]

Workloads (ms, lower is better; ratios = sklearn / jaxml, > 1 means jaxml is faster):
  china_k8     scikit-learn's sample image china.jpg, 273,280 RGB pixels, k = 8: time per Lloyd
               iteration (a fit from the same random centres with tol=0 and max_iter=M, divided by
               the iterations each ran).
  blobs_k64    1,000,000 x 16 Gaussian blobs (64 centres), k = 64: time per Lloyd iteration as above,
               over the first 10 iterations (where most points still change centre). The row
               "floor-brute" times what every brute-force iteration must do at least, on the same mesh
               and blocks: the k scores c.x - ||c||^2 / 2 of every point (one matmul a block) and their row
               maximum (the nearest centre's score), with no labels, sums or centre update; sklearn /
               floor-brute is the most any brute-force iteration could reach against scikit-learn here
               (the note gives it).
  blobs_fit    the same blobs and starting centres, a whole fit at the default tol = 1e-4: total
               time divided by the iterations it ran. Here jaxml's default runs
               Hamerly's bounds (jaxml/kmeans/bounds.py; same iterates as brute force), so the
               table also shows jaxml without them ("jaxml-brute") and scikit-learn's own bounded
               algorithm ("sklearn-elkan"); ratios are also given against the faster scikit-learn.
  china_ninit10  whole fit, k-means++ with n_init=10 (sklearn: ten sequential runs; jaxml: ten
               restarts under vmap), default tol/max_iter; inertias printed to show equal quality.
jaxml runs twice: on one CPU device ("jaxml-1dev") and with the points split over every core as
fake CPU devices ("jaxml", jax_num_cpu_devices = cores; the sharded map-reduce, the points placed
on the mesh beforehand). scikit-learn uses all cores through OpenMP. Compilation is excluded
(warm-up run); timings are interleaved medians. The machine is shared: compare ratios, not times.
"""
from __future__ import annotations

import os

import jax
import numpy as np
from absl import app, flags
from jax import lax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from sklearn.cluster import KMeans
from sklearn.datasets import load_sample_image, make_blobs
from threadpoolctl import threadpool_info

import timing
from jaxml.kmeans import kmeans
from jaxml.kmeans.fit import make_plan, use_bounds
from jaxml.parallel import data_mesh

flags.DEFINE_bool("quick", False, "Small blobs (200k rows), fewer repeats.")
flags.DEFINE_integer("repeats", 5, "Timed repeats per implementation (median reported).")
WORKLOADS = ("china_k8", "blobs_k64", "blobs_fit", "china_ninit10")
flags.DEFINE_list("workloads", list(WORKLOADS), f"Which workloads to run (default all): {', '.join(WORKLOADS)}.")
flags.DEFINE_integer("devices", 0, "Fake CPU devices for the sharded run (0 = os.cpu_count()).")
FLAGS = flags.FLAGS


def ninit10(china, on_mesh, mesh, repeats, results, notes, ratios):
    """n_init=10, whole fit from k-means++ (each library's own draw), default tol and max_iter."""
    xj, xs = jax.numpy.asarray(china), on_mesh(china)
    fits = {}

    def jx(m):
        def run():
            fits[m is None] = r = kmeans(xj if m is None else xs, 8, n_init=10, seed=0, mesh=m, check_input=False)
            float(r.inertia)
        return run

    def sk():
        fits["sk"] = KMeans(8, n_init=10, random_state=0).fit(china)

    med = timing.interleaved_medians({"jaxml": jx(mesh), "jaxml-1dev": jx(None), "sklearn": sk}, repeats=repeats)
    for impl, t in med.items():
        results[f"china_ninit10/{impl}"] = t * 1e3
    notes["china_ninit10/jaxml"] = f"inertia {float(fits[False].inertia):.6g}"
    notes["china_ninit10/jaxml-1dev"] = f"inertia {float(fits[True].inertia):.6g}"
    notes["china_ninit10/sklearn"] = f"inertia {fits['sk'].inertia_:.6g}"
    for impl in ("jaxml", "jaxml-1dev"):
        ratios[f"{impl}/sklearn:china_ninit10"] = med["sklearn"] / med[impl]


def score_floor(xs, init, mesh):
    """A run of the least work of one brute-force iteration on the points ``xs`` (split over ``mesh``): per block
    of jaxml's plan, the scores c.x - ||c||^2 / 2 of the k centres (one matmul) and their row maximum."""
    k, d = init.shape
    plan = make_plan(xs.shape[0], d, k, n_init=1, init="given", block_size=None, mesh=mesh)
    c = jax.numpy.asarray(init)
    half = 0.5 * jax.numpy.sum(c * c, axis=1)

    def per_device(x):
        blocks = x.reshape(-1, plan.block, d)
        return lax.map(lambda b: jax.numpy.max(b @ c.T - half, axis=1), blocks).reshape(-1)

    axis = mesh.axis_names[0]
    scores = jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=P(axis), out_specs=P(axis)))
    return lambda: scores(xs).block_until_ready()


def main(argv):
    del argv
    cores = FLAGS.devices or os.cpu_count() or 1
    jax.config.update("jax_num_cpu_devices", cores)   # before JAX first runs
    mesh = data_mesh()

    def on_mesh(x):
        """The points already split over the mesh (as data living in the cluster would be)."""
        return jax.device_put(x, NamedSharding(mesh, P(mesh.axis_names[0]))) if len(x) % mesh.size == 0 else x

    repeats = 3 if FLAGS.quick else FLAGS.repeats
    unknown = set(FLAGS.workloads) - set(WORKLOADS)
    if unknown:
        raise app.UsageError(f"--workloads: unknown {sorted(unknown)}; choose from {', '.join(WORKLOADS)}")
    sk_threads = max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"), default=1)
    print(f"jax {jax.__version__} on {jax.device_count()} CPU devices; scikit-learn with {sk_threads} OpenMP threads")

    china = load_sample_image("china.jpg").reshape(-1, 3).astype(np.float32)
    n_blobs = 200_000 if FLAGS.quick else 1_000_000
    blobs = (make_blobs(n_blobs, 16, centers=64, random_state=0)[0].astype(np.float32)
             if {"blobs_k64", "blobs_fit"} & set(FLAGS.workloads) else None)

    results, notes, ratios = {}, {}, {}

    def per_iteration(name, x, k, max_iter, tol=0.0, f64=True):
        init = x[np.random.default_rng(0).choice(len(x), k, replace=False)]
        xj, xs = jax.numpy.asarray(x), on_mesh(x)
        iters = {}

        def jaxml_run(m, bounds=None):
            def run():
                r = kmeans(xj if m is None else xs, k, init=init, max_iter=max_iter, tol=tol, mesh=m,
                           check_input=False, bounds=bounds)
                iters["jaxml"] = int(r.n_iter)  # blocks until done
                return r
            return run

        def sk_run(dtype, algorithm="lloyd"):
            xs = x.astype(dtype)
            def run():
                iters["sklearn"] = KMeans(k, init=init.astype(dtype), n_init=1, max_iter=max_iter, tol=tol,
                                          algorithm=algorithm).fit(xs).n_iter_
            return run

        runs = {"jaxml": jaxml_run(mesh), "jaxml-1dev": jaxml_run(None), "sklearn": sk_run(np.float32)}
        bounded = use_bounds(None, k, x.shape[1], 1)
        if bounded:
            runs["jaxml-brute"] = jaxml_run(mesh, bounds=False)
            runs["sklearn-elkan"] = sk_run(np.float32, "elkan")
        if f64 and not FLAGS.quick:
            runs["sklearn-f64"] = sk_run(np.float64)
        if name == "blobs_k64" and len(x) % mesh.size == 0:
            runs["floor-brute"] = score_floor(xs, init, mesh)
        times, its = {}, {}
        for impl, run in runs.items():  # warm-up, and the iteration count each implementation runs
            run()
            its[impl] = 1 if impl == "floor-brute" else iters["sklearn" if impl.startswith("sklearn") else "jaxml"]
        med = timing.interleaved_medians(runs, repeats=repeats, warmup=0)
        for impl, t in med.items():
            times[impl] = t / its[impl] * 1e3
            results[f"{name}/{impl}"] = times[impl]
            notes[f"{name}/{impl}"] = f"{its[impl]} iterations, {x.shape[0]}x{x.shape[1]}, k={k}"
        if "floor-brute" in times:
            notes[f"{name}/floor-brute"] = (f"scores + row max only, one pass; sklearn/floor "
                                            f"{times['sklearn'] / times['floor-brute']:.2f}x: brute force's ceiling")
        for impl in ("jaxml", "jaxml-1dev") + (("jaxml-brute",) if bounded else ()):
            ratios[f"{impl}/sklearn:{name}"] = times["sklearn"] / times[impl]
        if bounded:
            ratios[f"jaxml/sklearn-best:{name}"] = min(times["sklearn"], times["sklearn-elkan"]) / times["jaxml"]

    if "china_k8" in FLAGS.workloads:
        per_iteration("china_k8", china, 8, 30)
    if "blobs_k64" in FLAGS.workloads:
        per_iteration("blobs_k64", blobs, 64, 10)
    if "blobs_fit" in FLAGS.workloads:
        per_iteration("blobs_fit", blobs, 64, 300, tol=1e-4, f64=False)
    if "china_ninit10" in FLAGS.workloads:
        ninit10(china, on_mesh, mesh, repeats, results, notes, ratios)

    table = [(name, value, notes.get(name, "")) for name, value in results.items()]
    timing.emit("kmeans", "ms", False, results, ratios, table)


if __name__ == "__main__":
    app.run(main)
