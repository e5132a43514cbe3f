"""Convolutional network: a conv/pool/bn/dropout/dense trunk described by a spec, then one dense head
per output (e.g. ``heads={"hour": 12, "minute": 60}`` gives a dict of two outputs, f32[b, 12] and f32[b, 60]).

x: f32[batch, height, width, channels] (NHWC). Convolutions use im2col + matmul on CPU and XLA's
native convolution on GPU/TPU (``conv_impl="auto"``; see nn/layers.conv2d).
"""
from __future__ import annotations

from typing import Sequence

from jaxml.models import sequential
from jaxml.models.base import Model

# The report's digit CNN: Conv(32,3)-Conv(64,3)-BN-Dropout-Conv(64,3)-MaxPool-BN-Flatten-Dense(128)-Dense(10).
REPORT_DIGIT_CNN = ("conv:32:3", "act", "conv:64:3", "act", "bn", "dropout:0.25", "conv:64:3", "act",
                    "maxpool:2", "bn", "flatten", "dense:128", "act")


def make(*, input_shape: Sequence[int], layers: Sequence[str] = REPORT_DIGIT_CNN, num_outputs: int = 10,
         heads: dict[str, int] | None = None, activation: str = "relu", initializer: str = "glorot_uniform",
         conv_impl: str = "auto", conv_padding: str = "SAME", bn_momentum: float = 0.99,
         remat: bool = False) -> Model:
    """A CNN Model (see models/base.py for the contract); ``remat``: see models/sequential.py."""
    if len(tuple(input_shape)) != 3:
        raise ValueError(f"cnn input_shape must be (height, width, channels), got {tuple(input_shape)}")
    return sequential.build("cnn", tuple(layers), input_shape, heads or {"out": num_outputs},
                            activation=activation, initializer=initializer, conv_impl=conv_impl,
                            conv_padding=conv_padding, bn_momentum=bn_momentum, remat=remat)
