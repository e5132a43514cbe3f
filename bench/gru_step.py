"""GRU forward + backward: batch 64, T 100, input 128, hidden 256 — jaxml (``gru.scan``: one custom VJP per
layer, the input projection one matmul before the loop, hand-derived gate gradients written over the stored
pre-activations in place, dU / dW_i one matmul each after the backward loop) vs flax ``nn.RNN(nn.GRUCell)``
vs ``torch.nn.GRU`` (CPU, eager), and the plain-autodiff scan of the same cell for reference.

    python bench/gru_step.py [--batch=64] [--time=100] [--features=128] [--hidden=256] [--repeats=7]

Each timed call computes loss = mean(h_t^2) over the whole output sequence and its gradient with respect to
all GRU parameters. Reports sequences/s (median), the step time and the first call's time (trace + compile
+ one step; eager torch has no compile) beside it. PyTorch runs at its default thread count and at one
thread (on a loaded machine its default can be many times slower); the faster median is the peer.

Both sides on every core: PyTorch splits each matmul over its intra-op threads; jaxml, as its training loop does
by default for the GRU (``config.parallel.cpu_devices="auto"``, jaxml/layout.py), splits the batch over the cores
as CPU devices (``jaxml(N devices)``: ``jax.shard_map`` over a ``data`` mesh, each device differentiating its
sequences' share of the loss, the gradients ``psum``-ed; the same gradients as one device up to summation order).
The row a user gets by default (``auto`` for ``configs/gru_adding.py`` at this batch on these cores, unroll 1) is
marked "default layout"; the ratios are given for it (``jaxml-default/torch``), for the faster jaxml row
(``jaxml/torch``) and for one device alone (``jaxml-1dev/torch``).
"""
from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from jax import lax
from jax.sharding import PartitionSpec as P

import timing
from jaxml import layout, parallel
from jaxml.cli.config_file import load_config
from jaxml.models import gru

flags.DEFINE_integer("batch", 64, "Batch size.")
flags.DEFINE_integer("time", 100, "Sequence length.")
flags.DEFINE_integer("features", 128, "Input features.")
flags.DEFINE_integer("hidden", 256, "Hidden units.")
flags.DEFINE_integer("repeats", 7, "Timed repeats (median reported).")
flags.DEFINE_integer("calls", 3, "fwd+bwd calls per timed repeat.")
flags.DEFINE_list("unroll", ["1", "2", "4"], "jaxml scan unroll factors to measure (the best is reported).")
flags.DEFINE_bool("reference", True, "Also time the plain-autodiff lax.scan of the same cell.")
flags.DEFINE_integer("devices", 0, "CPU devices for the batch-split jaxml row (0 = every core; 1 = no such row).")
FLAGS = flags.FLAGS


def _jitted(loss, params, xb):
    """(run, first-call seconds) for jit(grad(loss)); the first call traces, compiles and runs once."""
    return _timed(jax.jit(jax.grad(loss)), params, xb)


def _timed(grad, params, xb):
    """(run, first-call seconds) for a jitted gradient function ``grad(params, xb)``."""
    t = time.perf_counter()
    jax.block_until_ready(grad(params, xb))
    first = time.perf_counter() - t

    def run():
        for _ in range(FLAGS.calls):
            g = grad(params, xb)
        jax.block_until_ready(g)
    return run, first


def _autodiff_scan(params, xs):
    """The same cell in a plain lax.scan over one fused [time, batch, 3H] projection, differentiated by JAX."""
    xp = jnp.swapaxes(xs @ params["w_i"] + params["b_i"], 0, 1)

    def step(h, xp_t):
        h = gru.cell_from_projection(params, h, xp_t)
        return h, h
    _, hs = lax.scan(step, jnp.zeros((xs.shape[0], params["w_h"].shape[0]), xs.dtype), xp)
    return jnp.swapaxes(hs, 0, 1)


def bench_jaxml(x, unroll):
    params = gru.init_layer(jax.random.key(0), x.shape[-1], FLAGS.hidden)
    return _jitted(lambda p, x: jnp.mean(jnp.square(gru.scan(p, x, unroll=unroll)[1])), params, jnp.asarray(x))


def bench_jaxml_sharded(x, mesh):
    """jit(grad) of the same loss with the batch split over ``mesh``: each device differentiates
    sum(h^2) / (B T H) over its sequences, and the gradients are summed across devices."""
    params = gru.init_layer(jax.random.key(0), x.shape[-1], FLAGS.hidden)
    count = x.shape[0] * x.shape[1] * FLAGS.hidden
    axis = mesh.axis_names[0]

    def local(p, xb):
        g = jax.grad(lambda p: jnp.sum(jnp.square(gru.scan(p, xb)[1])) / count)(p)
        return lax.psum(g, axis)

    grad = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P(), P(axis)), out_specs=P()))
    return _timed(grad, params, jax.device_put(x, parallel.batch_sharded(mesh)))


