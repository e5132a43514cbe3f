"""Dropout mask generators: forward + backward of inverted dropout (rate 0.25) on the digit CNN's conv2
activations and on an MLP's hidden layer, batch 128.

    flock /tmp/jaxml-bench.lock python bench/dropout_mask.py [--repeats=9] [--runs=3] [--shapes=conv2,mlp] [--step]

Shapes: ``conv2`` f32[128, 24, 24, 64] (configs/mnist_cnn.py: the output of Conv(64, 3) on 26x26, where the
report's CNN drops out), ``mlp`` f32[128, 1024] (configs/mnist_mlp.py's first hidden layer).

Generators (each draws bool[shape] keep bits, then y = where(keep, x / (1 - rate), 0) and its VJP):
- ``hash``: jaxml's ``layers.dropout`` — per example k = key_data(fold_in(key, example index)) (one threefry
  call per example), then two lowbias32 rounds of the unit index per unit; layout-independent.
- ``threefry``: per example ``bernoulli(fold_in(key, example index), p, shape[1:])`` vmapped; layout-independent.
- ``rbg`` / ``unsafe_rbg``: the same with keys of that implementation (XLA's RngBitGenerator); the column
  ``layout-free`` says whether an example's bits survive a change of batch (vmapped RBG draws do not).
- ``threefry_batch`` (jaxml before this change), ``rbg_batch``, ``unsafe_rbg_batch``: one draw of the whole
  shape from one key — an example's bits depend on where it sits in the batch.
- ``none``: y = x / (1 - rate) with no mask, the floor (memory traffic of x, y and the gradient).

Prints per shape the median ms (median over ``runs`` rounds of interleaved medians, with the range of the
rounds), the mask's cost above ``none``, whether the bits are layout-free, the keep rate's deviation in
binomial standard errors, and ratios peer / hash (> 1: jaxml's hash is faster); then one JSON line.
With ``--step`` also the whole digit CNN training step (batch 128, Adam, im2col on CPU) with its dropout layer
and without it: what dropout still costs a step.
"""
from __future__ import annotations

import functools
import statistics

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

import timing
from jaxml import models
from jaxml.models.cnn import REPORT_DIGIT_CNN
from jaxml.nn import layers
from jaxml.train import objectives
from jaxml.train import step as step_lib
from jaxml.train.state import TrainState

flags.DEFINE_integer("repeats", 9, "Interleaved timed repeats per round (median reported).")
flags.DEFINE_integer("runs", 3, "Rounds of interleaved repeats (median of the rounds' medians, range shown).")
flags.DEFINE_list("shapes", ["conv2", "mlp"], "Activation shapes to time: conv2, mlp.")
flags.DEFINE_bool("step", False, "Also time the digit CNN training step with and without its dropout layer.")
FLAGS = flags.FLAGS

SHAPES = {"conv2": (128, 24, 24, 64), "mlp": (128, 1024)}
RATE = 0.25


def _per_example(impl):
    def keep(key, p, shape, ids):
        keys = jax.vmap(jax.random.fold_in, (None, 0))(key, ids)
        return jax.vmap(lambda k: jax.random.bernoulli(k, p, shape[1:]))(keys)
    return keep


def _whole_batch(key, p, shape, ids):
    return jax.random.bernoulli(key, p, shape)


GENERATORS = {   # name: (key impl, keep(key, p, shape, example_ids) -> bool[shape])
    "hash": ("threefry2x32", layers.dropout_keep),
    "threefry": ("threefry2x32", _per_example("threefry2x32")),
    "rbg": ("rbg", _per_example("rbg")),
    "unsafe_rbg": ("unsafe_rbg", _per_example("unsafe_rbg")),
    "threefry_batch": ("threefry2x32", _whole_batch),
    "rbg_batch": ("rbg", _whole_batch),
    "unsafe_rbg_batch": ("unsafe_rbg", _whole_batch),
    "none": ("threefry2x32", None),
}


def fwd_bwd(keep_fn, shape):
    """jit(x, g, key) -> (dropout(x), its VJP at g)."""
    ids = jnp.arange(shape[0], dtype=jnp.uint32)

    def f(x, g, key):
        def drop(x):
            if keep_fn is None:
                return x * (1.0 / (1.0 - RATE))
            return jnp.where(keep_fn(key, 1.0 - RATE, x.shape, ids), x * (1.0 / (1.0 - RATE)), 0.0)
        y, vjp = jax.vjp(drop, x)
        return y, vjp(g)[0]
    return jax.jit(f)


