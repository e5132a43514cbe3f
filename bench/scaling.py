"""Step time vs number of devices: the MLP train step (shard_map driver, fixed global batch) and one
K-means fit (fixed iterations) over the ``data`` mesh.

    python bench/scaling.py [--devices=1,2,4,8] [--batch=1024] [--points=200000] [--k=64]

Each device count runs in its own process (``JAX_NUM_CPU_DEVICES`` must be set before JAX starts). On one
CPU, fake devices share the same cores, so this measures the overhead of sharding and collectives
(ideal: flat); on a multi-GPU/TPU host it measures scaling. Ratios are time(1 device) / time(N), > 1 =
faster with N devices.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

import timing
from jaxml import kmeans, models, parallel
from jaxml.train import drivers, objectives
from jaxml.train import step as step_lib
from jaxml.train.state import TrainState

flags.DEFINE_list("devices", ["1", "2", "4", "8"], "Device counts to measure.")
flags.DEFINE_integer("batch", 1024, "Global MLP batch.")
flags.DEFINE_integer("points", 200_000, "K-means points (16 features).")
flags.DEFINE_integer("k", 64, "K-means clusters.")
flags.DEFINE_integer("repeats", 5, "Timed repeats (median).")
flags.DEFINE_bool("worker", False, "Internal: measure in this process and print one JSON line.")
FLAGS = flags.FLAGS


def worker():
    """Runs in a child process whose JAX_NUM_CPU_DEVICES was set before JAX started."""
    model = models.get("mlp", input_shape=(784,), widths=(1024, 512), num_outputs=10)
    driver = drivers.ShardMapDriver(model, objectives.get("softmax_xent"), optax.adam(1e-3), step_lib.Hparams(seed=0))

    def make_state():
        p = model.init(jax.random.key(0))
        return TrainState(jnp.zeros((), jnp.int32), p, {}, optax.adam(1e-3).init(p))
    box = [driver.init(make_state)]
    rng = np.random.default_rng(0)
    batch = driver.put({"x": rng.random((FLAGS.batch, 784), np.float32),
                        "y": rng.integers(0, 10, FLAGS.batch).astype(np.int32)})

    def mlp_run():
        s = box[0]
        for _ in range(10):
            s, _ = driver.train_step(s, batch)
        jax.block_until_ready(s)
        box[0] = s
    out = {"devices": jax.device_count(), "mlp_step_ms": timing.median_seconds(mlp_run, repeats=FLAGS.repeats) * 100}
    x = rng.standard_normal((FLAGS.points, 16)).astype(np.float32)
    init = x[:FLAGS.k]
    mesh = parallel.data_mesh()

    def km_run():
        r = kmeans.kmeans(x, FLAGS.k, init=init, max_iter=10, tol=0.0, mesh=mesh)
        jax.block_until_ready(r.centers)
    out["kmeans_iter_ms"] = timing.median_seconds(km_run, repeats=FLAGS.repeats) * 100
    print(json.dumps(out))


def main(argv):
    del argv
    if FLAGS.worker:
        return worker()
    rows = {}
    for n in map(int, FLAGS.devices):
        env = dict(os.environ, JAX_NUM_CPU_DEVICES=str(n))
        cmd = [sys.executable, __file__, "--worker", f"--batch={FLAGS.batch}", f"--points={FLAGS.points}",
               f"--k={FLAGS.k}", f"--repeats={FLAGS.repeats}"]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        rows[n] = json.loads(res.stdout.strip().splitlines()[-1])
    results, ratios, table = {}, {}, []
    base = rows[min(rows)]
    for n, r in rows.items():
        for key in ("mlp_step_ms", "kmeans_iter_ms"):
            if key in r:
                results[f"{key}@{n}"] = r[key]
                table.append((f"{key} {n} device(s)", r[key], f"x{base[key] / r[key]:.2f} vs {min(rows)} device"))
                if n != min(rows):
                    ratios[f"{key}@{min(rows)}/{key}@{n}"] = base[key] / r[key]
    print(f"platform: {jax.default_backend()}; fake CPU devices share the same cores (overhead only)")
    timing.emit("scaling", "ms", False, results, ratios, table)


if __name__ == "__main__":
    app.run(main)
