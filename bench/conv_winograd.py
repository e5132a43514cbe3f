"""Would Winograd F(2x2, 3x3) make jaxml's CPU convolutions faster than im2col? Measured: no (on XLA:CPU).

    flock /tmp/jaxml-bench.lock python bench/conv_winograd.py [--batch=128] [--repeats=7]

The two heavy layers of the report's digit CNN (bench/cnn_step.py), 'valid' 3x3, stride 1, batch 128:
conv2 26x26x32 -> 24x24x64 and conv3 24x24x64 -> 22x22x64. Each path runs forward + both gradients
(``jax.grad`` of sum(conv(x, w) * r)), jitted; the table gives the median milliseconds and the ratios
im2col / path (> 1: the path would make jaxml faster than its im2col default).

Winograd F(2x2, 3x3) (Lavin & Gray 2016): the output is cut into 2x2 tiles, each read from a 4x4 input
tile d (stride 2). With the constant matrices B^T (4x4), G (4x3), A^T (2x4):

    V = B^T d B   (per tile and input channel)         U = G g G^T   (per kernel slice, f32[16, cin, cout])
    M[t] = V[t] @ U[t]   for t = 0..15 (16 matmuls over tiles: f32[tiles, cin] @ f32[cin, cout])
    y_tile = A^T M A

16 products per tile per (cin, cout) pair instead of im2col's 4 x 9 = 36: 2.25x fewer multiply-adds,
in all three passes (autodiff of the linear transforms turns the backward into the same 16-matmul form).
The price: the transforms read every input pixel ~4x (tiles overlap), and the contraction is only cin
long, in 16 batched matmuls — XLA:CPU runs those far below its single-matmul rate (printed below as
``batched_gmacs`` vs ``single_gmacs``, on the conv3 shapes). Two variants:

- ``winograd``: the whole batch at once (intermediates of tens of MB);
- ``winograd_chunked``: ``lax.scan`` over chunks of ``--chunk`` images with the body rematerialised
  (``jax.checkpoint``), so the transformed tiles stay in cache as im2col's patch matrices do.

``xla`` (lax.conv_general_dilated) is timed for reference. Last line: JSON (see bench/timing.py).
"""
from __future__ import annotations

import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

import timing  # noqa: E402
from jaxml.nn import im2col  # noqa: E402

flags.DEFINE_integer("batch", 128, "Images per call.")
flags.DEFINE_integer("repeats", 7, "Interleaved timed repeats (median reported).")
flags.DEFINE_integer("chunk", 8, "Images per scan step of winograd_chunked (must divide --batch).")
FLAGS = flags.FLAGS

LAYERS = {"conv2": (26, 32, 64), "conv3": (24, 64, 64)}  # input side, cin, cout
B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float32)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float32)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float32)


def _combine(matrix: np.ndarray, values: list) -> list:
    """[sum_j matrix[i, j] * values[j] for each row i], skipping zeros (the transforms are adds)."""
    out = []
    for row in matrix:
        terms = [v if c == 1 else -v if c == -1 else float(c) * v for c, v in zip(row, values) if c != 0]
        out.append(sum(terms[1:], terms[0]))
    return out


def winograd_valid(x: jax.Array, u: jax.Array) -> jax.Array:
    """'valid' 3x3 convolution of x f32[n, h, w, cin] given the transformed kernel u f32[16, cin, cout]."""
    n, h, wd, cin = x.shape
    cout = u.shape[-1]
    ho, wo = h - 2, wd - 2
    th, tw = (ho + 1) // 2, (wo + 1) // 2
    x = jnp.pad(x, ((0, 0), (0, 2 * th + 2 - h), (0, 2 * tw + 2 - wd), (0, 0)))
    # d[a][b]: tile entry (a, b) of every tile at once, f32[n, th, tw, cin] (a strided view of x).
    d = [[x[:, a:a + 2 * th:2, b:b + 2 * tw:2] for b in range(4)] for a in range(4)]
    cols = [_combine(B_T, [d[a][b] for a in range(4)]) for b in range(4)]       # (B^T d)[k][b]
    v = [_combine(B_T, [cols[b][k] for b in range(4)]) for k in range(4)]       # (B^T d B)[k][l]
    v = jnp.stack([v[k][l] for k in range(4) for l in range(4)]).reshape(16, n * th * tw, cin)
    m = jnp.einsum("tpi,tio->tpo", v, u).reshape(4, 4, n, th, tw, cout)
    rows = [_combine(A_T, [m[k, l] for k in range(4)]) for l in range(4)]       # (A^T M)[i][l]
    y = [[_combine(A_T, [rows[l][i] for l in range(4)]) for i in range(2)]]      # (A^T M A)[i][j]
    y = jnp.stack([jnp.stack(y[0][i], 3) for i in range(2)], 2)                  # f32[n, th, 2, tw, 2, cout]
    return y.reshape(n, 2 * th, 2 * tw, cout)[:, :ho, :wo]


