"""MLP 784-1024-512-10 training step, Adam: jaxml vs a flax.linen module vs PyTorch eager (if installed).

    python bench/mlp_step.py [--batch_sizes=128,1024] [--steps=50] [--repeats=5]

Reports samples/s (median of repeats of ``steps`` steps) per implementation and batch size, the
achieved GFLOP/s (6 x params-MACs per sample: forward + two backward matmuls) against the f32 matmul
peak measured in the same run, and the ratio jaxml / best peer.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

import timing
from jaxml import models
from jaxml.train import objectives
from jaxml.train import step as step_lib
from jaxml.train.state import TrainState

flags.DEFINE_list("batch_sizes", ["128", "1024"], "Batch sizes.")
flags.DEFINE_integer("steps", 50, "Steps per timed repeat.")
flags.DEFINE_integer("repeats", 5, "Timed repeats (median reported).")
FLAGS = flags.FLAGS
HP = step_lib.Hparams(seed=0)   # the step's seed; no l1/l2 penalty
WIDTHS = (1024, 512)
MACS = 784 * 1024 + 1024 * 512 + 512 * 10


def bench_jaxml(x, y, steps):
    m = models.get("mlp", input_shape=(784,), widths=WIDTHS, num_outputs=10)
    opt = optax.adam(1e-3)
    step = jax.jit(functools.partial(step_lib.make_train_step(m, objectives.get("softmax_xent"), opt), hp=HP),
                   donate_argnums=0)
    p = m.init(jax.random.key(0))
    box = [TrainState(jnp.zeros((), jnp.int32), p, {}, opt.init(p))]
    batch = {"x": jnp.asarray(x), "y": jnp.asarray(y)}

    def run():
        s = box[0]
        for _ in range(steps):
            s, _ = step(s, batch)
        jax.block_until_ready(s)
        box[0] = s
    return run


def bench_flax(x, y, steps):
    import flax.linen as nn

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            for w in WIDTHS:
                x = nn.relu(nn.Dense(w)(x))
            return nn.Dense(10)(x)

    model, opt = MLP(), optax.adam(1e-3)
    params = model.init(jax.random.key(0), x[:1])
    box = [(params, opt.init(params))]
    xb, yb = jnp.asarray(x), jnp.asarray(y)

    @jax.jit
    def step(params, opt_state, x, y):
        def loss_fn(p):
            return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, x), y).mean()
        loss, g = jax.value_and_grad(loss_fn)(params)
        u, opt_state = opt.update(g, opt_state, params)
        return optax.apply_updates(params, u), opt_state

    def run():
        p, o = box[0]
        for _ in range(steps):
            p, o = step(p, o, xb, yb)
        jax.block_until_ready(p)
        box[0] = (p, o)
    return run


def bench_torch(x, y, steps):
    import torch
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(784, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 512),
                              torch.nn.ReLU(), torch.nn.Linear(512, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    loss_fn = torch.nn.CrossEntropyLoss()

    def run():
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss_fn(net(xt), yt).backward()
            opt.step()
    return run


def main(argv):
    del argv
    peak = timing.matmul_peak_gflops()
    impls = {"jaxml": bench_jaxml, "flax": bench_flax}
    try:
        import torch  # noqa: F401
        impls["torch"] = bench_torch
    except ImportError:
        print("PyTorch not installed: pip install -e '.[bench]' to compare with it")
    results, ratios, table = {}, {}, []
    rng = np.random.default_rng(0)
    for bs in map(int, FLAGS.batch_sizes):
        x = rng.random((bs, 784), np.float32)
        y = rng.integers(0, 10, bs).astype(np.int32)
        medians = timing.interleaved_medians({name: make(x, y, FLAGS.steps) for name, make in impls.items()},
                                             repeats=FLAGS.repeats)
        for name, t in medians.items():
            sps = bs * FLAGS.steps / t
            results[f"{name}@{bs}"] = sps
            gflops = 6 * MACS * sps / 1e9
            table.append((f"{name} batch {bs}", sps,
                          f"{gflops:.1f} GFLOP/s = {100 * gflops / peak:.0f}% of matmul peak"))
        best_peer = max((k for k in impls if k != "jaxml"), key=lambda k: results[f"{k}@{bs}"])
        for peer in impls:
            if peer != "jaxml":
                ratios[f"jaxml/{peer}@{bs}"] = results[f"jaxml@{bs}"] / results[f"{peer}@{bs}"]
        ratios[f"jaxml/best_peer@{bs}"] = results[f"jaxml@{bs}"] / results[f"{best_peer}@{bs}"]
    print(f"f32 matmul peak (best of 1024^3 / 2048^3, XLA, this run): {peak:.1f} GFLOP/s "
          f"on {jax.devices()[0].platform}")
    timing.emit("mlp_step", "samples/s", True, results, ratios, table)


if __name__ == "__main__":
    app.run(main)
