"""2-D convolution as patch matrices and matmuls, fast on CPU: the ``impl="im2col"`` path of layers.conv2d.

Shapes: x f32[n, h, w, cin] (NHWC), w f32[kh, kw, cin, cout] (HWIO), y f32[n, ho, wo, cout].

Forward, for one image: y[i, j] = sum_{a, c} x[s*i + a - ph, s*j + c - pw] @ w[a, c]  (zero outside x)
                                = P @ W,   P f32[ho*wo, kh*kw*cin] the patch matrix, W = w.reshape(kh*kw*cin, cout).
Backward (custom VJP, every heavy step again one matmul of patches):
    dW = P^T @ dy                      f32[kh*kw*cin, cout]   (summed over the batch)
    dx = P_dy @ W_flip                  the "full" convolution of dy with the flipped, transposed kernel:
         dx[p, q] = sum_{a, c} dy[(p + ph - a) / s, (q + pw - c) / s] @ w[a, c]^T
         over the (a, c) where the quotients are whole and inside dy; P_dy gathers those rows of dy.

Why it is fast on XLA:CPU (bench/cnn_step.py compares it with XLA's convolution, flax and PyTorch):
- every patch matrix is built by ONE gather from a constant index table (padding, stride and the
  zero rows of the transposed convolution are out-of-range indices filled with 0), not by kh*kw
  slices plus a concatenation (two extra passes) or ``lax.conv_general_dilated_patches`` (a conv);
- the batch is processed in chunks (``lax.scan``) whose patch matrix is ~``CHUNK_BYTES``: it stays in
  cache instead of being a kh*kw-times-larger array that the step must allocate and page-fault in
  afresh every call (XLA:CPU maps its temporary buffers anew per execution; at 4 KiB a page this
  cost more than the matmuls);
- the backward saves only x (not the patches) and re-gathers them per chunk;
- the weight gradient is computed as dy^T @ P with dy^T materialised (the matmul library takes that
  orientation; XLA would otherwise fold the transpose into a slower generic dot);
- layers whose kh*kw*cin is tiny (a first layer on grey images) use a fused multiply-add over the
  kh*kw shifted views instead of a matmul with a contraction of length 9.

Only reverse-mode differentiation is defined (``jax.custom_vjp``): grad/vjp/vmap/jit/shard_map work,
forward-mode (jvp, jacfwd) does not — use ``impl="xla"`` for that.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxml import parallel

# Target size of one chunk's patch matrix: a few MiB, small enough to stay in cache (chosen with bench/cnn_step.py).
CHUNK_BYTES = 4 << 20
# kh*kw*cin at or below this uses the shifted multiply-add forward instead of a matmul.
SMALL_CONTRACTION = 16

Pads = tuple[tuple[int, int], tuple[int, int]]


def output_size(size: int, k: int, stride: int, pad: tuple[int, int]) -> int:
    return (size + pad[0] + pad[1] - k) // stride + 1


def patch_index(h: int, w: int, kh: int, kw: int, ho: int, wo: int, stride: int, off_h: int, off_w: int,
                dilation: int = 1) -> tuple[np.ndarray, bool]:
    """Row numbers into a flattened f32[h*w, c] image for patch entry (i, j, a, c), in that order.

    The entry reads image row r = (stride*i + a + off_h) / dilation, column q likewise; where r or q is
    not a whole number or falls outside the image the index is h*w (out of range: gathered as 0).
    Returns (int32[ho*wo*kh*kw], all_in_range).
    """
    i = np.arange(ho)[:, None, None, None]
    j = np.arange(wo)[None, :, None, None]
    a = np.arange(kh)[None, None, :, None]
    c = np.arange(kw)[None, None, None, :]
    r, q = stride * i + a + off_h, stride * j + c + off_w
    valid = (r % dilation == 0) & (q % dilation == 0)
    r, q = r // dilation, q // dilation
    valid &= (r >= 0) & (r < h) & (q >= 0) & (q < w)
    idx = np.where(valid, r * w + q, h * w)
    return idx.reshape(-1).astype(np.int32), bool(valid.all())


def _gather_patches(x: jax.Array, idx: np.ndarray, all_in_range: bool, rows_per_image: int) -> jax.Array:
    """f32[n, h, w, c] -> f32[n*rows_per_image, kh*kw*c] by one gather (out-of-range rows are 0)."""
    n, h, w, c = x.shape
    flat = x.reshape(n, h * w, c)
    if all_in_range:
        p = jnp.take(flat, jnp.asarray(idx), axis=1, mode="clip")
    else:
        p = jnp.take(flat, jnp.asarray(idx), axis=1, mode="fill", fill_value=0)
    return p.reshape(n * rows_per_image, -1)


def _chunk_size(n: int, bytes_per_image: int) -> int:
    """The largest divisor of n whose patch matrix fits CHUNK_BYTES (at least 1)."""
    target = max(1, CHUNK_BYTES // max(bytes_per_image, 1))
    return max(d for d in range(1, n + 1) if n % d == 0 and d <= target)


def _scan_chunks(body, carry, xs: tuple, chunk: int):
    """Run body(carry, xs_chunk) -> (carry, out_chunk) over batch chunks; outputs concatenated on axis 0."""
    n = xs[0].shape[0]
    if chunk >= n:
        return body(carry, xs)
    split = tuple(x.reshape((n // chunk, chunk) + x.shape[1:]) for x in xs)
    carry, out = lax.scan(body, carry, split)
    return carry, out.reshape((n,) + out.shape[2:])


def _geometry(x, w, stride, pads):
    kh, kw, cin, cout = w.shape
    n, h, wd, _ = x.shape
    ho, wo = output_size(h, kh, stride, pads[0]), output_size(wd, kw, stride, pads[1])
    # One chunk size for forward and backward, sized by the larger of the two patch matrices, so the
    # chunked view of x is shared between them.
    bytes_per_image = max(ho * wo * kh * kw * cin, h * wd * kh * kw * cout) * x.dtype.itemsize
    return kh, kw, cin, cout, n, h, wd, ho, wo, _chunk_size(n, bytes_per_image) if n else 1


def conv(x: jax.Array, w: jax.Array, stride: int, pads: Pads) -> jax.Array:
    """Cross-correlation of x f32[n, h, w, cin] with w f32[kh, kw, cin, cout], zero padding ``pads``
    ((top, bottom), (left, right)), no bias: f32[n, ho, wo, cout].

    Inside ``jax.shard_map`` the operands are first cast to vary over the same manual axes (``vary_alike``),
    as JAX does implicitly for its own primitives: a custom VJP's cotangents must have their primal's type,
    and dw (a sum over this device's examples) varies wherever x does. Differentiating the cast of an
    invariant w then psums dw over those axes: the all-reduce of data parallelism.
    """
    x, w = parallel.vary_alike(x, w)
    return _conv(x, w, stride, pads)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv(x: jax.Array, w: jax.Array, stride: int, pads: Pads) -> jax.Array:
    """``conv`` on operands of one type (same varying manual axes), with the patch-matmul backward."""
    return _conv_fwd(x, w, stride, pads)[0]


def _conv_fwd(x, w, stride, pads):
    kh, kw, cin, cout, n, h, wd, ho, wo, chunk = _geometry(x, w, stride, pads)
    if kh * kw * cin <= SMALL_CONTRACTION or n == 0:
        xp = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
        y = sum(xp[:, a:a + stride * (ho - 1) + 1:stride, c:c + stride * (wo - 1) + 1:stride, ci:ci + 1] * w[a, c, ci]
                for a in range(kh) for c in range(kw) for ci in range(cin))
        return y.astype(x.dtype), (x, w)
    idx, in_range = patch_index(h, wd, kh, kw, ho, wo, stride, -pads[0][0], -pads[1][0])
    wm = w.reshape(kh * kw * cin, cout)

    def body(carry, xs):
        (xc,) = xs
        return carry, (_gather_patches(xc, idx, in_range, ho * wo) @ wm).reshape(xc.shape[0], ho, wo, cout)

    _, y = _scan_chunks(body, None, (x,), chunk)
    return y, (x, w)


def _conv_bwd(stride, pads, residuals, dy):
    x, w = residuals
    kh, kw, cin, cout, n, h, wd, ho, wo, chunk = _geometry(x, w, stride, pads)
    idx, in_range = patch_index(h, wd, kh, kw, ho, wo, stride, -pads[0][0], -pads[1][0])
    # dx[p] = sum_a dy[(p + ph - a)/s] w[a]^T = sum_a' dy[(p + ph - (kh-1) + a')/s] w[kh-1-a']^T.
    idx_t, in_range_t = patch_index(ho, wo, kh, kw, h, wd, 1, pads[0][0] - (kh - 1), pads[1][0] - (kw - 1),
                                    dilation=stride)
    w_flip = jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2).reshape(kh * kw * cout, cin)

    def body(dw_t, xs):
        xc, dyc = xs
        patches = _gather_patches(xc, idx, in_range, ho * wo)
        # dy^T materialised (barrier) so the product runs in the fast matmul orientation.
        dw_t = dw_t + lax.optimization_barrier(dyc.reshape(-1, cout).T) @ patches
        dxc = _gather_patches(dyc, idx_t, in_range_t, h * wd) @ w_flip
        return dw_t, dxc.reshape(xc.shape)

    if n == 0:
        return jnp.zeros_like(x), jnp.zeros_like(w)
    # zeros_like(w): the accumulator varies over w's manual axes, as the body's sums of per-device products do.
    dw_t, dx = _scan_chunks(body, jnp.zeros_like(w, shape=(cout, kh * kw * cin)), (x, dy), chunk)
    return dx, dw_t.T.reshape(w.shape)


_conv.defvjp(_conv_fwd, _conv_bwd)
