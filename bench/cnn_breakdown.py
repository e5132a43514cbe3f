"""Where the report's digit CNN training step spends its time on this machine: the step of
bench/cnn_step.py (jaxml, conv path ``auto``, batch 128, Adam) timed again with layers taken out.

    flock /tmp/jaxml-bench.lock python bench/cnn_breakdown.py [--batch=128] [--steps=4] [--repeats=7]

A variant's time is not a layer's cost exactly (XLA fuses across layers), but the differences show what
a faster convolution could and could not buy: e.g. if the step without conv3 is still slower than
PyTorch's whole step, no conv3 speed-up reaches the issue's 1.2x. Also timed: the dropout mask alone
(``jax.random.bernoulli`` on the conv2 activations, f32[batch, 24, 24, 64], threefry), and the same
number of random bits drawn as eight sequential draws of an eighth of the size (``lax.map``), which
shows the cost of one big draw growing faster than its size.

Prints ms per step and samples/s per variant, then the JSON line (bench/timing.py): results in ms,
ratios full / variant (how much faster the step would be without the removed part).
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
import optax  # noqa: E402

import timing  # noqa: E402
from jaxml import models  # noqa: E402
from jaxml.models.cnn import REPORT_DIGIT_CNN  # noqa: E402
from jaxml.train import objectives, step as step_lib  # noqa: E402
from jaxml.train.state import TrainState  # noqa: E402

flags.DEFINE_integer("batch", 128, "Batch size.")
flags.DEFINE_integer("steps", 4, "Training steps per timed repeat.")
flags.DEFINE_integer("repeats", 7, "Interleaved timed repeats (median reported).")
FLAGS = flags.FLAGS

FULL = tuple(REPORT_DIGIT_CNN)
_CONV3 = FULL.index("conv:64:3", FULL.index("conv:64:3") + 1)
VARIANTS = {
    "full step": FULL,
    "without batch norm": tuple(l for l in FULL if l != "bn"),
    "without dropout": tuple(l for l in FULL if not l.startswith("dropout")),
    "without batch norm and dropout": tuple(l for l in FULL if l != "bn" and not l.startswith("dropout")),
    "without conv3": FULL[:_CONV3] + FULL[_CONV3 + 2:],   # conv3 and its activation
    "conv1 + pool + dense only": ("conv:32:3", "act", "maxpool:2", "flatten", "dense:128", "act"),
}


def step_runner(layers, batch):
    m = models.get("cnn", input_shape=(28, 28, 1), layers=layers, num_outputs=10, conv_impl="auto",
                   conv_padding="VALID")
    opt = optax.adam(1e-3)
    step = jax.jit(step_lib.make_train_step(m, objectives.get("softmax_xent"), opt), donate_argnums=0)
    p = m.init(jax.random.key(0))
    box = [TrainState(jnp.zeros((), jnp.int32), p, m.init_state(), opt.init(p))]

    def run():
        s = box[0]
        for _ in range(FLAGS.steps):
            s, _ = step(s, batch)
        jax.block_until_ready(s)
        box[0] = s
    return run


def main(argv):
    del argv
    n = FLAGS.batch
    rng = np.random.default_rng(0)
    batch = {"x": jnp.asarray(rng.random((n, 28, 28, 1), np.float32)), "y": jnp.asarray(rng.integers(0, 10, n))}
    runs = {name: step_runner(layers, batch) for name, layers in VARIANTS.items()}
    shape, key = (n, 24, 24, 64), jax.random.key(0)
    mask = jax.jit(lambda k: jax.random.bernoulli(k, 0.75, shape))
    # lax.map runs the 8 draws one after another (a loop), so each one's buffers stay in cache.
    chunked = jax.jit(lambda k: jax.lax.map(lambda q: jax.random.bits(q, (np.prod(shape) // 8,)),
                                            jax.random.split(k, 8)))
    runs["dropout mask alone"] = lambda: jax.block_until_ready(mask(key))
    runs["same bits as 8 sequential draws"] = lambda: jax.block_until_ready(chunked(key))
    med = timing.interleaved_medians(runs, repeats=FLAGS.repeats)
    per = {k: v / (FLAGS.steps if k in VARIANTS else 1) * 1e3 for k, v in med.items()}
    table = [(k, v, f"{n / v * 1e3:.0f} samples/s" if k in VARIANTS else f"f32{list(shape)} worth of bits")
             for k, v in per.items()]
    ratios = {f"full/{k}": per["full step"] / v for k, v in per.items() if k in VARIANTS and k != "full step"}
    print(f"{jax.devices()[0].platform}, batch {n}, ms per training step (median of {FLAGS.repeats} x {FLAGS.steps})")
    timing.emit("cnn_breakdown", "ms", False, per, ratios, table)


if __name__ == "__main__":
    app.run(main)
