"""The train and eval steps hand a batch's ``lengths`` to the text models that take them: on a padded batch the
given lengths train and evaluate exactly as the lengths the models derive from padding id 0, and a review in which
token id 0 occurs before its end is read to its given length, not cut at that token."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxml import models
from jaxml.train import objectives
from jaxml.train import step as step_lib
from jaxml.train.state import TrainState

LENGTHS = np.array([7, 3, 5, 1], np.int32)
MODELS = {
    "text_gru": lambda: models.get("text_gru", input_shape=(7,), vocab_size=11, embed_dim=4, hidden=(5,),
                                   bidirectional=True, pool="mean", num_outputs=2),
    "transformer": lambda: models.get("transformer", input_shape=(7,), vocab_size=11, dim=8, depth=1, heads=2,
                                      mlp_dim=8, num_outputs=2),
}


def _batch(x, lengths=None):
    b = {"x": jnp.asarray(x), "y": jnp.asarray([0, 1, 1, 0], jnp.int32), "mask": jnp.ones((4,), jnp.float32)}
    return b if lengths is None else {**b, "lengths": jnp.asarray(lengths)}


def _padded_tokens():
    ids = np.random.default_rng(0).integers(1, 11, (4, 7))
    return np.where(np.arange(7)[None] < LENGTHS[:, None], ids, 0).astype(np.int32)


def _params(model):
    """Random weights everywhere (a zero-initialised head would give equal logits for any reading); one jitted
    program, not an eager op per parameter."""
    def draw():
        leaves, tree = jax.tree.flatten(model.init(jax.random.key(0)))
        keys = jax.random.split(jax.random.key(1), len(leaves))
        return tree.unflatten([p + 0.5 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)])
    return jax.jit(draw)()


def _run(model, batch):
    """(eval metric sums, train metric sums, params after one Adam step) on ``batch``."""
    obj = objectives.get("softmax_xent")
    opt = optax.adam(0.1)
    params = _params(model)
    state = TrainState(jnp.zeros((), jnp.int32), params, model.init_state(), opt.init(params))
    ev = jax.jit(step_lib.make_eval_step(model, obj))(params, state.model_state, batch)
    new, tr = jax.jit(step_lib.make_train_step(model, obj, opt))(state, batch, step_lib.Hparams(seed=0))
    return ev, tr, new.params


@pytest.mark.parametrize("name", sorted(MODELS))
def test_given_lengths_equal_lengths_derived_from_padding(name):
    model = MODELS[name]()
    x = _padded_tokens()
    given, derived = _run(model, _batch(x, LENGTHS)), _run(model, _batch(x))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6), given, derived)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_padding_id_inside_a_review_is_read_to_its_given_length(name):
    model = MODELS[name]()
    x = _padded_tokens()
    x[0, 2] = 0                                     # review 0 (length 7) holds the padding id at position 2
    params = _params(model)
    apply = jax.jit(lambda p, x, **kw: model.apply(p, x, **kw)[0])
    want = apply(params, jnp.asarray(x), lengths=jnp.asarray(LENGTHS))
    cut = apply(params, jnp.asarray(x))             # lengths from padding: the transformer masks that token
    assert not np.allclose(want[0], cut[0], atol=1e-4)   # so this batch tells the two apart
    ev, _, _ = _run(model, _batch(x, LENGTHS))
    logp = jax.nn.log_softmax(want)
    want_loss = -float(jnp.sum(logp[jnp.arange(4), jnp.asarray([0, 1, 1, 0])]))
    np.testing.assert_allclose(float(ev["loss"]), want_loss, rtol=1e-5)


def test_a_model_without_lengths_ignores_them():
    model = models.get("mlp", input_shape=(7,), widths=(3,), num_outputs=2)
    x = np.random.default_rng(1).normal(size=(4, 7)).astype(np.float32)
    with_lengths, without = _run(model, _batch(x, LENGTHS)), _run(model, _batch(x))
    jax.tree.map(np.testing.assert_array_equal, with_lengths, without)
