"""The clock reader's input pre-blur (``data.preblur_sigma``, jaxml/data/filters.py): its cost inside the
jitted batch maker, as banded matmuls, as a slice sum, and compiled with the renderer or apart from it.

    flock /tmp/jaxml-bench.lock python bench/clock_preblur.py [--batch=64] [--sigma=1.25] [--repeats=7]

Times, for one training batch of freshly rendered clocks (render -> blur -> detrend, one jit each):
``none`` (no blur), ``matmul`` (``filters.gaussian_blur``: B_H x B_W^T with banded matrices) and
``slices`` (the same Gaussian as a sum of 2r + 1 shifted slices per axis). ``render | ...`` rows compile the
uint8 render and the rest as two programs, as ``jaxml.tasks.clock.build_data`` does. The peer is
``scipy.ndimage.gaussian_filter`` (mode "nearest", truncate 3) blurring the same rendered batch in numpy,
against ``filters.gaussian_blur`` on it alone. Also prints the largest difference between the two jaxml
blurs after detrending.

Prints ms per batch, then the JSON line (bench/timing.py): ratios slices / matmul, one / two programs (with and
without the blur) and scipy / jaxml blur.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.ndimage
from absl import app, flags

import timing
from jaxml.data import filters
from jaxml.tasks import clock

flags.DEFINE_integer("batch", 64, "Clocks per batch.")
flags.DEFINE_float("sigma", 1.25, "Pre-blur sigma in pixels.")
flags.DEFINE_integer("repeats", 7, "Interleaved timed repeats (median reported).")
FLAGS = flags.FLAGS


def slice_sum_blur(x, sigma):
    """The rejected form: per axis, edge-pad by r and add the 2r + 1 shifted slices weighted by the taps."""
    k = filters.gaussian_kernel(sigma)
    r = (len(k) - 1) // 2
    for axis in (x.ndim - 3, x.ndim - 2):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (r, r)
        xp = jnp.pad(x, pad, mode="edge")
        x = sum(float(k[i]) * jax.lax.slice_in_dim(xp, i, i + x.shape[axis], axis=axis) for i in range(len(k)))
    return x


def main(_):
    n, sigma = FLAGS.batch, FLAGS.sigma
    blurs = {"none": lambda x: x, "matmul": lambda x: filters.gaussian_blur(x, sigma),
             "slices": lambda x: slice_sum_blur(x, sigma)}

    def batch_maker(blur):
        def make(key):
            images, _, _ = clock.render_batch(key, n, clock.TRAIN_STYLE)
            return clock.detrend_standardize(blur(images.astype(jnp.float32)[..., None] / 255.0))
        return jax.jit(make)

    makers = {name: batch_maker(b) for name, b in blurs.items()}
    keys = iter(jax.random.split(jax.random.key(0), 20 * FLAGS.repeats + 10))
    runs = {f"render+{name}+detrend": (lambda f=f: f(next(keys)).block_until_ready()) for name, f in makers.items()}
    # What the clock task does (jaxml.tasks.clock.build_data): the uint8 render and the preprocessing as two programs.
    render = jax.jit(lambda key: clock.render_batch(key, n, clock.TRAIN_STYLE)[0])
    for name in ("none", "matmul"):
        prep = jax.jit(lambda u, b=blurs[name]: clock.detrend_standardize(b(u.astype(jnp.float32)[..., None] / 255.0)))
        runs[f"render | {name}+detrend"] = lambda prep=prep: prep(render(next(keys))).block_until_ready()

    images, _, _ = clock.render_batch(jax.random.key(1), n, clock.TRAIN_STYLE)
    x = np.asarray(images, np.float32)[..., None] / 255.0
    blur_only = jax.jit(lambda x: filters.gaussian_blur(x, sigma))
    xj = jnp.asarray(x)
    runs["blur only: jaxml"] = lambda: blur_only(xj).block_until_ready()
    runs["blur only: scipy"] = lambda: scipy.ndimage.gaussian_filter(
        x, sigma=(0, sigma, sigma, 0), mode="nearest", truncate=3.0)
    med = {k: v * 1e3 for k, v in timing.interleaved_medians(runs, repeats=FLAGS.repeats).items()}

    key = jax.random.key(2)
    diff = float(jnp.max(jnp.abs(makers["matmul"](key) - makers["slices"](key))))
    print(f"{n} clocks, sigma {sigma} px; max |matmul - slices| after detrending: {diff:.1e}")
    timing.emit("clock_preblur", "ms", False, med,
                {"slices/matmul": med["render+slices+detrend"] / med["render+matmul+detrend"],
                 "one/two programs, no blur": med["render+none+detrend"] / med["render | none+detrend"],
                 "one/two programs, blur": med["render+matmul+detrend"] / med["render | matmul+detrend"],
                 "jaxml/scipy": med["blur only: scipy"] / med["blur only: jaxml"]},
                [(k, v, "") for k, v in med.items()])


if __name__ == "__main__":
    app.run(main)