def layout_free(keep_fn, key, shape) -> bool:
    """Are examples B/2..B-1 masked alike in a batch of B and in a batch of only them?"""
    b = shape[0]
    whole = keep_fn(key, 1.0 - RATE, shape, jnp.arange(b, dtype=jnp.uint32))
    half = keep_fn(key, 1.0 - RATE, (b // 2,) + shape[1:], jnp.arange(b // 2, b, dtype=jnp.uint32))
    return bool(jnp.array_equal(whole[b // 2:], half))


def keep_rate_z(keep_fn, key, shape) -> float:
    m = np.asarray(keep_fn(key, 1.0 - RATE, shape, jnp.arange(shape[0], dtype=jnp.uint32)))
    p = 1.0 - RATE
    return float((m.mean() - p) / np.sqrt(p * (1 - p) / m.size))


def cnn_step(spec, steps=2):
    """``steps`` digit CNN training steps (batch 128, Adam) with layer spec ``spec``, state donated."""
    m = models.get("cnn", input_shape=(28, 28, 1), layers=spec, num_outputs=10, conv_padding="VALID")
    opt = optax.adam(1e-3)
    step = jax.jit(functools.partial(step_lib.make_train_step(m, objectives.get("softmax_xent"), opt),
                                     hp=step_lib.Hparams(seed=0)), donate_argnums=0)
    p = m.init(jax.random.key(0))
    box = [TrainState(jnp.zeros((), jnp.int32), p, m.init_state(), opt.init(p))]
    rng = np.random.default_rng(0)
    batch = {"x": jnp.asarray(rng.random((128, 28, 28, 1), np.float32)), "y": jnp.asarray(rng.integers(0, 10, 128))}

    def run():
        s = box[0]
        for _ in range(steps):
            s, _ = step(s, batch)
        box[0] = jax.block_until_ready(s)
    return run


def main(argv):
    del argv
    results, ratios, table = {}, {}, []
    for sname in FLAGS.shapes:
        shape = SHAPES[sname]
        x = jax.random.normal(jax.random.key(1), shape)
        g = jax.random.normal(jax.random.key(2), shape)
        keys = {name: jax.random.fold_in(jax.random.key(0, impl=impl), 7) for name, (impl, _) in GENERATORS.items()}
        fns = {name: fwd_bwd(fn, shape) for name, (_, fn) in GENERATORS.items()}
        runs = {name: (lambda f=f, k=keys[name]: jax.block_until_ready(f(x, g, k))) for name, f in fns.items()}
        rounds = [timing.interleaved_medians(runs, repeats=FLAGS.repeats) for _ in range(FLAGS.runs)]
        med = {n: statistics.median(r[n] for r in rounds) for n in runs}
        floor = med["none"]
        for name, (_, fn) in GENERATORS.items():
            lo, hi = min(r[name] for r in rounds), max(r[name] for r in rounds)
            note = f"range {1e3 * lo:.2f}-{1e3 * hi:.2f} ms"
            if fn is not None:
                note += (f"; mask cost {1e3 * (med[name] - floor):.2f} ms; layout-free "
                         f"{'yes' if layout_free(fn, keys[name], shape) else 'no'}; keep-rate z "
                         f"{keep_rate_z(fn, keys[name], shape):+.1f}")
            table.append((f"{sname} {name}", 1e3 * med[name], note))
            results[f"{sname}/{name}"] = 1e3 * med[name]
        for peer in GENERATORS:
            if peer not in ("hash", "none"):
                ratios[f"jaxml_hash/{peer}@{sname}"] = med[peer] / med["hash"]
        ratios[f"mask_cost_threefry_batch/hash@{sname}"] = ((med["threefry_batch"] - floor)
                                                            / max(med["hash"] - floor, 1e-9))
    if FLAGS.step:
        without = tuple(t for t in REPORT_DIGIT_CNN if not t.startswith("dropout"))
        runs = {"cnn_step": cnn_step(REPORT_DIGIT_CNN), "cnn_step_no_dropout": cnn_step(without)}
        rounds = [timing.interleaved_medians(runs, repeats=max(FLAGS.repeats // 2, 3)) for _ in range(FLAGS.runs)]
        for name in runs:
            ms = [1e3 * r[name] / 2 for r in rounds]
            table.append((name, statistics.median(ms), f"per step; range {min(ms):.1f}-{max(ms):.1f} ms"))
            results[name] = statistics.median(ms)
        ratios["cnn_step_no_dropout/cnn_step"] = results["cnn_step_no_dropout"] / results["cnn_step"]
    timing.emit("dropout_mask", "ms", False, results, ratios, table)


if __name__ == "__main__":
    app.run(main)
