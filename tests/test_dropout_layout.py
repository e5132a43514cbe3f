"""Dropout masks that depend on (seed, step, layer, global example index) only: the keep rate and scaling,
masks of different examples / layers / steps / units uncorrelated, an example's mask the same wherever it
sits in the batch, and training with dropout equal on 1 device and 4 (none == shard_map == pmap), also when
a run is resumed under another driver."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxml import data
from jaxml.models import cnn, mlp
from jaxml.nn import layers
from jaxml.tasks import toy  # noqa: F401  (registers the blobs dataset)
from jaxml.train import config as config_lib
from jaxml.train import drivers, loop, objectives, train_and_evaluate
from jaxml.train import step as step_lib
from jaxml.train.state import TrainState

KEY = jax.random.key(0)


_keep = jax.jit(layers.dropout_keep, static_argnums=2)
_dropout = jax.jit(layers.dropout, static_argnames="train")


def keep(key, p, shape, ids=None):
    return np.asarray(_keep(key, p, tuple(shape), ids))


# ----------------------------------------------------------------------------- the mask itself
@pytest.mark.parametrize("p", [0.1, 0.25, 0.5, 0.75, 0.9])
def test_keep_rate_within_binomial_tolerance(p):
    m = keep(KEY, p, (512, 16, 16))
    n = m.size
    assert abs(m.mean() - p) < 5 * np.sqrt(p * (1 - p) / n)
    # No unit position and no example is favoured: per-column / per-row counts are binomial (chi-square ~ dof).
    for counts, trials in ((m.reshape(512, -1).sum(0), 512), (m.reshape(512, -1).sum(1), 256)):
        chi2 = np.sum((counts - trials * p) ** 2 / (trials * p * (1 - p)))
        dof = counts.size
        assert abs(chi2 - dof) < 5 * np.sqrt(2 * dof), (chi2, dof)


@pytest.mark.parametrize("impl", ["threefry2x32", "rbg", "unsafe_rbg"])
def test_any_key_implementation_gives_sound_masks(impl):
    """An rbg key's 4 words come as two equal pairs after fold_in: they must not cancel (all examples alike)."""
    m = keep(jax.random.key(5, impl=impl), 0.7, (512, 100))
    assert abs(m.mean() - 0.7) < 5 * np.sqrt(0.21 / m.size)
    r, n = _corr(m[:-1], m[1:])
    assert abs(r) < 5 / np.sqrt(n)


def test_dropout_scales_kept_units_and_zeroes_the_rest():
    x = jax.random.normal(jax.random.key(1), (64, 5, 5, 3))
    for rate in (0.0, 0.25, 0.6):
        y = np.asarray(_dropout(x, rate, train=True, key=KEY))
        kept = keep(KEY, 1 - rate, x.shape)
        np.testing.assert_allclose(y[kept], np.asarray(x)[kept] / (1 - rate), rtol=1e-6)
        assert np.all(y[~kept] == 0)
    assert keep(KEY, 1.0, (8, 100)).all()                                # rate 0: every unit kept
    assert layers.dropout(x, 0.3, train=False) is x
    # The rate as a traced value (above, under jit, as in a vmapped population) or a Python constant: one mask.
    np.testing.assert_array_equal(_dropout(x, 0.25, train=True, key=KEY), layers.dropout(x, 0.25, train=True, key=KEY))


def _corr(a, b):
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return np.corrcoef(a, b)[0, 1], a.size


@pytest.mark.parametrize("p", [0.5, 0.9])
def test_masks_of_examples_layers_steps_and_units_are_uncorrelated(p):
    shape = (256, 12, 12, 8)
    base = keep(KEY, p, shape)
    pairs = {
        "adjacent examples": (base[:-1], base[1:]),
        "examples 128 apart": (base[:128], base[128:]),
        "adjacent units": (base[..., :-1], base[..., 1:]),
        "neighbouring pixels": (base[:, :, :-1], base[:, :, 1:]),
        "layers": (keep(jax.random.fold_in(KEY, 2), p, shape), keep(jax.random.fold_in(KEY, 3), p, shape)),
        "steps": (base, keep(jax.random.fold_in(jax.random.key(0), 1), p, shape)),
        "seeds": (base, keep(jax.random.key(1), p, shape)),
    }
    for name, (a, b) in pairs.items():
        r, n = _corr(a, b)
        assert abs(r) < 5 / np.sqrt(n), (name, r)