def kernel_transform(w: jax.Array) -> jax.Array:
    """U = G g G^T per (cin, cout): f32[3, 3, cin, cout] -> f32[16, cin, cout]."""
    return jnp.einsum("ka,abio,lb->klio", G, w, G).reshape(16, w.shape[2], w.shape[3])


def winograd(x, w):
    return winograd_valid(x, kernel_transform(w))


def winograd_chunked(x, w):
    n, h, wd, cin = x.shape
    u = kernel_transform(w)
    body = jax.checkpoint(lambda xc: winograd_valid(xc, u))
    chunks = x.reshape((n // FLAGS.chunk, FLAGS.chunk) + x.shape[1:])
    _, y = lax.scan(lambda c, xc: (c, body(xc)), None, chunks)
    return y.reshape(n, h - 2, wd - 2, w.shape[-1])


def xla(x, w):
    return lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))


PATHS = {"im2col": lambda x, w: im2col.conv(x, w, 1, ((0, 0), (0, 0))), "winograd": winograd,
         "winograd_chunked": winograd_chunked, "xla": xla}


def matmul_rates(tiles: int, cin: int, cout: int) -> dict:
    """GMAC/s of the 16 batched Winograd products vs one im2col-sized matmul (same shapes as conv3)."""
    k = jax.random.key(1)
    v, u = jax.random.normal(k, (16, tiles, cin)), jax.random.normal(k, (16, cin, cout))
    p, wm = jax.random.normal(k, (4 * tiles, 9 * cin)), jax.random.normal(k, (9 * cin, cout))
    batched, single = jax.jit(lambda a, b: jnp.einsum("tpi,tio->tpo", a, b)), jax.jit(jnp.matmul)
    tb = timing.median_seconds(lambda: batched(v, u).block_until_ready(), repeats=FLAGS.repeats)
    ts = timing.median_seconds(lambda: single(p, wm).block_until_ready(), repeats=FLAGS.repeats)
    return {"batched_gmacs": 16 * tiles * cin * cout / tb / 1e9, "single_gmacs": 36 * tiles * cin * cout / ts / 1e9}


def main(argv):
    del argv
    if FLAGS.batch % FLAGS.chunk:
        raise app.UsageError(f"--chunk={FLAGS.chunk} must divide --batch={FLAGS.batch}")
    key = jax.random.key(0)
    results, ratios, table = {}, {}, []
    print(f"{jax.devices()[0].platform}, batch {FLAGS.batch}, forward + both gradients, median of {FLAGS.repeats}")
    for layer, (h, cin, cout) in LAYERS.items():
        x = jax.random.normal(key, (FLAGS.batch, h, h, cin))
        w = 0.1 * jax.random.normal(jax.random.fold_in(key, 1), (3, 3, cin, cout))
        r = jax.random.normal(jax.random.fold_in(key, 2), (FLAGS.batch, h - 2, h - 2, cout))
        ref = jax.jit(xla)(x, w)
        runs, errors = {}, {}
        for name, conv in PATHS.items():
            errors[name] = float(jnp.max(jnp.abs(jax.jit(conv)(x, w) - ref)) / jnp.max(jnp.abs(ref)))
            grad = jax.jit(jax.grad(lambda x, w, conv=conv: jnp.sum(conv(x, w) * r), (0, 1)))
            runs[name] = lambda grad=grad: jax.block_until_ready(grad(x, w))
        med = timing.interleaved_medians(runs, repeats=FLAGS.repeats)
        for name in PATHS:
            results[f"{layer}_{name}"] = med[name] * 1e3
            table.append((f"{layer} {name}", med[name] * 1e3,
                          f"max rel. error vs xla {errors[name]:.1e}; im2col / this {med['im2col'] / med[name]:.2f}"))
            if name != "im2col":
                ratios[f"{layer} im2col_ms/{name}_ms"] = med["im2col"] / med[name]
    h, cin, cout = LAYERS["conv3"]
    rates = matmul_rates(FLAGS.batch * ((h - 1) // 2) ** 2, cin, cout)
    print(f"conv3 shapes: 16 batched Winograd matmuls {rates['batched_gmacs']:.1f} GMAC/s, "
          f"one im2col matmul {rates['single_gmacs']:.1f} GMAC/s")
    results.update({k: round(v, 2) for k, v in rates.items()})
    timing.emit("conv_winograd", "ms", False, results, ratios, table)


if __name__ == "__main__":
    app.run(main)
