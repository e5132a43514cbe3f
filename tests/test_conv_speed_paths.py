"""The fast CPU convolution (nn/im2col.py) against XLA's convolution and a direct loop: outputs and
gradients for every geometry it handles (stride, padding, kernel shape, the small-contraction first-layer
path, batch chunking), under vmap, and inside the report CNN's training step."""
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxml import models
from jaxml.models.cnn import REPORT_DIGIT_CNN
from jaxml.nn import im2col, layers
from jaxml.train import objectives
from jaxml.train import step as step_lib
from jaxml.train.state import TrainState


def _direct_conv(x, w, b, stride, pads):
    """y[n,i,j,o] = b[o] + sum_{a,c,ci} xpad[n, s*i+a, s*j+c, ci] w[a,c,ci,o] by explicit loops (float64)."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    kh, kw, _, cout = w.shape
    ho = (xp.shape[1] - kh) // stride + 1
    wo = (xp.shape[2] - kw) // stride + 1
    y = np.zeros((x.shape[0], ho, wo, cout))
    for i, j in itertools.product(range(ho), range(wo)):
        window = xp[:, stride * i:stride * i + kh, stride * j:stride * j + kw, :]
        y[:, i, j, :] = np.einsum("nacz,aczo->no", window, w)
    return y + np.asarray(b, np.float64)


GEOMETRIES = [  # (batch, h, w, cin, cout, k, stride, padding)
    (3, 9, 8, 4, 5, 3, 1, "VALID"),
    (3, 9, 8, 4, 5, 3, 1, "SAME"),
    (2, 11, 10, 3, 4, 3, 2, "SAME"),
    (2, 11, 10, 3, 4, 5, 2, "VALID"),
    (4, 9, 12, 2, 3, 4, 2, "SAME"),     # even kernel: asymmetric SAME padding
    (6, 13, 12, 2, 5, 3, 3, "VALID"),   # stride 3 leaves uncovered rows at the end
    (5, 10, 10, 1, 6, 3, 1, "VALID"),   # kh*kw*cin = 9: the shifted multiply-add forward
    (3, 7, 9, 1, 4, 3, 2, "SAME"),      # small contraction with stride and padding
]


def _params(cin, cout, k, seed=0):
    p = layers.init_conv2d(jax.random.key(seed), cin, cout, k)
    p["b"] = jnp.linspace(-0.5, 0.5, cout)
    return p


def _same_pads(size, k, stride):
    """SAME padding as XLA / TensorFlow define it: ceil(size / stride) outputs, the total padding split with the
    extra pixel after."""
    total = max((-(-size // stride) - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


@pytest.mark.slow
@pytest.mark.parametrize("n,h,w,cin,cout,k,stride,padding", GEOMETRIES)
def test_im2col_equals_direct_loop_and_xla_outputs_and_gradients(n, h, w, cin, cout, k, stride, padding):
    p = _params(cin, cout, k)
    x = jax.random.normal(jax.random.key(1), (n, h, w, cin))
    pads = ((_same_pads(h, k, stride), _same_pads(w, k, stride)) if padding == "SAME" else ((0, 0), (0, 0)))
    y_i = layers.conv2d(p, x, stride=stride, padding=padding, impl="im2col")
    y_x = layers.conv2d(p, x, stride=stride, padding=padding, impl="xla")
    np.testing.assert_allclose(y_i, _direct_conv(x, p["w"], p["b"], stride, pads), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y_i, y_x, rtol=1e-5, atol=1e-5)

    def loss(impl):
        return lambda p, x: jnp.sum(jnp.sin(layers.conv2d(p, x, stride=stride, padding=padding, impl=impl)) * y_x)
    g_i = jax.jit(jax.grad(loss("im2col"), argnums=(0, 1)))(p, x)
    g_x = jax.grad(loss("xla"), argnums=(0, 1))(p, x)
    for a, b in zip(jax.tree.leaves(g_i), jax.tree.leaves(g_x)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("chunk_bytes", [1, 3000, 1 << 30])
def test_batch_chunking_does_not_change_results(monkeypatch, chunk_bytes):
    """1 byte: one image per scan step; 3000: a few; 1 GiB: the whole batch in one matmul."""
    p = _params(6, 8, 3)
    x = jax.random.normal(jax.random.key(2), (12, 10, 9, 6))

    def loss(p, x):
        return jnp.sum(jnp.cos(layers.conv2d(p, x, padding="SAME", impl="im2col")))

    ref_y = layers.conv2d(p, x, padding="SAME", impl="xla")
    ref_g = jax.grad(lambda p, x: jnp.sum(jnp.cos(layers.conv2d(p, x, padding="SAME", impl="xla"))), (0, 1))(p, x)
    monkeypatch.setattr(im2col, "CHUNK_BYTES", chunk_bytes)
    np.testing.assert_allclose(layers.conv2d(p, x, padding="SAME", impl="im2col"), ref_y, rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.tree.leaves(jax.grad(loss, (0, 1))(p, x)), jax.tree.leaves(ref_g)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_chunk_size_is_the_largest_divisor_that_fits(monkeypatch):
    monkeypatch.setattr(im2col, "CHUNK_BYTES", 10)
    assert im2col._chunk_size(128, 3) == 2      # 3 fit, 3 does not divide 128
    assert im2col._chunk_size(7, 1) == 7
    assert im2col._chunk_size(7, 2) == 1        # 7 is prime
    assert im2col._chunk_size(12, 100) == 1


def test_patch_index_by_hand():
    # 3x3 image, 2x2 kernel, stride 1, no padding: output 2x2; entry (i, j, a, c) reads pixel (i+a, j+c).
    idx, ok = im2col.patch_index(3, 3, 2, 2, 2, 2, 1, 0, 0)
    assert ok
    np.testing.assert_array_equal(idx.reshape(2, 2, 2, 2)[1, 0], [[3, 4], [6, 7]])
    # SAME padding 1 on top/left: the first patch's first row and column fall outside (index 9 = zero row).
    idx, ok = im2col.patch_index(3, 3, 2, 2, 3, 3, 1, -1, -1)
    assert not ok
    np.testing.assert_array_equal(idx.reshape(3, 3, 2, 2)[0, 0], [[9, 9], [9, 0]])
    # dilation 2 (the transposed convolution of a stride-2 layer): odd offsets have no source row.
    idx, _ = im2col.patch_index(2, 2, 1, 1, 3, 3, 1, 0, 0, dilation=2)
    np.testing.assert_array_equal(idx.reshape(3, 3), [[0, 4, 1], [4, 4, 4], [2, 4, 3]])


@pytest.mark.slow
def test_vmap_over_a_population_of_kernels_equals_a_loop():
    ps = [_params(3, 4, 3, seed=s) for s in range(3)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *ps)
    x = jax.random.normal(jax.random.key(3), (5, 8, 8, 3))
    f = jax.grad(lambda p, x: jnp.sum(jnp.tanh(layers.conv2d(p, x, padding="VALID", impl="im2col"))))
    batched = jax.vmap(f, in_axes=(0, None))(stacked, x)
    for i, p in enumerate(ps):
        for a, b in zip(jax.tree.leaves(jax.tree.map(lambda t: t[i], batched)), jax.tree.leaves(f(p, x))):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_report_cnn_training_step_same_with_both_conv_paths():
    """Two SGD steps of the report's digit CNN (28x28x1, VALID convs, BN, dropout): same loss and params.
    (SGD, not Adam: Adam's first step is lr * sign(g), which rounding flips where a gradient is ~0.)"""
    x = jax.random.uniform(jax.random.key(4), (16, 28, 28, 1))
    y = jax.random.randint(jax.random.key(5), (16,), 0, 10)
    finals = {}
    for impl in ("im2col", "xla"):
        m = models.get("cnn", input_shape=(28, 28, 1), layers=REPORT_DIGIT_CNN, num_outputs=10, conv_impl=impl,
                       conv_padding="VALID")
        opt = optax.sgd(0.1)
        step = jax.jit(functools.partial(step_lib.make_train_step(m, objectives.get("softmax_xent"), opt),
                                         hp=step_lib.Hparams(0)))
        p = m.init(jax.random.key(0))
        s = TrainState(jnp.zeros((), jnp.int32), p, m.init_state(), opt.init(p))
        for _ in range(2):
            s, metrics = step(s, {"x": x, "y": y})
        finals[impl] = (s, metrics)
    (s_i, m_i), (s_x, m_x) = finals["im2col"], finals["xla"]
    np.testing.assert_allclose(m_i["objective"], m_x["objective"], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(s_i.params), jax.tree.leaves(s_x.params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_bad_arguments_are_named():
    p = _params(3, 4, 3)
    with pytest.raises(ValueError, match="stride"):
        layers.conv2d(p, jnp.ones((1, 5, 5, 3)), stride=0, impl="im2col")
    with pytest.raises(ValueError, match="larger than the input"):
        layers.conv2d(p, jnp.ones((1, 2, 5, 3)), padding="VALID", impl="im2col")
    with pytest.raises(ValueError, match="NHWC"):
        layers.conv2d(p, jnp.ones((5, 5, 3)), impl="im2col")
    with pytest.raises(ValueError, match="impl"):
        layers.conv2d(p, jnp.ones((1, 5, 5, 3)), impl="winograd")


def test_forward_mode_is_refused_loudly():
    """The custom VJP defines reverse mode only; jvp must fail, not silently give a wrong tangent."""
    p = _params(3, 4, 3)
    x = jnp.ones((1, 5, 5, 3))
    with pytest.raises(TypeError):
        jax.jvp(lambda x: layers.conv2d(p, x, impl="im2col"), (x,), (x,))
    # XLA's path does support it.
    jax.jvp(lambda x: layers.conv2d(p, x, impl="xla"), (x,), (x,))
