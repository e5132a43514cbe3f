"""Layers: conv paths agree (outputs and gradients), pooling, batch norm, dropout, initializers."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxml.nn import activations, initializers, layers


@pytest.mark.parametrize("stride,padding,k", [(1, "SAME", 3), (2, "SAME", 3), (1, "VALID", 3), (2, "VALID", 5)])
def test_conv_im2col_equals_xla_outputs_and_gradients(stride, padding, k):
    p = layers.init_conv2d(jax.random.key(0), 3, 4, k)
    p["b"] = jnp.arange(4.0) / 10
    x = jax.random.normal(jax.random.key(1), (2, 11, 10, 3))
    y_x = layers.conv2d(p, x, stride=stride, padding=padding, impl="xla")
    y_i = layers.conv2d(p, x, stride=stride, padding=padding, impl="im2col")
    np.testing.assert_allclose(y_i, y_x, atol=1e-5)

    def loss(impl):
        return lambda p, x: jnp.sum(jnp.sin(layers.conv2d(p, x, stride=stride, padding=padding, impl=impl)))

    gx = jax.grad(loss("xla"), argnums=(0, 1))(p, x)
    gi = jax.grad(loss("im2col"), argnums=(0, 1))(p, x)
    for a, b in zip(jax.tree.leaves(gi), jax.tree.leaves(gx)):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_conv_matches_direct_sum():
    p = layers.init_conv2d(jax.random.key(0), 2, 1, 3)
    x = jax.random.normal(jax.random.key(1), (1, 5, 5, 2))
    y = layers.conv2d(p, x, padding="VALID", impl="im2col")
    direct = sum(x[0, 1 + a - 1, 1 + c - 1, ci] * p["w"][a, c, ci, 0]
                 for a in range(3) for c in range(3) for ci in range(2))
    np.testing.assert_allclose(y[0, 0, 0, 0], direct + p["b"][0], rtol=1e-5)


def test_conv_bad_channels_named():
    p = layers.init_conv2d(jax.random.key(0), 3, 4, 3)
    with pytest.raises(ValueError, match="3"):
        layers.conv2d(p, jnp.ones((1, 5, 5, 2)), impl="im2col")


def test_max_pool_reshape_path_equals_reduce_window():
    x = jax.random.normal(jax.random.key(0), (2, 8, 6, 3))
    ref = lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    np.testing.assert_array_equal(layers.max_pool(x, 2), ref)
    g1 = jax.grad(lambda x: layers.max_pool(x, 2).sum())(x)
    g2 = jax.grad(lambda x: lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID").sum())(x)
    np.testing.assert_array_equal(g1, g2)
    assert layers.max_pool(jnp.ones((1, 7, 7, 1)), 2).shape == (1, 3, 3, 1)
    assert layers.max_pool(jnp.ones((1, 7, 7, 1)), 3, stride=2).shape == (1, 3, 3, 1)


def test_batch_norm_train_normalises_and_updates_running_stats():
    params, state = layers.init_batch_norm(3)
    x = jax.random.normal(jax.random.key(0), (64, 3)) * jnp.array([1.0, 2.0, 3.0]) + jnp.array([5.0, -1.0, 0.0])
    y, new = layers.batch_norm(params, state, x, train=True, momentum=0.9, eps=0.0)
    np.testing.assert_allclose(y.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(0), 1.0, atol=1e-4)
    np.testing.assert_allclose(new["mean"], 0.1 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(new["var"], 0.9 + 0.1 * x.var(0), rtol=1e-5)
    y_eval, same = layers.batch_norm(params, new, x, train=False, eps=0.0)
    np.testing.assert_allclose(y_eval, (x - new["mean"]) / jnp.sqrt(new["var"]), rtol=1e-5)
    assert same is new


def test_dropout_scales_kept_units_and_is_identity_in_eval():
    x = jnp.ones((1000, 100))
    y = layers.dropout(x, 0.25, train=True, key=jax.random.key(0))
    kept = np.asarray(y != 0)
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(np.asarray(y)[kept], 1 / 0.75, rtol=1e-6)
    assert layers.dropout(x, 0.25, train=False) is x
    with pytest.raises(ValueError, match="PRNG key"):
        layers.dropout(x, 0.5, train=True)


@pytest.mark.parametrize("name", sorted(initializers.INITIALIZERS))
def test_initializer_statistics(name):
    w = initializers.get(name)(jax.random.key(0), (400, 300), jnp.float32)
    fan_in, fan_out = 400, 300
    expected_std = {"glorot_uniform": np.sqrt(2 / (fan_in + fan_out)), "glorot_normal": np.sqrt(2 / (fan_in + fan_out)),
                    "lecun_uniform": np.sqrt(1 / fan_in), "lecun_normal": np.sqrt(1 / fan_in),
                    "he_uniform": np.sqrt(2 / fan_in), "he_normal": np.sqrt(2 / fan_in),
                    "standard_normal": 1.0, "zeros": 0.0, "orthogonal": np.sqrt(1 / fan_in)}[name]
    assert float(jnp.std(w)) == pytest.approx(expected_std, rel=0.05, abs=1e-7)
    if name == "orthogonal":
        np.testing.assert_allclose(w.T @ w, np.eye(300), atol=1e-4)
    if name.endswith("uniform"):
        assert float(jnp.abs(w).max()) <= expected_std * np.sqrt(3) + 1e-6


def test_activations_values_and_unknown_names():
    x = jnp.array([-1.0, 0.0, 2.0])
    np.testing.assert_allclose(activations.get("sigmoid")(x), 1 / (1 + np.exp(-np.array([-1.0, 0.0, 2.0]))), rtol=1e-6)
    np.testing.assert_array_equal(activations.get("relu")(x), [0, 0, 2])
    np.testing.assert_allclose(activations.get("tanh")(x), np.tanh([-1.0, 0.0, 2.0]), rtol=1e-6)
    np.testing.assert_array_equal(activations.get("linear")(x), x)
    np.testing.assert_allclose(activations.get("softmax")(x).sum(), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="unknown activation 'swishy'"):
        activations.get("swishy")
    with pytest.raises(ValueError, match="unknown initializer"):
        initializers.get("glorot")
