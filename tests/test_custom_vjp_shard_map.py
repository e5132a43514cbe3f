"""jaxml's custom VJPs inside ``jax.shard_map`` on 4 fake CPU devices: the im2col convolution's and the GRU
recurrence's gradients equal the one-device ones whichever operand varies over the mesh axis, and a CNN and a GRU
trained under backend none, shard_map and pmap reach the same parameters."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

import jaxml
from jaxml import parallel
from jaxml.models import gru
from jaxml.nn import im2col, layers
from jaxml.tasks.toy import gaussian_blobs
from jaxml.train import fit

AXIS = parallel.DATA_AXIS


def _loss(p, x):
    return jnp.sum(jnp.sin(layers.conv2d(p, x, padding="SAME", impl="im2col")) * jnp.linspace(-1.0, 1.0, x.shape[1])
                   [None, :, None, None])


# cin 1: the shifted multiply-add forward (kh*kw*cin = 9); 3: a matmul. chunk_bytes 1: one image per scan step.
@pytest.mark.parametrize("cin,chunk_bytes", [(1, im2col.CHUNK_BYTES), (3, im2col.CHUNK_BYTES), (3, 1)])
def test_data_parallel_gradient_equals_one_device(monkeypatch, cin, chunk_bytes):
    """Replicated params, batch sharded over 4 devices, loss psummed before differentiation (the shard_map
    step's rule): the gradient is the one-device gradient of the whole batch, here through XLA's conv."""
    monkeypatch.setattr(im2col, "CHUNK_BYTES", chunk_bytes)
    p = layers.init_conv2d(jax.random.key(0), cin, 5, 3)
    x = jax.random.normal(jax.random.key(1), (8, 6, 7, cin))
    per_device = jax.grad(lambda p, x: jax.lax.psum(_loss(p, x), AXIS), argnums=(0, 1))
    grad = jax.jit(jax.shard_map(per_device, mesh=parallel.data_mesh(), in_specs=(P(), P(AXIS)),
                                 out_specs=(P(), P(AXIS))))
    got = grad(p, x)
    want = jax.grad(lambda p, x: jnp.sum(jnp.sin(layers.conv2d(p, x, padding="SAME", impl="xla"))
                                         * jnp.linspace(-1.0, 1.0, x.shape[1])[None, :, None, None]),
                    argnums=(0, 1))(p, x)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), got, want)


@pytest.mark.slow
def test_kernel_sharded_input_replicated_gradient_equals_one_device():
    """The other orientation: x replicated, the kernel's output channels split over the devices, so dx (a sum
    over every device's channels) must be psummed — the cast of x to varying is what differentiates to it."""
    p = layers.init_conv2d(jax.random.key(2), 3, 8, 3)
    x = jax.random.normal(jax.random.key(3), (2, 5, 6, 3))
    specs = {"w": P(None, None, None, AXIS), "b": P(AXIS)}
    per_device = jax.grad(lambda p, x: jax.lax.psum(_loss(p, x), AXIS), argnums=(0, 1))
    grad = jax.jit(jax.shard_map(per_device, mesh=parallel.data_mesh(), in_specs=(specs, P()),
                                 out_specs=(specs, P())))
    want = jax.grad(lambda p, x: jnp.sum(jnp.sin(layers.conv2d(p, x, padding="SAME", impl="xla"))
                                         * jnp.linspace(-1.0, 1.0, x.shape[1])[None, :, None, None]),
                    argnums=(0, 1))(p, x)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), grad(p, x), want)


def test_vary_alike_casts_only_what_differs():
    def body(a, b):
        a2, b2 = parallel.vary_alike(a, b)
        assert jax.typeof(a2).manual_axis_type.varying == {AXIS} == jax.typeof(b2).manual_axis_type.varying
        assert a2 is a                                      # already varying: untouched
        return a2 + b2
    jax.shard_map(body, mesh=parallel.data_mesh(), in_specs=(P(AXIS), P()), out_specs=P(AXIS))(
        jnp.ones(4), jnp.ones(1))
    x = jnp.ones(3)
    assert parallel.vary_alike(x, x)[0] is x                  # outside shard_map: a no-op


@pytest.mark.slow
@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_data_parallel_gradient_equals_one_device(reset_after):
    """The GRU layer (reset_after: the custom-VJP recurrence; reset_before: a plain scan whose zero initial
    state must vary like the batch) under shard_map: the gradient of replicated params is the one-device one."""
    p = gru.init_layer(jax.random.key(4), 3, 5)
    x = jax.random.normal(jax.random.key(5), (8, 6, 3))

    def loss(p, x):
        _, hs = gru.scan(p, x, reset_after=reset_after)
        return jnp.sum(jnp.sin(hs) * jnp.linspace(-1.0, 1.0, x.shape[1])[None, :, None])
    per_device = jax.grad(lambda p, x: jax.lax.psum(loss(p, x), AXIS), argnums=(0, 1))
    got = jax.jit(jax.shard_map(per_device, mesh=parallel.data_mesh(), in_specs=(P(), P(AXIS)),
                                out_specs=(P(), P(AXIS))))(p, x)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), got,
                 jax.grad(loss, argnums=(0, 1))(p, x))


# A tiny CNN on the toy blobs reshaped to 6x6x2 images: two im2col convolutions (one on each forward path) and BN.
BLOBS = gaussian_blobs(0, 96, num_classes=3, features=72)
IMAGES = {"train": (BLOBS["x"][:64].reshape(-1, 6, 6, 2), BLOBS["y"][:64]),
          "test": (BLOBS["x"][64:].reshape(-1, 6, 6, 2), BLOBS["y"][64:])}


def cnn_config(backend):
    c = jaxml.train.base_config()
    c.model.name, c.model.num_outputs, c.model.conv_impl = "cnn", 3, "im2col"
    c.model.layers = ("conv:4:3", "act", "bn", "conv:6:3", "act", "flatten")
    c.data.batch_size, c.data.eval_batch_size = 16, 32
    c.optimizer.name, c.optimizer.lr = "sgd", 0.05            # Adam would amplify rounding
    c.train.update({"num_steps": 4, "log_every": 100, "progress_bar": False})
    c.parallel.backend = backend
    return c


@pytest.mark.slow
def test_cnn_trains_the_same_under_every_backend():
    assert jax.device_count() == 4
    runs = {b: fit(cnn_config(b), data=IMAGES) for b in ("none", "shard_map", "pmap")}
    for backend in ("shard_map", "pmap"):
        for got, want in ((runs[backend].params, runs["none"].params),
                          (runs[backend].model_state, runs["none"].model_state)):      # BN statistics
            jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), got, want)
    moved = jax.tree.map(lambda a, b: np.abs(a - b).max(), runs["none"].model_state,
                         runs["none"].model.init_state())
    assert min(jax.tree.leaves(moved)) > 1e-4                # the steps ran: every BN statistic moved
