"""The training loop: learning, resume == uninterrupted, NaN guard, early stopping, no retrace,
config validation, metrics.jsonl conventions."""
import functools
import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxml import data, models
from jaxml.data import pipeline
from jaxml.models import mlp
from jaxml.tasks import toy
from jaxml.train import config as config_lib
from jaxml.train import drivers, gspmd, loop, objectives, train_and_evaluate
from jaxml.train import state as state_lib
from jaxml.train import step as step_lib
from jaxml.train.state import TrainState, params_sha256
from jaxml.tune import population
from tests import helpers


def blobs_config(**train):
    return helpers.blobs_config(data={"eval_batch_size": 100}, optimizer={"lr": 0.01},
                                **{"num_epochs": 3, "log_every": 8, **train})


def records(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_blobs_mlp_learns_and_logs_conventions(tmp_path):
    final = train_and_evaluate(blobs_config(), str(tmp_path)).final
    assert final["test"]["accuracy"] > 0.95
    recs = records(tmp_path)
    assert all({"step", "split"} <= set(r) for r in recs)
    assert recs[-1]["split"] == "test" and len(recs[-1]["params_sha256"]) == 64
    train_losses = [r["loss"] for r in recs if r["split"] == "train" and "loss" in r]
    assert train_losses[-1] < train_losses[0] / 3
    assert os.path.isdir(tmp_path / "tb" / "train")
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["96"]     # 3 epochs x 32 steps, saved at the end
    # A finished run restores for scoring: the final params, bit for bit.
    splits = data.build(blobs_config())
    _, driver, state = loop.restore_trained(blobs_config(), str(tmp_path), splits.input_shape)
    assert int(state.step) == 96 and params_sha256(state.params) == recs[-1]["params_sha256"]
    assert loop.evaluate(driver, state, splits.eval["test"], 100) == pytest.approx(
        {k: v for k, v in final["test"].items() if k not in ("step", "split", "params_sha256")})
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        loop.restore_trained(blobs_config(), str(tmp_path / "never_trained"), (2,))


@pytest.mark.slow
def test_resume_equals_uninterrupted(tmp_path):
    """Stop after 40 of 96 steps (a checkpoint at 40), restart: same params bits and same log."""
    full = train_and_evaluate(blobs_config(checkpoint_every=20), str(tmp_path / "full")).final
    part = blobs_config(checkpoint_every=20, num_steps=40)
    train_and_evaluate(part, str(tmp_path / "resumed"))
    resumed = train_and_evaluate(blobs_config(checkpoint_every=20), str(tmp_path / "resumed"),
                                 allow_config_change=("train.num_steps",)).final   # the run is extended to 96 steps
    assert resumed["test"]["params_sha256"] == full["test"]["params_sha256"]
    train_full = [r for r in records(tmp_path / "full") if r["split"] == "train"]
    train_res = [r for r in records(tmp_path / "resumed") if r["split"] == "train" and r["step"] > 40]
    for a, b in zip([r for r in train_full if r["step"] > 40], train_res):
        assert a["loss"] == b["loss"]


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    arrays = {"x": np.ones((64, 2), np.float32), "y": np.zeros((64, 1), np.float32)}   # the outputs' shape
    arrays["x"][25] = np.nan

    def nan_data(config):
        return pipeline.Splits(train=pipeline.ArraySource(arrays, 1, shuffle=False), eval={}, input_shape=(2,))

    data.register("nan_at_25", nan_data)
    c = blobs_config(checkpoint_every=10, num_epochs=1, log_every=100)
    c.data.name, c.data.batch_size, c.objective = "nan_at_25", 1, "mse"
    c.model.num_outputs = 1
    with pytest.raises(FloatingPointError, match=r"non-finite loss .* by step 30.*step 20"):
        train_and_evaluate(c, str(tmp_path))
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["10", "20"]


@pytest.mark.slow
def test_early_stopping_stops_after_patience(tmp_path):
    c = blobs_config(num_epochs=50, eval_every=4, eval_splits=("test",))
    c.train.early_stopping.update(metric="loss", split="test", patience=2, min_delta=10.0)
    train_and_evaluate(c, str(tmp_path))
    recs = records(tmp_path)
    assert recs[-1]["step"] == 12                                     # evals at 4 (best), 8, 12 -> stop
    assert any(r.get("early_stopped") == 1.0 for r in recs)


def test_train_step_does_not_retrace():
    m = mlp.make(input_shape=(8,), widths=(16,), batch_norm=True, dropout=0.1)
    opt = optax.adam(1e-3)
    raw = step_lib.make_train_step(m, objectives.get("softmax_xent"), opt)

    def one_run_step(state, batch):
        return raw(state, batch, step_lib.Hparams(0))
    traced = jax.jit(chex.assert_max_traces(one_run_step, n=1))
    p = m.init(jax.random.key(0))
    state = TrainState(jnp.zeros((), jnp.int32), p, m.init_state(), opt.init(p))
    blobs = toy.gaussian_blobs(0, 96)
    for i in range(3):
        state, sums = traced(state, {k: v[32 * i:32 * (i + 1)] for k, v in blobs.items()})
    assert int(state.step) == 3 and float(sums["n"]) == 32


def test_params_sha256_is_order_and_value_sensitive():
    p = {"a": {"w": jnp.ones(3)}, "b": {"w": jnp.zeros(2)}}
    assert params_sha256(p) == params_sha256({"b": {"w": jnp.zeros(2)}, "a": {"w": jnp.ones(3)}})
    assert params_sha256(p) != params_sha256({"a": {"w": jnp.ones(3)}, "b": {"w": jnp.array([0.0, 1e-30])}})


@pytest.mark.parametrize("field,value,match", [
    ("model.name", "no_such_model", "config.model.name: unknown model"),
    ("optimizer.name", "lion9", "config.optimizer.name: unknown optimizer"),
    ("optimizer.lr", -0.1, "config.optimizer.lr must be > 0"),
    ("data.batch_size", 0, "config.data.batch_size must be > 0"),
    ("data.name", "imagenet", "config.data.name: unknown dataset"),
    ("regularization.l2", -1.0, "config.regularization.l2 must be >= 0"),
    ("objective", "hinge", "config.objective: unknown objective"),
])
def test_config_validation_names_the_field(tmp_path, field, value, match):
    c = blobs_config()
    section, _, key = field.rpartition(".")
    (c[section] if section else c)[key] = value
    with pytest.raises(config_lib.ConfigError, match=match):
        train_and_evaluate(c, str(tmp_path / "w"))
    assert not os.path.exists(tmp_path / "w")                        # nothing written before validation


def test_batch_must_divide_device_count():
    c = blobs_config()
    c.parallel.backend = "shard_map"
    c.data.batch_size = 30
    with pytest.raises(config_lib.ConfigError, match="config.data.batch_size=30 is not divisible by the 4 devices"):
        config_lib.validate(c, num_devices=4)


def test_every_driver_satisfies_the_driver_protocol():
    """Single device, shard_map, pmap, the GSPMD jit driver and the vmapped population all offer what the loop
    calls (``drivers.Driver``); an object lacking one of its members does not pass for a driver."""
    m = mlp.make(input_shape=(8,), widths=(16,))
    objective, opt = objectives.get("softmax_xent"), optax.sgd(0.1)
    hp = population.PopulationHparams(jnp.asarray([0.1, 0.2]), jnp.zeros(2), jnp.zeros(2), jnp.asarray([0, 1]))
    pop_opt = population.member_optimizer(config_lib.base_config().optimizer, 10)
    found = [drivers.SingleDevice(m, objective, opt, step_lib.Hparams(0)),
             drivers.ShardMapDriver(m, objective, opt, step_lib.Hparams(0)),
             drivers.PmapDriver(m, objective, opt, step_lib.Hparams(0)),
             gspmd.JitDriver(m, objective, opt, step_lib.Hparams(0), mesh_axes={"data": 2, "fsdp": 2}),
             population.PopulationDriver(m, objective, pop_opt, hp, shared_batch=True)]
    for driver in found:
        assert isinstance(driver, drivers.Driver), type(driver).__name__
        assert driver.active.all() and driver.shard == (0, 1)
    assert [d.n_members for d in found] == [None, None, None, None, 2]
    states = found[-1].init()
    assert params_sha256(found[-1].to_saveable(states)) == params_sha256(population.init_population(m, pop_opt, hp))
    assert found[-1].from_saveable(states) is states

    class NoRestore:
        shard, n_members, active = (0, 1), None, np.ones(1, bool)
        init = train_step = eval_step = put = fetch = to_saveable = staticmethod(lambda *a: None)
    assert not isinstance(NoRestore(), drivers.Driver)


def test_an_auto_budget_trains_one_epoch_in_train_and_evaluate(tmp_path):
    """``base_config()``'s budget (num_steps = num_epochs = 0) is one epoch for the launchers (the shipped configs
    all set theirs); ``fit`` sizes it to the data instead (tests/test_fit.py)."""
    assert (config_lib.base_config().train.num_steps, config_lib.base_config().train.num_epochs) == (0, 0)
    run = train_and_evaluate(blobs_config(num_epochs=0, log_every=100))
    assert run.step == 32 == data.build(blobs_config()).train.steps_per_epoch       # 1,024 blobs / 32 a batch


RUN_ONCE_MODELS = {   # every kind of init the registered models draw: dense, conv, batch norm, attention, GRU, embeds
    "mlp": lambda: models.get("mlp", input_shape=(28, 28, 1), widths=(300, 100), num_outputs=10, batch_norm=True),
    "resnet": lambda: models.get("resnet", input_shape=(28, 28, 1), stages=(1, 1, 1), widths=(16, 32, 64),
                                 num_outputs=10),
    "transformer": lambda: models.get("transformer", input_shape=(64,), vocab_size=500, dim=32, depth=2, heads=2,
                                      mlp_dim=64, num_outputs=2),
    "text_gru": lambda: models.get("text_gru", input_shape=(64,), vocab_size=500, embed_dim=32, hidden=(32,),
                                   bidirectional=True, num_outputs=2),
}


@pytest.mark.parametrize("name", sorted(RUN_ONCE_MODELS))
def test_the_run_once_build_of_the_first_state_is_bit_identical_for_every_model(name):
    """Drivers compile ``initial_state`` with ``run_once_options()`` (LLVM -O1 on CPU, compiles 2-4x faster): every
    parameter and Adam moment equals XLA's default (-O2) build's bit for bit, so no stored run or figure moves.
    (-O2 named, whatever XLA_FLAGS says.)"""
    model, optimizer = RUN_ONCE_MODELS[name](), optax.adam(1e-3)
    make_state = functools.partial(state_lib.initial_state, model, optimizer, 7)
    fast = jax.jit(make_state, compiler_options=state_lib.run_once_options())()
    default = jax.jit(make_state, compiler_options={"xla_backend_optimization_level": 2})()
    if jax.default_backend() == "cpu":
        assert state_lib.run_once_options() == {"xla_backend_optimization_level": 1}
    assert params_sha256(fast.params) == params_sha256(default.params)
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(fast), jax.device_get(default))
    driver = drivers.SingleDevice(model, objectives.get("softmax_xent"), optimizer, step_lib.Hparams(0))
    assert params_sha256(driver.init(make_state).params) == params_sha256(fast.params)