def test_an_examples_mask_depends_on_its_index_not_its_position():
    shape = (16, 7, 3)
    whole = keep(KEY, 0.5, shape)
    np.testing.assert_array_equal(keep(KEY, 0.5, (4,) + shape[1:], jnp.arange(8, 12)), whole[8:12])
    perm = np.random.default_rng(0).permutation(16)
    np.testing.assert_array_equal(keep(KEY, 0.5, shape, jnp.asarray(perm)), whole[perm])
    assert not np.array_equal(whole[0], whole[1])
    with pytest.raises(ValueError, match="example_ids must have shape"):
        layers.dropout_keep(KEY, 0.5, shape, jnp.arange(15))


# ----------------------------------------------------------------------------- training under every driver
CNN_SPEC = ("conv:4:3", "act", "dropout:0.5", "conv:6:3:2", "act", "bn", "flatten", "dense:8", "act", "dropout:0.3")


def _models():
    # conv_impl "xla": the im2col path's custom VJP is refused inside shard_map (jax 0.10 manual-axis check)
    return {"mlp": (mlp.make(input_shape=(6,), widths=(16, 8), batch_norm=True, dropout=0.4, num_outputs=3), (6,)),
            "cnn": (cnn.make(input_shape=(8, 8, 1), layers=CNN_SPEC, num_outputs=3, conv_impl="xla"), (8, 8, 1))}


def _train(name, driver_cls, seed=0, steps=3):
    model, shape = _models()[name]
    optimizer = optax.sgd(0.2)
    driver = driver_cls(model, objectives.get("softmax_xent"), optimizer, step_lib.Hparams(seed))

    def make_state():
        params = model.init(jax.random.key(0))
        return TrainState(jnp.zeros((), jnp.int32), params, model.init_state(), optimizer.init(params))

    state = driver.init(make_state)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        batch = {"x": rng.normal(size=(16,) + shape).astype(np.float32), "y": rng.integers(0, 3, 16)}
        state, _ = driver.train_step(state, driver.put(batch))
    return driver.fetch(state)


@pytest.mark.parametrize("name", ["mlp", pytest.param("cnn", marks=pytest.mark.slow)])
def test_dropout_trains_alike_on_1_and_4_devices(name):
    """Dropout (on conv activations too) and batch norm: none (1 device) == shard_map == pmap (4 devices)."""
    assert jax.device_count() == 4
    one = _train(name, drivers.SingleDevice)
    for cls in (drivers.ShardMapDriver, drivers.PmapDriver):
        four = _train(name, cls)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5), four.params, one.params)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5),
                     four.model_state, one.model_state)
    if name == "cnn":   # the masks matter: another seed (same init, same batches, other masks) trains differently
        other = _train(name, drivers.SingleDevice, seed=1)
        assert not np.allclose(other.params["conv_0"]["w"], one.params["conv_0"]["w"], atol=1e-4)


def mlp_config(backend, num_steps=20):
    c = config_lib.base_config()
    c.model.name = "mlp"
    c.model.widths = (32, 16)
    c.model.dropout = 0.3
    c.data.name = "blobs"
    c.data.batch_size = 64
    c.data.eval_batch_size = 64
    c.optimizer.name = "sgd"
    c.optimizer.lr = 0.05
    c.train.num_steps = num_steps
    c.train.log_every = 10
    c.train.progress_bar = False
    c.parallel.backend = backend
    return c


def _params(workdir, config):
    _, driver, state = loop.restore_trained(config, workdir, data.build(config).input_shape)
    return driver.fetch(state).params


@pytest.mark.slow
def test_resume_under_another_driver_continues_the_same_stream(tmp_path):
    """8 steps under shard_map, checkpoint, 12 more under pmap == 20 uninterrupted steps on one device
    (and == 20 under shard_map); the end-to-end run with model.dropout set."""
    full = mlp_config("none")
    train_and_evaluate(full, str(tmp_path / "none"))
    ref = _params(str(tmp_path / "none"), full)
    sharded = mlp_config("shard_map")
    train_and_evaluate(sharded, str(tmp_path / "shard_map"))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5),
                 _params(str(tmp_path / "shard_map"), sharded), ref)
    wd = str(tmp_path / "switched")
    train_and_evaluate(mlp_config("shard_map", num_steps=8), wd)
    resumed = mlp_config("pmap")
    train_and_evaluate(resumed, wd, allow_config_change=("train.num_steps", "parallel.backend"))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5), _params(wd, resumed), ref)
