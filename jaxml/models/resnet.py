"""Residual network of basic blocks (He et al. 2016), NHWC images in, logits out.

    stem:    "cifar"    conv 3x3 (widths[0]) - BN - ReLU                       (CIFAR ResNet-20/32/56, small images)
             "imagenet" conv 7x7 stride 2 - BN - ReLU - max pool 3x3 stride 2  (ResNet-18/34)
    stage s: stages[s] basic blocks of widths[s] channels; the first block of every stage after the first
             has stride 2. Basic block: y = relu(bn(conv3x3(relu(bn(conv3x3_stride(x))))) + shortcut(x)),
             shortcut = x, or bn(conv1x1_stride(x)) (a projection) where the shape changes.
    head:    global average pool - dense(num_outputs)

ResNet-18 is stages (2, 2, 2, 2), widths (64, 128, 256, 512), stem "imagenet"; ResNet-20 is stages (3, 3, 3),
widths (16, 32, 64), stem "cifar". Params are named ``stem``, ``s{i}b{j}`` ({conv1, bn1, conv2, bn2[, proj,
proj_bn]}) and ``head``; every BN has running statistics in the model state (averaged over ``axis_name``
devices in training, so N devices train as one). Convolutions: He-normal kernels, nn/layers.conv2d.
``remat=True`` runs each block under ``jax.checkpoint``, a stage's identical blocks in one scan (nn/remat.py: the
backward pass keeps block inputs only and recomputes the rest; same gradients).
"""
from __future__ import annotations

from typing import Sequence

import jax

from jaxml.models.base import Model
from jaxml.nn import layers, residual
from jaxml.nn import remat as remat_lib

STEMS = ("cifar", "imagenet")


def make(*, input_shape: Sequence[int], stages: Sequence[int] = (3, 3, 3), widths: Sequence[int] = (16, 32, 64),
         stem: str = "cifar", num_outputs: int = 10, bn_momentum: float = 0.9, bn_eps: float = 1e-5,
         conv_impl: str = "auto", remat: bool = False) -> Model:
    """A ResNet Model (see models/base.py for the contract); defaults: ResNet-20."""
    input_shape = tuple(int(s) for s in input_shape)
    stages, widths = tuple(int(s) for s in stages), tuple(int(w) for w in widths)
    if len(input_shape) != 3:
        raise ValueError(f"resnet input_shape must be (height, width, channels), got {input_shape}")
    if not stages or len(stages) != len(widths) or min(stages + widths) <= 0:
        raise ValueError(f"resnet stages {stages} and widths {widths} must be positive and of equal length")
    if stem not in STEMS:
        raise ValueError(f"resnet stem must be one of {STEMS}, got {stem!r}")
    if num_outputs <= 0:
        raise ValueError(f"resnet num_outputs must be positive, got {num_outputs}")
    # (name, in channels, out channels, stride) of every block
    blocks, cin = [], widths[0]
    for s, (n, w) in enumerate(zip(stages, widths)):
        for j in range(n):
            blocks.append((f"s{s}b{j}", cin, w, 2 if (j == 0 and s > 0) else 1))
            cin = w

    def has_proj(ci, co, stride):
        return stride != 1 or ci != co

    def init(key):
        keys = jax.random.split(key, 2 + len(blocks))
        params = {"stem": {"conv": layers.init_conv2d(keys[0], input_shape[2], widths[0], 3 if stem == "cifar" else 7,
                                                      kernel_init="he_normal"),
                           "bn": layers.init_batch_norm(widths[0])[0]}}
        for k, (name, ci, co, stride) in zip(keys[2:], blocks):
            k1, k2, k3 = jax.random.split(k, 3)
            p = {"conv1": layers.init_conv2d(k1, ci, co, 3, kernel_init="he_normal"),
                 "bn1": layers.init_batch_norm(co)[0],
                 "conv2": layers.init_conv2d(k2, co, co, 3, kernel_init="he_normal"),
                 "bn2": layers.init_batch_norm(co)[0]}
            if has_proj(ci, co, stride):
                p["proj"] = layers.init_conv2d(k3, ci, co, 1, kernel_init="he_normal")
                p["proj_bn"] = layers.init_batch_norm(co)[0]
            params[name] = p
        params["head"] = layers.init_dense(keys[1], widths[-1], num_outputs)
        return params

    def init_state():
        state = {"stem": {"bn": layers.init_batch_norm(widths[0])[1]}}
        for name, ci, co, stride in blocks:
            names = ("bn1", "bn2", "proj_bn") if has_proj(ci, co, stride) else ("bn1", "bn2")
            state[name] = {n: layers.init_batch_norm(co)[1] for n in names}
        return state

    def apply(params, x, *, state=None, train=False, key=None, axis_name=None):
        state = init_state() if state is None else state
        if x.shape[1:] != input_shape:
            raise ValueError(f"resnet expects x of shape [batch, *{input_shape}], got {x.shape}")
        new_state = {}

        def conv_bn(p, st, name, bn_name, h, stride):
            h = layers.conv2d(p[name], h, stride=stride, impl=conv_impl)
            h, new = layers.batch_norm(p[bn_name], st[bn_name], h, train=train, momentum=bn_momentum, eps=bn_eps,
                                       axis_name=axis_name)
            return h, new

        out = {}
        h, out["bn"] = conv_bn(params["stem"], state["stem"], "conv", "bn", x, 1 if stem == "cifar" else 2)
        h = jax.nn.relu(h)
        new_state["stem"] = out
        if stem == "imagenet":
            h = layers.max_pool(h, 3, 2, "SAME")
        def block(p, st, h, stride):
            out = {}
            b, out["bn1"] = conv_bn(p, st, "conv1", "bn1", h, stride)
            b, out["bn2"] = conv_bn(p, st, "conv2", "bn2", jax.nn.relu(b), 1)
            shortcut = h
            if "proj" in p:
                shortcut, out["proj_bn"] = conv_bn(p, st, "proj", "proj_bn", h, stride)
            return jax.nn.relu(b + shortcut), out

        h, outs = remat_lib.chain(lambda h, d, stride: block(d[0], d[1], h, stride), h,
                                  [(stride, (params[name], state[name])) for name, _, _, stride in blocks],
                                  remat=remat)
        new_state.update({name: out for (name, *_), out in zip(blocks, outs)})
        return layers.dense(params["head"], residual.global_avg_pool(h)), new_state

    return Model(name="resnet", init=init, init_state=init_state, apply=apply)
