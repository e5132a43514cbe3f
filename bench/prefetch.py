"""Input prefetch overlap: steps whose batch is slow to build, with ``config.train.prefetch`` 0 and 2.

    flock /tmp/jaxml-bench.lock python bench/prefetch.py [--steps=40] [--build_ms=20] [--step_n=768]

Each step is a jitted f32 n x n matmul chain (about as long as building a batch on this machine); each batch
sleeps ``build_ms`` (a host that decodes or augments) then ``device_put``s f32[128, 784]. The loop blocks on the
step's outputs every ``sync_every`` steps (the train loop does at its log/sync/checkpoint steps); between those
JAX's asynchronous dispatch already overlaps building with computing, at them it cannot. With ``--sync_every=1``
a step costs build + compute without prefetch and max(build, compute) with it. Prints
ms per step for depth 0 and 2, the ideal max(build, compute), and the ratio depth 0 / depth 2 (> 1: prefetch
helps), then the JSON line. The loop uses the same ``jaxml.train.prefetch.Prefetcher``.
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

import timing
from jaxml.train.prefetch import Prefetcher

STEPS = flags.DEFINE_integer("steps", 40, "steps per timed run")
BUILD_MS = flags.DEFINE_float("build_ms", 20.0, "host time to build a batch")
SYNC_EVERY = flags.DEFINE_integer("sync_every", 1, "block on the step's outputs every this many steps")
STEP_N = flags.DEFINE_integer("step_n", 384, "matmul size of the step's compute")


def main(_):
    steps, build_s = STEPS.value, BUILD_MS.value / 1e3
    w = jax.random.normal(jax.random.key(0), (STEP_N.value, STEP_N.value)) / STEP_N.value ** 0.5

    @jax.jit
    def step(w, batch):
        h = w
        for _ in range(4):
            h = jnp.tanh(h @ w)
        return h, batch["x"].sum()

    def build(s):
        time.sleep(build_s)
        x = np.random.default_rng(s).normal(size=(128, 784)).astype(np.float32)
        return jax.device_put({"x": x})

    def run(depth):
        def go():
            with Prefetcher(build, 0, steps, depth) as batches:
                out = None
                for s in range(steps):
                    out = step(w, batches.get(s))
                    if (s + 1) % SYNC_EVERY.value == 0:
                        jax.block_until_ready(out)
                jax.block_until_ready(out)
        return go

    built = build(0)
    compute = timing.median_seconds(lambda: jax.block_until_ready(step(w, built)), repeats=9)
    per_step = {f"prefetch{d}": t / steps * 1e3 for d, t in timing.interleaved_medians(
        {0: run(0), 2: run(2)}, repeats=3).items()}
    ideal = max(build_s, compute) * 1e3
    timing.emit("prefetch", "ms/step", False, per_step, {"prefetch2/prefetch0": per_step["prefetch0"] /
                                                          per_step["prefetch2"]},
                [("prefetch0", per_step["prefetch0"], f"build {build_s * 1e3:.0f} ms + compute {compute * 1e3:.1f} ms"),
                 ("prefetch2", per_step["prefetch2"], f"ideal max(build, compute) = {ideal:.1f} ms")])


if __name__ == "__main__":
    app.run(main)
