"""Layers as pairs of plain functions: ``init_*(key, ...) -> params`` and ``*(params, x, ...) -> y``.

Shapes: dense x f32[..., in] -> f32[..., out]; images are NHWC, x f32[batch, height, width, channels];
conv kernels are HWIO f32[kh, kw, in, out].
"""
from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
from jax import lax

from jaxml.nn import im2col, initializers

ConvImpl = Literal["auto", "xla", "im2col"]


# ----------------------------------------------------------------------------- dense
def init_dense(key, in_features: int, out_features: int, *, kernel_init: str = "glorot_uniform",
               bias_init: str = "zeros", dtype=jnp.float32) -> dict:
    """Params ``{"w": f32[in, out], "b": f32[out]}``."""
    kw, kb = jax.random.split(key)
    return {"w": initializers.get(kernel_init)(kw, (in_features, out_features), dtype),
            "b": initializers.get(bias_init)(kb, (out_features,), dtype)}


def dense(params: dict, x: jax.Array) -> jax.Array:
    """y = x @ w + b."""
    return x @ params["w"] + params["b"]


# ----------------------------------------------------------------------------- conv
def init_conv2d(key, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int] = 3, *,
                kernel_init: str = "glorot_uniform", bias_init: str = "zeros", dtype=jnp.float32) -> dict:
    """Params ``{"w": f32[kh, kw, in, out], "b": f32[out]}``."""
    kh, kw_ = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    k1, k2 = jax.random.split(key)
    return {"w": initializers.get(kernel_init)(k1, (kh, kw_, in_channels, out_channels), dtype),
            "b": initializers.get(bias_init)(k2, (out_channels,), dtype)}


def default_conv_impl() -> str:
    """``im2col`` on CPU (XLA's CPU convolution is several times slower than a matmul of patches),
    ``xla`` elsewhere (cuDNN / the TPU convolution units win there)."""
    return "im2col" if jax.default_backend() == "cpu" else "xla"


def _same_pads(size: int, k: int, stride: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def conv2d(params: dict, x: jax.Array, *, stride: int = 1, padding: str = "SAME",
           impl: ConvImpl = "auto") -> jax.Array:
    """2-D cross-correlation, NHWC in and out: y[n,i,j,o] = b[o] + sum_{a,c,ci} x[n, s*i+a, s*j+c, ci] w[a,c,ci,o]
    (x zero-padded by ``padding``: "VALID" none, "SAME" so that ho = ceil(h / s)).

    ``impl="xla"`` calls ``lax.conv_general_dilated``; ``impl="im2col"`` multiplies patch matrices
    (f32[n*ho*wo, kh*kw*in] @ f32[kh*kw*in, out]) built by one gather per chunk of the batch, with a
    backward that is again patch matmuls — several times faster on CPU (see nn/im2col.py; it defines
    reverse-mode derivatives only). Both give the same outputs and gradients (tests/test_nn.py,
    tests/test_conv_speed_paths.py). ``"auto"`` picks by backend (see default_conv_impl).
    """
    w, b = params["w"], params["b"]
    if impl == "auto":
        impl = default_conv_impl()
    if padding not in ("SAME", "VALID"):
        raise ValueError(f"conv2d padding must be 'SAME' or 'VALID', got {padding!r}")
    if impl not in ("xla", "im2col"):
        raise ValueError(f"conv2d impl must be 'auto', 'xla' or 'im2col', got {impl!r}")
    if int(stride) != stride or stride < 1:
        raise ValueError(f"conv2d stride must be a positive int, got {stride!r}")
    stride = int(stride)
    if x.ndim != 4:
        raise ValueError(f"conv2d expects NHWC input f32[batch, height, width, channels], got shape {x.shape}")
    kh, kw_, cin, cout = w.shape
    if x.shape[-1] != cin:
        raise ValueError(f"conv2d: input has {x.shape[-1]} channels, kernel expects {cin} (x.shape={x.shape})")
    if impl == "xla":
        y = lax.conv_general_dilated(x, w, (stride, stride), padding,
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + b
    if padding == "SAME":
        pads = (_same_pads(x.shape[1], kh, stride), _same_pads(x.shape[2], kw_, stride))
    else:
        pads = ((0, 0), (0, 0))
        if x.shape[1] < kh or x.shape[2] < kw_:
            raise ValueError(f"conv2d 'VALID': kernel {kh}x{kw_} is larger than the input {x.shape[1:3]}")
    return im2col.conv(x, w, stride, pads) + b


# ----------------------------------------------------------------------------- pooling, flatten
def max_pool(x: jax.Array, window: int = 2, stride: int | None = None, padding: str = "VALID") -> jax.Array:
    """Max over window x window patches of NHWC x. Non-overlapping windows that tile the image use a
    reshape + max (whose gradient is cheap everywhere); other cases use ``lax.reduce_window``."""
    stride = window if stride is None else stride
    n, h, w, c = x.shape
    if stride == window and padding == "VALID":
        hh, ww = h // window, w // window
        x = x[:, :hh * window, :ww * window, :]
        return x.reshape(n, hh, window, ww, window, c).max(axis=(2, 4))
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, window, window, 1), (1, stride, stride, 1), padding)


