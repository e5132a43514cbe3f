"""The report's digit CNN training step, batch 128, Adam, 28x28x1: jaxml vs a flax.linen module vs
PyTorch eager.

    flock /tmp/jaxml-bench.lock python bench/cnn_step.py [--batch=128] [--steps=4] [--repeats=7]
        [--scan_steps=0] [--quick]

Model (all 'valid' convolutions, ReLU, as the report / Keras):
    Conv(32,3)-Conv(64,3)-BN-Dropout(0.25)-Conv(64,3)-MaxPool(2)-BN-Flatten-Dense(128)-Dense(10)
Each implementation runs the same full training step (forward in training mode with batch-norm
batch statistics and dropout, softmax cross-entropy, backward, Adam update) on the same random batch.

- jaxml: ``models.get("cnn", ...)`` + ``train.step.make_train_step``, jitted with the state donated;
  conv path ``auto`` (im2col on CPU) and, for reference, ``xla`` (``lax.conv_general_dilated``).
- flax: the same architecture with ``flax.linen`` (nn.Conv is XLA's convolution), jitted.
- torch: ``torch.nn.Sequential`` eager with ``torch.set_num_threads(os.cpu_count())``; both memory
  formats (NCHW and channels_last) are timed and the faster one is the peer.

- jaxml_auto_scanK (with --scan_steps=K): the same step, K of them per jitted call (lax.scan over K
  batches) — shows what the per-call cost is (XLA:CPU maps and page-faults its temporary buffer anew
  on every call).

Reports samples/s (median of interleaved repeats of ``steps`` steps), the best repeat, the process
CPU time per step (both cores busy = 2x wall; spinning threads count too), the achieved GFLOP/s
(multiply-adds of forward + weight-gradient + input-gradient, except the first conv's input
gradient, which nobody needs) and the ratios jaxml / peer (> 1: jaxml faster) of the medians.
On a shared machine the ratio moves with the load: run it when the machine is quiet, and compare
the best-repeat column too.
"""
from __future__ import annotations

import functools
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags
from jax import lax

import timing
from jaxml import models
from jaxml.models.cnn import REPORT_DIGIT_CNN
from jaxml.train import objectives
from jaxml.train import step as step_lib
from jaxml.train.state import TrainState

flags.DEFINE_integer("batch", 128, "Batch size.")
flags.DEFINE_integer("steps", 4, "Training steps per timed repeat.")
flags.DEFINE_integer("repeats", 7, "Interleaved timed repeats (median reported).")
flags.DEFINE_list("jaxml_impls", ["auto", "xla"], "jaxml conv paths to time ('auto' is the default path).")
flags.DEFINE_integer("scan_steps", 0, "If > 0, also time jaxml with this many steps per jitted call.")
flags.DEFINE_bool("quick", False, "A fast smoke run: 2 steps x 3 repeats, jaxml auto + torch only.")
FLAGS = flags.FLAGS
HP = step_lib.Hparams(seed=0)   # the step's seed; no l1/l2 penalty

SHAPE = (28, 28, 1)
LR = 1e-3


def train_macs_per_sample() -> int:
    """Multiply-adds per sample of one training step: 3x the forward for every layer but the first
    conv, which needs no input gradient (2x)."""
    h, w, c = SHAPE
    total = 0
    for i, (cout, k) in enumerate([(32, 3), (64, 3), (64, 3)]):
        h, w = h - k + 1, w - k + 1
        fwd = h * w * k * k * c * cout
        total += (2 if i == 0 else 3) * fwd
        c = cout
    feats = (h // 2) * (w // 2) * c
    return total + 3 * (feats * 128 + 128 * 10)


def bench_jaxml(x, y, steps, impl):
    m = models.get("cnn", input_shape=SHAPE, layers=REPORT_DIGIT_CNN, num_outputs=10, conv_impl=impl,
                   conv_padding="VALID")
    opt = optax.adam(LR)
    step = jax.jit(functools.partial(step_lib.make_train_step(m, objectives.get("softmax_xent"), opt), hp=HP),
                   donate_argnums=0)
    p = m.init(jax.random.key(0))
    box = [TrainState(jnp.zeros((), jnp.int32), p, m.init_state(), opt.init(p))]
    batch = {"x": jnp.asarray(x), "y": jnp.asarray(y)}

    def run():
        s = box[0]
        for _ in range(steps):
            s, _ = step(s, batch)
        jax.block_until_ready(s)
        box[0] = s
    return run


def bench_jaxml_scan(x, y, steps, k):
    """``steps`` training steps as steps // k jitted calls of lax.scan over k (identical) batches."""
    if steps % k:
        raise ValueError(f"--steps={steps} must be a multiple of --scan_steps={k}")
    m = models.get("cnn", input_shape=SHAPE, layers=REPORT_DIGIT_CNN, num_outputs=10, conv_impl="auto",
                   conv_padding="VALID")
    opt = optax.adam(LR)
    step = functools.partial(step_lib.make_train_step(m, objectives.get("softmax_xent"), opt), hp=HP)
    multi = jax.jit(lambda s, bs: lax.scan(step, s, bs)[0], donate_argnums=0)
    p = m.init(jax.random.key(0))
    box = [TrainState(jnp.zeros((), jnp.int32), p, m.init_state(), opt.init(p))]
    batches = {"x": jnp.stack([jnp.asarray(x)] * k), "y": jnp.stack([jnp.asarray(y)] * k)}

    def run():
        s = box[0]
        for _ in range(steps // k):
            s = multi(s, batches)
        jax.block_until_ready(s)
        box[0] = s
    return run


def timed_medians(runs: dict, repeats: int) -> tuple[dict, dict, dict]:
    """Interleaved repeats (A B C A B C ...) after one warm-up call each: median and best wall seconds,
    and median process CPU seconds, per implementation."""
    for run in runs.values():
        run()
    wall = {k: [] for k in runs}
    cpu = {k: [] for k in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            t, c = time.perf_counter(), time.process_time()
            run()
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    return ({k: statistics.median(v) for k, v in wall.items()}, {k: min(v) for k, v in wall.items()},
            {k: statistics.median(v) for k, v in cpu.items()})


def bench_flax(x, y, steps):
    import flax.linen as nn

    class CNN(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool):
            x = nn.relu(nn.Conv(32, (3, 3), padding="VALID")(x))
            x = nn.relu(nn.Conv(64, (3, 3), padding="VALID")(x))
            x = nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-3)(x)
            x = nn.Dropout(0.25, deterministic=not train)(x)
            x = nn.relu(nn.Conv(64, (3, 3), padding="VALID")(x))
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
            x = nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-3)(x)
            x = x.reshape(x.shape[0], -1)
            x = nn.relu(nn.Dense(128)(x))
            return nn.Dense(10)(x)

    model, opt = CNN(), optax.adam(LR)
    xb, yb = jnp.asarray(x), jnp.asarray(y)
    variables = model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, xb[:2], train=False)
    params, stats = variables["params"], variables["batch_stats"]
    box = [(params, stats, opt.init(params), jnp.zeros((), jnp.int32))]

    def step(params, stats, opt_state, i, x, y):
        def loss_fn(p):
            logits, upd = model.apply({"params": p, "batch_stats": stats}, x, train=True, mutable=["batch_stats"],
                                      rngs={"dropout": jax.random.fold_in(jax.random.key(1), i)})
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), upd["batch_stats"]
        (_, stats), g = jax.value_and_grad(loss_fn, has_aux=True)(params)
        u, opt_state = opt.update(g, opt_state, params)
        return optax.apply_updates(params, u), stats, opt_state, i + 1

    step = jax.jit(step, donate_argnums=(0, 1, 2, 3))

    def run():
        s = box[0]
        for _ in range(steps):
            s = step(*s, xb, yb)
        jax.block_until_ready(s)
        box[0] = s
    return run


