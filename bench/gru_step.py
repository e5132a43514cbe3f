"""GRU forward + backward: batch 64, T 100, input 128, hidden 256 — jaxml (cell + lax.scan, input
projection hoisted out of the scan) vs flax ``nn.RNN(nn.GRUCell)`` vs ``torch.nn.GRU`` (CPU, eager).

    python bench/gru_step.py [--batch=64] [--time=100] [--features=128] [--hidden=256] [--repeats=7]

Each timed call computes loss = mean(h_t^2) over the whole output sequence and its gradient with
respect to all GRU parameters. Reports sequences/s (median) and jaxml / peer ratios.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

import timing
from jaxml.models import gru

flags.DEFINE_integer("batch", 64, "Batch size.")
flags.DEFINE_integer("time", 100, "Sequence length.")
flags.DEFINE_integer("features", 128, "Input features.")
flags.DEFINE_integer("hidden", 256, "Hidden units.")
flags.DEFINE_integer("repeats", 7, "Timed repeats (median reported).")
flags.DEFINE_integer("calls", 3, "fwd+bwd calls per timed repeat.")
flags.DEFINE_list("unroll", ["1", "2", "4"], "jaxml scan unroll factors to measure (the best is reported).")
FLAGS = flags.FLAGS


def bench_jaxml(x, unroll):
    params = gru.init_layer(jax.random.key(0), x.shape[-1], FLAGS.hidden)
    xb = jnp.asarray(x)
    grad = jax.jit(jax.grad(lambda p, x: jnp.mean(jnp.square(gru.scan(p, x, unroll=unroll)[1]))))

    def run():
        for _ in range(FLAGS.calls):
            g = grad(params, xb)
        jax.block_until_ready(g)
    return run


def bench_flax(x):
    import flax.linen as nn
    rnn = nn.RNN(nn.GRUCell(features=FLAGS.hidden))
    xb = jnp.asarray(x)
    params = rnn.init(jax.random.key(0), xb)
    grad = jax.jit(jax.grad(lambda p, x: jnp.mean(jnp.square(rnn.apply(p, x)))))

    def run():
        for _ in range(FLAGS.calls):
            g = grad(params, xb)
        jax.block_until_ready(g)
    return run


def bench_torch(x):
    import torch
    torch.manual_seed(0)
    net = torch.nn.GRU(x.shape[-1], FLAGS.hidden, batch_first=True)
    xt = torch.from_numpy(x)

    def run():
        for _ in range(FLAGS.calls):
            net.zero_grad(set_to_none=True)
            out, _ = net(xt)
            out.pow(2).mean().backward()
    return run


def main(argv):
    del argv
    x = np.random.default_rng(0).standard_normal((FLAGS.batch, FLAGS.time, FLAGS.features)).astype(np.float32)
    runs = {f"jaxml(unroll={u})": bench_jaxml(x, int(u)) for u in FLAGS.unroll}
    runs["flax"] = bench_flax(x)
    try:
        runs["torch"] = bench_torch(x)
    except ImportError:
        print("PyTorch not installed: pip install -e '.[bench]' to compare with it")
    medians = timing.interleaved_medians(runs, repeats=FLAGS.repeats)
    seqs = {k: FLAGS.batch * FLAGS.calls / t for k, t in medians.items()}
    best = max((k for k in seqs if k.startswith("jaxml")), key=seqs.get)
    results = {"jaxml": seqs[best], **{k: v for k, v in seqs.items() if not k.startswith("jaxml")}}
    ratios = {f"jaxml/{k}": results["jaxml"] / v for k, v in results.items() if k != "jaxml"}
    table = [(k, v, "best jaxml" if k == best else "") for k, v in seqs.items()]
    print(f"GRU fwd+bwd, batch {FLAGS.batch}, T {FLAGS.time}, input {FLAGS.features}, hidden {FLAGS.hidden}, "
          f"{jax.devices()[0].platform}")
    timing.emit("gru_step", "seq/s", True, results, ratios, table)


if __name__ == "__main__":
    app.run(main)
