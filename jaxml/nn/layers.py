"""Layers as pairs of plain functions: ``init_*(key, ...) -> params`` and ``*(params, x, ...) -> y``.

Shapes: dense x f32[..., in] -> f32[..., out]; images are NHWC, x f32[batch, height, width, channels];
conv kernels are HWIO f32[kh, kw, in, out].
"""
from __future__ import annotations

import math
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
def _lowbias32(h: jax.Array) -> jax.Array:
    """A bijective uint32 mixer (xorshift-multiply, constants from C. Wellons' hash prospector, bias ~0.17)."""
    h = (h ^ (h >> 16)) * jnp.uint32(0x7FEB352D)
    h = (h ^ (h >> 15)) * jnp.uint32(0x846CA68B)
    return h ^ (h >> 16)


def dropout_keep(key, keep_prob, shape, example_ids=None) -> jax.Array:
    """bool[shape] keep mask for a batch x f32[B, ...]: example b's mask depends only on (key, example_ids[b]).

    With (k0, k1) = key_data(fold_in(key, example_ids[b])) (one threefry call per example) and u the row-major
    index of a unit within the example, keep[b, u] = (H(u) >> 8) < ceil(keep_prob * 2^24) with
    H(u) = lowbias32(lowbias32(u ^ k0) + k1): a 24-bit uniform below keep_prob, so P(keep) = keep_prob up to
    2^-24. Why: the mask of an example is the same wherever it sits (1 device or N, any driver), and two
    integer mixing rounds per unit cost a fraction of a threefry draw of the whole shape (bench/dropout_mask.py).
    ``example_ids`` int[B] defaults to arange(B); ``keep_prob`` may be traced (vmapped populations).
    """
    shape = tuple(shape)
    if len(shape) < 1:
        raise ValueError("dropout needs a leading batch axis: x f32[batch, ...], got a scalar")
    units = math.prod(shape[1:])
    if units >= 2 ** 32:
        raise ValueError(f"dropout: {units} units per example do not fit the uint32 unit counter (shape {shape})")
    if example_ids is None:
        example_ids = jnp.arange(shape[0], dtype=jnp.uint32)
    elif jnp.shape(example_ids) != shape[:1]:
        raise ValueError(f"dropout: example_ids must have shape ({shape[0]},) for x of shape {shape}, "
                         f"got {jnp.shape(example_ids)}")
    keys = jax.vmap(jax.random.fold_in, (None, 0))(key, jnp.asarray(example_ids).astype(jnp.uint32))
    words = jax.random.key_data(keys) if jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key) else keys
    words = words.reshape(shape[0], -1).astype(jnp.uint32)      # [B, 2] (threefry), [B, 4] (rbg: often 2 x 2 alike)
    k = [words[:, 0], words[:, 1 % words.shape[1]]]
    for i in range(2, words.shape[1]):                           # mixed in, never xor-ed (equal words would cancel)
        k[i % 2] = _lowbias32(k[i % 2] + words[:, i])
    k0, k1 = k
    per_example = (shape[0],) + (1,) * (len(shape) - 1)
    u = lax.iota(jnp.uint32, units).reshape(shape[1:])
    h = _lowbias32(_lowbias32(u ^ k0.reshape(per_example)) + k1.reshape(per_example))
    threshold = jnp.ceil(jnp.asarray(keep_prob, jnp.float32) * 2.0 ** 24).astype(jnp.uint32)
    return (h >> 8) < threshold


def dropout(x: jax.Array, rate, *, train: bool, key=None, example_ids=None) -> jax.Array:
    """Inverted dropout: in training keep each unit with probability 1 - rate and scale it by 1/(1 - rate);
    identity at evaluation. x f32[batch, ...]; the mask of example b is a function of (key, example_ids[b])
    alone (``dropout_keep``), so passing each example's index in the global batch makes training independent
    of how the batch is split over devices. ``rate`` may be a traced scalar (vmapped hyperparameter populations)."""
    if not train:
        return x
    if key is None:
        raise ValueError("dropout in training mode needs a PRNG key (pass key=...)")
    keep = dropout_keep(key, 1.0 - rate, x.shape, example_ids)
    return jnp.where(keep, x * (1.0 / (1.0 - rate)), 0.0).astype(x.dtype)


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
    Evaluation uses the running statistics and returns the state unchanged. Statistics and normalisation are
    computed in float32 whatever x's dtype (mixed precision, jaxml/train/precision.py); y has x's dtype.
    """
    dtype, x = x.dtype, x.astype(jnp.float32)
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
    y = (x - mean) * lax.rsqrt(var + eps) * params["scale"].astype(x.dtype) + params["bias"].astype(x.dtype)
    return y.astype(dtype), new_state
