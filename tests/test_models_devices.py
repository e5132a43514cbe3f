"""The new models (resnet, transformer, vit, text_gru) train alike on 1 device and on 4 (SingleDevice ==
ShardMapDriver; PmapDriver == SingleDevice, its batch-norm pmean and dropout included: tests/test_parallel.py):
batch-norm statistics averaged over devices, dropout and stochastic-depth masks drawn per global example index,
padded token batches; and a vmapped population of token models trains each member as it would train alone."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxml import models
from jaxml.train import config as config_lib
from jaxml.train import drivers, objectives, optim
from jaxml.train import step as step_lib
from jaxml.train.state import TrainState
from jaxml.tune import population

BATCH = 16


def _tokens(rng, length, vocab):
    lengths = rng.integers(1, length + 1, BATCH)
    ids = rng.integers(1, vocab, (BATCH, length))
    return np.where(np.arange(length)[None] < lengths[:, None], ids, 0).astype(np.int32)


CASES = {   # model, batch of inputs; conv_impl "xla": shard_map refuses the im2col custom VJP (jax 0.10)
    "resnet": (lambda: models.get("resnet", input_shape=(8, 8, 1), stages=(1, 1), widths=(4, 8), num_outputs=3,
                                  conv_impl="xla"),
               lambda rng: rng.normal(size=(BATCH, 8, 8, 1)).astype(np.float32)),
    "vit": (lambda: models.get("vit", input_shape=(8, 8, 1), patch_size=4, dim=8, depth=2, heads=2, mlp_dim=16,
                               num_outputs=3, dropout=0.3, stochastic_depth=0.3),
            lambda rng: rng.normal(size=(BATCH, 8, 8, 1)).astype(np.float32)),
    "transformer": (lambda: models.get("transformer", input_shape=(7,), vocab_size=13, dim=8, depth=1, heads=2,
                                       mlp_dim=16, num_outputs=3, dropout=0.3, stochastic_depth=0.3),
                    lambda rng: _tokens(rng, 7, 13)),
    "text_gru": (lambda: models.get("text_gru", input_shape=(7,), vocab_size=13, embed_dim=6, hidden=(5,),
                                    bidirectional=True, pool="mean", num_outputs=3, dropout=0.3),
                 lambda rng: _tokens(rng, 7, 13)),
}


def _run(name, driver_cls, seed=0, steps=3):
    make_model, make_x = CASES[name]
    model, optimizer = make_model(), optax.sgd(0.3)
    driver = driver_cls(model, objectives.get("softmax_xent"), optimizer, step_lib.Hparams(seed))

    def fresh():
        p = model.init(jax.random.key(1))
        return TrainState(jnp.zeros((), jnp.int32), p, model.init_state(), optimizer.init(p))

    state, rng = driver.init(fresh), np.random.default_rng(5)
    for _ in range(steps):
        state, _ = driver.train_step(state, driver.put({"x": make_x(rng), "y": rng.integers(0, 3, BATCH)}))
    return driver.fetch(state)


def _close(a, b):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, atol=1e-5, rtol=1e-5), a, b)


@pytest.mark.parametrize("name", ["transformer"] + [pytest.param(n, marks=pytest.mark.slow)
                                                    for n in ("vit", "resnet", "text_gru")])
def test_four_devices_train_as_one(name):
    assert jax.device_count() == 4
    one = _run(name, drivers.SingleDevice)
    start = CASES[name][0]().init(jax.random.key(1))
    moved = jax.tree.map(lambda a, b: float(np.abs(np.asarray(a) - np.asarray(b)).max()), one.params, start)
    assert max(jax.tree.leaves(moved)) > 1e-3                                               # it trained
    four = _run(name, drivers.ShardMapDriver)
    _close(four.params, one.params)
    _close(four.model_state, one.model_state)
    if name != "resnet":     # the masks matter: another seed draws other dropout masks and trains differently
        other = _run(name, drivers.SingleDevice, seed=1)
        assert not np.allclose(other.params["head_out"]["w"], one.params["head_out"]["w"], atol=1e-4)


@pytest.mark.parametrize("name", ["transformer", pytest.param("text_gru", marks=pytest.mark.slow)])
def test_vmapped_population_trains_each_member_as_alone(name):
    """2 members (lr, seed: init, dropout masks) of a token model, one shared padded batch per step: 3 vmapped
    population steps == 3 ordinary train steps per member."""
    make_model, make_x = CASES[name]
    model, objective = make_model(), objectives.get("softmax_xent")
    opt_cfg = config_lib.base_config().optimizer
    opt_cfg.name = "momentum"
    lrs, seeds = [0.1, 0.3], [0, 1]
    hp = population.PopulationHparams(jnp.asarray(lrs, jnp.float32), jnp.zeros(2), jnp.zeros(2),
                                      jnp.asarray(seeds, jnp.int32))
    opt = population.member_optimizer(opt_cfg, 100)
    states = population.init_population(model, opt, hp)
    init = jax.device_get(states)
    step = population.make_population_step(model, objective, opt, shared_batch=True, use_l1=False, use_l2=False)
    rng = np.random.default_rng(2)
    batches = [{"x": make_x(rng), "y": rng.integers(0, 3, BATCH)} for _ in range(3)]
    for b in batches:
        states, _ = step(states, hp, b, jnp.ones(2, bool))
    final = jax.device_get(states)
    for i in range(2):
        opt_cfg.lr = lrs[i]
        ref_opt = optim.make_optimizer(opt_cfg, 100)
        ref_step = jax.jit(lambda s, b, o=ref_opt, seed=seeds[i]: step_lib.make_train_step(model, objective, o)(
            s, b, step_lib.Hparams(seed)))
        params = jax.tree.map(lambda a, i=i: a[i], init.params)
        st = TrainState(np.int32(0), params, model.init_state(), ref_opt.init(params))
        for b in batches:
            st, _ = ref_step(st, b)
        _close(jax.tree.map(lambda a, i=i: a[i], final.params), jax.device_get(st.params))
