"""Writes the fixed, seeded clock dataset (jaxml/tasks/clock/) as .npy files and PNG grids of samples.

    python launch/render_clocks.py --out_dir=/tmp/clocks                 # 18,000 (80/20) + 3,600 held-out
    python launch/render_clocks.py --out_dir=/tmp/clocks --n=600 --heldout_n=0
    python launch/render_clocks.py --bench_batches=7                     # images/s only, writes nothing

Files: {train,test,heldout}_{images,hours,minutes}.npy (images uint8[n, 150, 150]), meta.json, and
samples_<style>.png for each of --grid_styles. Read them back with
``jaxml.tasks.clock.load_npy_dataset(out_dir, split)``. Fails with exit status 1 and the reason on the last
line.
"""
from __future__ import annotations

import os
import time

import jax
import numpy as np
from absl import app, flags

from jaxml.cli import common
from jaxml.tasks import clock

FLAGS = flags.FLAGS
flags.DEFINE_string("out_dir", None, "Directory for the .npy files and PNG grids.")
flags.DEFINE_integer("seed", 0, "Dataset seed.")
flags.DEFINE_integer("n", 18000, "Images in train + test.")
flags.DEFINE_float("test_fraction", 0.2, "Fraction of --n in the test split.")
flags.DEFINE_enum("style", "train", sorted(clock.STYLES), "Style of train and test.")
flags.DEFINE_integer("heldout_n", 3600, "Images in the held-out-style split (0: none).")
flags.DEFINE_list("grid_styles", ["train", "heldout"], "Styles to draw a PNG sample grid of.")
flags.DEFINE_integer("grid_n", 24, "Clocks per sample grid.")
flags.DEFINE_integer("bench_batches", 0, "If > 0: time this many render_batch calls of "
                     "--bench_batch images per style and print images/s; write nothing.")
flags.DEFINE_integer("bench_batch", 256, "Batch size for --bench_batches.")


def _bench() -> None:
    rows = []
    for name in ("train", "heldout"):
        style = clock.STYLES[name]
        t0 = time.perf_counter()
        jax.block_until_ready(clock.render_batch(jax.random.key(0), FLAGS.bench_batch, style, 0))
        compile_s = time.perf_counter() - t0
        times = []
        for i in range(FLAGS.bench_batches):
            t0 = time.perf_counter()
            jax.block_until_ready(clock.render_batch(jax.random.key(i + 1), FLAGS.bench_batch, style, 0))
            times.append(time.perf_counter() - t0)
        med = float(np.median(times))
        rows.append((name, compile_s, med, FLAGS.bench_batch / med))
    print(f"device: {jax.devices()[0].device_kind}  batch {FLAGS.bench_batch}  "
          f"median of {FLAGS.bench_batches}")
    print(f"{'style':10s} {'compile s':>10s} {'s/batch':>9s} {'images/s':>9s}")
    for name, c, med, ips in rows:
        print(f"{name:10s} {c:10.2f} {med:9.4f} {ips:9.0f}")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.bench_batches > 0:
        _bench()
        return
    if not FLAGS.out_dir:
        raise app.UsageError("--out_dir is required (or --bench_batches > 0)")
    unknown = [s for s in FLAGS.grid_styles if s not in clock.STYLES]
    if unknown:
        raise app.UsageError(f"--grid_styles: unknown {unknown}; choose from {sorted(clock.STYLES)}")
    t0 = time.perf_counter()
    paths = clock.write_npy_dataset(FLAGS.out_dir, FLAGS.seed, FLAGS.n, FLAGS.test_fraction,
                                    clock.STYLES[FLAGS.style], heldout_n=FLAGS.heldout_n)
    n_total = FLAGS.n + FLAGS.heldout_n
    dt = time.perf_counter() - t0
    print(f"rendered {n_total} images in {dt:.1f} s ({n_total / dt:.0f} images/s incl. compile)")
    for name in sorted(paths):
        print(f"  {paths[name]}")
    for name in FLAGS.grid_styles:
        images, hours, minutes = clock.render_batch(
            jax.random.key(FLAGS.seed + 1000), FLAGS.grid_n, clock.STYLES[name], 0)
        path = os.path.join(FLAGS.out_dir, f"samples_{name}.png")
        if jax.process_index() == 0:
            clock.save_sample_grid(path, np.asarray(images), np.asarray(hours), np.asarray(minutes))
        print(f"  {path}")


def run():
    common.run(main)


if __name__ == "__main__":
    run()