def bench_reference(x):
    params = gru.init_layer(jax.random.key(0), x.shape[-1], FLAGS.hidden)
    return _jitted(lambda p, x: jnp.mean(jnp.square(_autodiff_scan(p, x))), params, jnp.asarray(x))


def bench_flax(x):
    import flax.linen as nn
    rnn = nn.RNN(nn.GRUCell(features=FLAGS.hidden))
    xb = jnp.asarray(x)
    params = rnn.init(jax.random.key(0), xb)
    return _jitted(lambda p, x: jnp.mean(jnp.square(rnn.apply(p, x))), params, xb)


def bench_torch(x, threads):
    import torch
    torch.manual_seed(0)
    net = torch.nn.GRU(x.shape[-1], FLAGS.hidden, batch_first=True)
    xt = torch.from_numpy(x)

    def step():
        net.zero_grad(set_to_none=True)
        out, _ = net(xt)
        out.pow(2).mean().backward()

    def run():
        torch.set_num_threads(threads)
        for _ in range(FLAGS.calls):
            step()
    torch.set_num_threads(threads)
    t = time.perf_counter()
    step()
    return run, time.perf_counter() - t


def main(argv):
    del argv
    cores = FLAGS.devices or layout.cpu_cores()
    if cores > 1:
        jax.config.update("jax_num_cpu_devices", cores)   # before JAX first runs
    x = np.random.default_rng(0).standard_normal((FLAGS.batch, FLAGS.time, FLAGS.features)).astype(np.float32)
    runs, first = {}, {}
    for u in FLAGS.unroll:
        runs[f"jaxml(unroll={u})"], first[f"jaxml(unroll={u})"] = bench_jaxml(x, int(u))
    if cores > 1 and FLAGS.batch % cores == 0:
        name = f"jaxml({cores} devices)"
        runs[name], first[name] = bench_jaxml_sharded(x, parallel.data_mesh())
    if FLAGS.reference:
        runs["autodiff lax.scan"], first["autodiff lax.scan"] = bench_reference(x)
    runs["flax"], first["flax"] = bench_flax(x)
    try:
        import torch
        default_threads = torch.get_num_threads()
        runs[f"torch({default_threads} threads)"], first[f"torch({default_threads} threads)"] = \
            bench_torch(x, default_threads)
        if default_threads != 1:
            runs["torch(1 thread)"], first["torch(1 thread)"] = bench_torch(x, 1)
        torch.set_num_threads(default_threads)
    except ImportError:
        print("PyTorch not installed: pip install -e '.[bench]' to compare with it")
    config = load_config(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                      "configs", "gru_adding.py"))
    config.data.batch_size = FLAGS.batch
    n_default = layout.auto_devices(config, cores)
    default = f"jaxml({n_default} devices)" if n_default > 1 else "jaxml(unroll=1)"
    medians = timing.interleaved_medians(runs, repeats=FLAGS.repeats)
    seqs = {k: FLAGS.batch * FLAGS.calls / t for k, t in medians.items()}
    best = max((k for k in seqs if k.startswith("jaxml")), key=seqs.get)
    best_1dev = max((k for k in seqs if k.startswith("jaxml(unroll")), key=seqs.get)
    results = {"jaxml": seqs[best], "jaxml-default": seqs[default], "jaxml-1dev": seqs[best_1dev],
               "flax": seqs["flax"]}
    torch_rows = [k for k in seqs if k.startswith("torch")]
    if torch_rows:
        best_torch = max(torch_rows, key=seqs.get)
        results["torch"] = seqs[best_torch]
    if FLAGS.reference:
        results["autodiff_scan"] = seqs["autodiff lax.scan"]
    # torch on every core against jaxml's best on every core and on one device; flax and the autodiff scan run
    # on one device, so they are compared with jaxml on one device.
    ratios = {f"jaxml-1dev/{k}": results["jaxml-1dev"] / v for k, v in results.items() if not k.startswith("jaxml")}
    if torch_rows:
        ratios["jaxml-default/torch"] = results["jaxml-default"] / results["torch"]
        ratios["jaxml/torch"] = results["jaxml"] / results["torch"]
    notes = {best_1dev: "best on one device; ", best: "best jaxml; ",
             **({best_torch: "peer torch; "} if torch_rows else {})}
    notes[default] = "default layout; " + notes.get(default, "")
    table = [(k, v, f"{notes.get(k, '')}step {1e3 * medians[k] / FLAGS.calls:.1f} ms, first call {first[k]:.2f} s")
             for k, v in seqs.items()]
    print(f"GRU fwd+bwd, batch {FLAGS.batch}, T {FLAGS.time}, input {FLAGS.features}, hidden {FLAGS.hidden}, "
          f"{jax.devices()[0].platform}; first call = trace + compile + one step")
    timing.emit("gru_step", "seq/s", True, results, ratios, table)


if __name__ == "__main__":
    app.run(main)