def flatten(x: jax.Array) -> jax.Array:
    """f32[batch, ...] -> f32[batch, prod(...)]."""
    return x.reshape(x.shape[0], -1)


# ----------------------------------------------------------------------------- dropout
def dropout(x: jax.Array, rate, *, train: bool, key=None) -> jax.Array:
    """Inverted dropout: in training keep each unit with probability 1 - rate and scale by 1/(1 - rate);
    identity at evaluation. ``rate`` may be a traced scalar (vmapped hyperparameter populations)."""
    if not train:
        return x
    if key is None:
        raise ValueError("dropout in training mode needs a PRNG key (pass key=...)")
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0).astype(x.dtype)


# ----------------------------------------------------------------------------- batch norm
def init_batch_norm(features: int, dtype=jnp.float32) -> tuple[dict, dict]:
    """Returns (params, state): params ``{"scale": 1s, "bias": 0s}``, state ``{"mean": 0s, "var": 1s}``."""
    return ({"scale": jnp.ones((features,), dtype), "bias": jnp.zeros((features,), dtype)},
            {"mean": jnp.zeros((features,), dtype), "var": jnp.ones((features,), dtype)})


def batch_norm(params: dict, state: dict, x: jax.Array, *, train: bool, momentum: float = 0.99,
               eps: float = 1e-3, axis_name: str | None = None) -> tuple[jax.Array, dict]:
    """y = scale * (x - mu) / sqrt(var + eps) + bias over the last (feature) axis.

    Training uses the batch's mean and (biased) variance over all other axes — averaged over devices
    with ``lax.pmean`` when ``axis_name`` names a mapped axis — and returns the running statistics
    updated as ``r <- momentum * r + (1 - momentum) * batch_stat`` (Keras defaults: 0.99, eps 1e-3).
    Evaluation uses the running statistics and returns the state unchanged.
    """
    if train:
        axes = tuple(range(x.ndim - 1))
        mean = jnp.mean(x, axis=axes)
        mean_sq = jnp.mean(jnp.square(x), axis=axes)
        if axis_name is not None:
            mean, mean_sq = lax.pmean((mean, mean_sq), axis_name)
        var = jnp.maximum(mean_sq - jnp.square(mean), 0.0)
        new_state = {"mean": momentum * state["mean"] + (1.0 - momentum) * lax.stop_gradient(mean),
                     "var": momentum * state["var"] + (1.0 - momentum) * lax.stop_gradient(var)}
    else:
        mean, var, new_state = state["mean"], state["var"], state
    y = (x - mean) * lax.rsqrt(var + eps) * params["scale"] + params["bias"]
    return y, new_state
