"""How fast can an im2col CNN step be on this CPU? The matmuls alone of the report's digit CNN, batch 128.

    flock /tmp/jaxml-bench.lock python bench/cnn_matmul_floor.py [--batch=128] [--repeats=5]

A training step of the digit CNN (bench/cnn_step.py) spends its multiply-adds in six matmuls of
patch matrices (conv 2 and conv 3; conv 1 has 9 multiply-adds per output and the dense layers are
small): per conv layer with input f32[n, h, w, cin], output f32[n, ho, wo, cout], 3x3 kernel,

    forward   P[n*ho*wo, 9*cin]   @ W[9*cin, cout]
    dW        dy^T[cout, n*ho*wo] @ P[n*ho*wo, 9*cin]
    dx        P_dy[n*h*w, 9*cout] @ W_flip[9*cout, cin]

Each is timed as ONE whole matmul (its best repeat, the most favourable case: no chunking, no
gathers) in XLA and in PyTorch. The sum is a floor for any step built on these matmuls: the
samples/s it allows is an upper bound for an im2col (or torch's own) implementation, to set
against bench/cnn_step.py's measured figures. Last line JSON (ms, lower is better).
"""
from __future__ import annotations

import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import numpy as np  # noqa: E402

import timing  # noqa: E402

flags.DEFINE_integer("batch", 128, "Batch size.")
flags.DEFINE_integer("repeats", 5, "Repeats per matmul (best kept).")
FLAGS = flags.FLAGS


def shapes(n: int) -> dict[str, tuple[int, int, int]]:
    """(m, k, n) of the six heavy matmuls: conv2 26x26x32 -> 24x24x64, conv3 24x24x64 -> 22x22x64 ('valid')."""
    out = {}
    for name, (h, cin, ho, cout) in {"conv2": (26, 32, 24, 64), "conv3": (24, 64, 22, 64)}.items():
        out[f"{name} forward"] = (n * ho * ho, 9 * cin, cout)
        out[f"{name} dW"] = (cout, n * ho * ho, 9 * cin)
        out[f"{name} dx"] = (n * h * h, 9 * cout, cin)
    return out


def main(argv):
    del argv
    rng = np.random.default_rng(0)
    results, table, totals = {}, [], {"xla": 0.0, "torch": 0.0}
    try:
        import torch
        torch.set_num_threads(os.cpu_count() or 1)
    except ImportError:
        torch = None
        print("PyTorch not installed: pip install -e '.[bench]' to time its matmuls too")
    for name, (m, k, n) in shapes(FLAGS.batch).items():
        a = rng.standard_normal((m, k), np.float32)
        b = rng.standard_normal((k, n), np.float32)
        aj, bj = jax.device_put(a), jax.device_put(b)
        f = jax.jit(lambda x, y: x @ y)
        t = timing.median_seconds(lambda: f(aj, bj).block_until_ready(), repeats=FLAGS.repeats, reduce=min)
        totals["xla"] += t
        results[f"{name}/xla"] = 1e3 * t
        note = f"{m}x{k}x{n}, {2 * m * k * n / t / 1e9:.0f} GFLOP/s in XLA"
        if torch is not None:
            at, bt = torch.from_numpy(a), torch.from_numpy(b)
            tt = timing.median_seconds(lambda: at @ bt, repeats=FLAGS.repeats, reduce=min)
            totals["torch"] += tt
            results[f"{name}/torch"] = 1e3 * tt
            note += f", {2 * m * k * n / tt / 1e9:.0f} in torch"
        table.append((f"{name}/xla", 1e3 * t, note))
    for lib, tot in totals.items():
        if tot:
            results[f"total/{lib}"] = 1e3 * tot
            table.append((f"total/{lib}", 1e3 * tot,
                          f"at most {FLAGS.batch / tot:.0f} samples/s for a step made of these matmuls"))
    print(f"batch {FLAGS.batch}; best of {FLAGS.repeats} per matmul; {os.cpu_count()} CPU cores; "
          f"XLA peak on a square matmul: {timing.matmul_peak_gflops():.0f} GFLOP/s")
    timing.emit("cnn_matmul_floor", "ms", False, results, {}, table)


if __name__ == "__main__":
    app.run(main)