def bench_torch(x, y, steps, channels_last: bool):
    import torch
    nn = torch.nn
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(),
        nn.BatchNorm2d(64, eps=1e-3, momentum=0.01), nn.Dropout(0.25),
        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(64, eps=1e-3, momentum=0.01),
        nn.Flatten(), nn.Linear(64 * 11 * 11, 128), nn.ReLU(), nn.Linear(128, 10))
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # NHWC -> NCHW
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        xt = xt.contiguous(memory_format=torch.channels_last)
    yt = torch.from_numpy(y.astype(np.int64))
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()

    def run():
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss_fn(net(xt), yt).backward()
            opt.step()
    return run


def main(argv):
    del argv
    steps, repeats, impls = FLAGS.steps, FLAGS.repeats, list(FLAGS.jaxml_impls)
    if FLAGS.quick:
        steps, repeats, impls = 2, 3, ["auto"]
    bs = FLAGS.batch
    rng = np.random.default_rng(0)
    x = rng.random((bs,) + SHAPE, np.float32)
    y = rng.integers(0, 10, bs).astype(np.int32)

    runs = {}
    for impl in impls:
        runs[f"jaxml_{impl}"] = bench_jaxml(x, y, steps, impl)
    if FLAGS.scan_steps and not FLAGS.quick:
        runs[f"jaxml_auto_scan{FLAGS.scan_steps}"] = bench_jaxml_scan(x, y, steps, FLAGS.scan_steps)
    if not FLAGS.quick:
        runs["flax"] = bench_flax(x, y, steps)
    try:
        import torch
        threads = os.cpu_count()
        torch.set_num_threads(threads)
        print(f"torch {torch.__version__}: torch.set_num_threads({threads}) (= os.cpu_count())")
        runs["torch_nchw"] = bench_torch(x, y, steps, channels_last=False)
        if not FLAGS.quick:
            runs["torch_channels_last"] = bench_torch(x, y, steps, channels_last=True)
    except ImportError:
        print("PyTorch not installed: pip install -e '.[bench]' to compare with it")

    medians, bests, cpus = timed_medians(runs, repeats)
    results = {name: bs * steps / t for name, t in medians.items()}
    macs = train_macs_per_sample()
    table = [(name, sps, f"best repeat {bs * steps / bests[name]:7.1f} samples/s, cpu {1e3 * cpus[name] / steps:6.0f} "
                         f"ms/step, {2 * macs * sps / 1e9:5.1f} GFLOP/s") for name, sps in results.items()]
    if "torch_nchw" in results:
        torch_names = [k for k in results if k.startswith("torch_")]
        best = max(torch_names, key=results.get)
        results["torch"] = results[best]
        print(f"torch peer = {best} (the faster memory format)")
    ratios = {}
    main_name = "jaxml_auto" if "jaxml_auto" in results else f"jaxml_{impls[0]}"
    results["jaxml"] = results[main_name]
    for peer in ("flax", "torch"):
        if peer in results:
            ratios[f"jaxml/{peer}"] = results["jaxml"] / results[peer]
    if "jaxml_xla" in results and main_name != "jaxml_xla":
        ratios["jaxml/jaxml_xla"] = results["jaxml"] / results["jaxml_xla"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"batch {bs}, {steps} steps per repeat, median of {repeats} interleaved repeats, "
          f"{os.cpu_count()} CPU cores (1-min load average at the end: {load:.1f}), backend "
          f"{jax.default_backend()}, {2 * macs / 1e6:.0f} MFLOP per sample per step")
    timing.emit("cnn_step", "samples/s", True, results, ratios, table)


if __name__ == "__main__":
    app.run(main)
