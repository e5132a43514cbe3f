"""Extending jaxml from outside the package: a model and a dataset registered from this test file train
through ``train_and_evaluate`` exactly as a hand-written optax loop over the same batches does."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxml import data, models
from jaxml.data import pipeline
from jaxml.models.base import Model
from jaxml.nn import layers
from jaxml.train import config as config_lib
from jaxml.train import train_and_evaluate


def make_linear(*, input_shape, num_outputs=3, initializer="glorot_uniform") -> Model:
    """A linear softmax classifier: logits = flatten(x) @ w + b; params {"dense_0": {"w", "b"}}."""
    features = int(np.prod(input_shape))

    def init(key):
        return {"dense_0": layers.init_dense(key, features, num_outputs, kernel_init=initializer)}

    def apply(params, x, *, state=None, train=False, key=None, axis_name=None):
        return layers.dense(params["dense_0"], x.reshape(x.shape[0], -1)), {}

    return Model(name="linear", init=init, init_state=dict, apply=apply)


def stripes(n=240, seed=0):
    """Three classes told apart by which of three features is largest (linearly separable)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return {"x": x, "y": x.argmax(-1).astype(np.int32)}


def build_stripes(config):
    arrays = stripes()
    return pipeline.Splits(train=pipeline.ArraySource(arrays, config.data.batch_size, seed=config.seed),
                           eval={"test": stripes(120, seed=1)}, input_shape=(3,))


models.register("test_linear", make_linear)
data.register("test_stripes", build_stripes)


def linear_config(steps=60):
    c = config_lib.base_config()
    c.model.name = "test_linear"
    c.model.num_outputs = 3
    c.data.name = "test_stripes"
    c.data.batch_size, c.data.eval_batch_size = 24, 40
    c.optimizer.name, c.optimizer.lr = "sgd", 0.5
    c.train.num_steps, c.train.log_every, c.train.progress_bar = steps, 20, False
    return c


@pytest.mark.slow
def test_registered_model_trains_through_the_loop_like_a_plain_optax_loop(tmp_path):
    config = linear_config()
    final = train_and_evaluate(config, str(tmp_path)).final
    assert final["test"]["accuracy"] > 0.9

    # The same model, batches and optimizer, stepped by hand.
    model = make_linear(input_shape=(3,), num_outputs=3)
    params = model.init(jax.random.key(config.seed))
    opt = optax.sgd(0.5)
    opt_state = opt.init(params)
    source = build_stripes(config).train

    def loss_fn(p, batch):
        logits, _ = model.apply(p, batch["x"])
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()

    for step in range(config.train.num_steps):
        grads = jax.grad(loss_fn)(params, jax.tree.map(jnp.asarray, source.batch(step)))
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
    logits, _ = model.apply(params, jnp.asarray(stripes(120, seed=1)["x"]))
    by_hand = float(np.mean(np.asarray(logits.argmax(-1)) == stripes(120, seed=1)["y"]))
    assert final["test"]["accuracy"] == pytest.approx(by_hand, abs=1e-6)
    assert final["test"]["loss"] == pytest.approx(float(optax.softmax_cross_entropy_with_integer_labels(
        logits, stripes(120, seed=1)["y"]).mean()), rel=1e-4)


def test_from_config_passes_the_input_shape_and_names_bad_fields(tmp_path):
    config = linear_config()
    model = models.from_config(config.model, (3,))
    assert jax.tree.map(jnp.shape, model.init(jax.random.key(0))) == {"dense_0": {"w": (3, 3), "b": (3,)}}
    config.model.depth = 2
    with pytest.raises(config_lib.ConfigError, match="config.model: .*depth"):
        train_and_evaluate(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()                     # nothing written for a bad config
    config = linear_config()
    config.model.name = "no_such_model"
    with pytest.raises(config_lib.ConfigError, match="unknown model 'no_such_model'.*test_linear"):
        config_lib.validate(config)
