"""Remat memory: the compiled train step's temporary bytes with and without ``config.model.remat``.

    python bench/remat_memory.py [--depth=16] [--width=1024] [--batch=512]

For a deep MLP (``depth`` blocks dense-bn-act of ``width``, 784 inputs, 10 outputs, Adam), a ResNet-20 (CIFAR
stem, 3 stages of 3 blocks, 32x32x3 images, batch / 4) and a ViT (dim 256, depth 8, 4x4 patches of 32x32x3, batch
/ 8), the one-device train step is lowered and compiled and ``memory_analysis().temp_size_in_bytes`` read: XLA's
peak of the buffers live inside the step (activations kept for the backward pass among them). Prints MiB without /
with remat and the ratio (> 1: remat saves memory), then the JSON line. Memory, not time: the figures do not depend
on the machine's load; nothing is run. On XLA:CPU only scanned blocks save memory (nn/remat.py): the MLP's
blocks, written out one after another, show no drop there; read its figure on a GPU or TPU.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax
from absl import app, flags

import timing
from jaxml import models
from jaxml.train import objectives
from jaxml.train import step as step_lib
from jaxml.train.state import TrainState

DEPTH = flags.DEFINE_integer("depth", 16, "MLP blocks")
WIDTH = flags.DEFINE_integer("width", 1024, "MLP width")
BATCH = flags.DEFINE_integer("batch", 512, "MLP batch (the ResNet's is batch / 4)")


def temp_bytes(model, x_shape, num_outputs: int = 10) -> int:
    """Temporary bytes of the compiled one-device Adam train step of ``model`` on f32[x_shape] batches."""
    opt = optax.adam(1e-3)
    params = jax.eval_shape(model.init, jax.random.key(0))
    state = TrainState(jax.ShapeDtypeStruct((), jnp.int32), params, jax.eval_shape(model.init_state),
                       jax.eval_shape(opt.init, params))
    batch = {"x": jax.ShapeDtypeStruct(x_shape, jnp.float32), "y": jax.ShapeDtypeStruct(x_shape[:1], jnp.int32)}
    step = functools.partial(step_lib.make_train_step(model, objectives.get("softmax_xent"), opt),
                             hp=step_lib.Hparams(seed=0))
    return jax.jit(step).lower(state, batch).compile().memory_analysis().temp_size_in_bytes


def remat_pair(name: str, x_shape, **hyper) -> tuple[int, int]:
    """(temp bytes without remat, with remat) of model ``name``."""
    return tuple(temp_bytes(models.get(name, **hyper, remat=r), x_shape) for r in (False, True))


def main(_):
    depth, width, batch = DEPTH.value, WIDTH.value, BATCH.value
    pairs = {f"mlp{depth}x{width}": remat_pair("mlp", (batch, 784), input_shape=(784,), widths=(width,) * depth,
                                               batch_norm=True),
             "resnet20": remat_pair("resnet", (batch // 4, 32, 32, 3), input_shape=(32, 32, 3)),
             "vit8x256": remat_pair("vit", (batch // 8, 32, 32, 3), input_shape=(32, 32, 3), dim=256, depth=8,
                                    heads=8, mlp_dim=512)}
    results, ratios, table = {}, {}, []
    for name, (plain, remat) in pairs.items():
        results[f"{name}_plain"], results[f"{name}_remat"] = plain / 2 ** 20, remat / 2 ** 20
        ratios[f"{name} plain/remat"] = plain / remat
        table += [(f"{name} plain", plain / 2 ** 20, "temp MiB, no remat"),
                  (f"{name} remat", remat / 2 ** 20, "temp MiB, jax.checkpoint per block")]
    timing.emit("remat_memory", "temp MiB", False, results, ratios, table)


if __name__ == "__main__":
    app.run(main)
