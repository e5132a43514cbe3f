"""Gradient accumulation (config.train.accum_steps): k microbatches == one batch under every driver, dropout
masks unchanged, batch norm per microbatch as documented, and the config errors."""
import json

import jax
import numpy as np
import optax
import pytest

from jaxml import models
from jaxml.tasks import toy  # noqa: F401  (registers the blobs dataset)
from jaxml.tasks.toy import gaussian_blobs
from jaxml.train import accumulate, drivers, objectives, optim, train_and_evaluate
from jaxml.train import config as config_lib
from jaxml.train import step as step_lib
from jaxml.train import workdir as workdir_lib
from jaxml.train.state import TrainState
from tests import helpers
from tests.restore import final_params

DRIVERS = {"none": drivers.SingleDevice, "shard_map": drivers.ShardMapDriver, "pmap": drivers.PmapDriver}


def batches(n_steps, n=32, seed=0):
    """Blobs batches with a ragged mask: microbatches hold different counts (the weights c_j / C matter)."""
    data = gaussian_blobs(seed, n * n_steps)
    out = []
    for s in range(n_steps):
        b = {k: v[s * n:(s + 1) * n] for k, v in data.items()}
        mask = np.ones(n, np.float32)
        mask[[1, 2, 3, 9, 30]] = 0.0
        out.append({**b, "mask": mask})
    return out


def train(backend, k, *, optimizer="adam", dropout=0.3, batch_norm=False, l2=1e-3, n_steps=4):
    model = models.get("mlp", input_shape=(8,), widths=(16, 16), num_outputs=4, dropout=dropout,
                       batch_norm=batch_norm)
    cfg = config_lib.base_config().optimizer
    cfg.name, cfg.lr = optimizer, 0.05
    opt = optim.make_optimizer(cfg, n_steps)
    hp = step_lib.Hparams(seed=3, l2=l2)
    driver = DRIVERS[backend](model, objectives.get("softmax_xent"), opt, hp, accum_steps=k)
    state = driver.init(lambda: TrainState(jax.numpy.zeros((), jax.numpy.int32), model.init(jax.random.key(0)),
                                           model.init_state(), opt.init(model.init(jax.random.key(0)))))
    sums = []
    for b in batches(n_steps):
        state, s = driver.train_step(state, driver.put(b))
        sums.append(driver.fetch(s))
    return driver.fetch(state), sums


def assert_close(a, b, rtol=1e-5, atol=1e-6):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=atol), a, b)


@pytest.mark.parametrize("backend,optimizer", [("none", "sgd"), ("none", "adam"), ("shard_map", "sgd"),
                                               ("pmap", "sgd")])
def test_four_microbatches_equal_one_batch(backend, optimizer):
    """Dropout 0.3, an l2 penalty and a ragged mask: k = 4 gives k = 1's params and metric sums — so the
    dropout masks are the same (they follow the global example index) and the c_j / C weights are right. Adam on
    one device: the optimizer sees only the accumulated gradient, whichever driver summed it."""
    s1, m1 = train(backend, 1, optimizer=optimizer)
    s4, m4 = train(backend, 4, optimizer=optimizer)
    assert_close(s4.params, s1.params)
    assert_close(m4, m1)
    assert m1[0]["n"] == 27.0


def test_accumulation_is_not_a_no_op():
    """Guard for the test above: another dropout seed (different masks) moves the params beyond its tolerance."""
    s1, _ = train("none", 1)
    s0, _ = train("none", 1, dropout=0.31)
    with pytest.raises(AssertionError):
        assert_close(s0.params, s1.params)


def test_batch_norm_normalises_each_microbatch_with_its_own_statistics():
    """Documented behaviour: with SGD and equal microbatch counts, the k = 4 step from (p0, ms0) is the mean of
    four k = 1 steps from p0 on the four microbatches, the running statistics carried through them in order."""
    model = models.get("mlp", input_shape=(8,), widths=(16,), num_outputs=4, batch_norm=True)
    optax_sgd = optax.sgd(0.1)
    p0, ms0 = model.init(jax.random.key(0)), model.init_state()
    state0 = TrainState(jax.numpy.zeros((), jax.numpy.int32), p0, ms0, optax_sgd.init(p0))
    data = gaussian_blobs(1, 32)
    batch = {**data, "mask": np.ones(32, np.float32)}
    hp = step_lib.Hparams(seed=0)
    obj = objectives.get("softmax_xent")
    step4 = jax.jit(step_lib.make_train_step(model, obj, optax_sgd, accum_steps=4))
    step1 = jax.jit(step_lib.make_train_step(model, obj, optax_sgd))
    out4, sums4 = step4(state0, batch, hp)
    params_j, ms, loss_sum = [], ms0, 0.0
    for j in range(4):
        micro = {k: v[8 * j:8 * (j + 1)] for k, v in batch.items()}
        out, sums = step1(state0._replace(model_state=ms), micro, hp)
        params_j.append(out.params)
        ms = out.model_state
        loss_sum += float(sums["loss"])
    assert_close(out4.params, jax.tree.map(lambda *p: sum(p) / 4, *params_j))
    assert_close(out4.model_state, ms)
    assert float(sums4["loss"]) == pytest.approx(loss_sum, rel=1e-6)


def blobs_config(backend, k):
    return helpers.blobs_config(model={"widths": (32, 16), "dropout": 0.2},
                                data={"batch_size": 64, "eval_batch_size": 64}, optimizer={"lr": 0.01},
                                parallel={"backend": backend}, num_steps=12, log_every=6, accum_steps=k)


def test_accum_steps_run_equals_one_batch_run(tmp_path):
    """The loop end to end: train.accum_steps=4 under shard_map on 4 devices == accum_steps=1 on one device."""
    runs = {}
    for backend, k in (("none", 1), ("shard_map", 4)):
        c = blobs_config(backend, k)
        wd = str(tmp_path / f"{backend}{k}")
        final = train_and_evaluate(c, wd).final
        runs[k] = (final, final_params(wd, c))
    assert_close(runs[4][1], runs[1][1])
    assert runs[4][0]["test"]["loss"] == pytest.approx(runs[1][0]["test"]["loss"], rel=1e-5)


@pytest.mark.parametrize("backend,k,batch,message", [
    ("none", 3, 64, "config.data.batch_size=64 is not divisible by config.train.accum_steps=3"),
    ("shard_map", 4, 24, "config.data.batch_size=24 is not divisible by 4 devices x config.train.accum_steps=4"),
    ("none", 0, 64, "config.train.accum_steps must be a whole number >= 1, got 0"),
    ("none", -2, 64, "config.train.accum_steps must be a whole number >= 1, got -2"),
])
def test_accum_steps_that_do_not_divide_the_batch_are_config_errors(tmp_path, backend, k, batch, message):
    c = blobs_config(backend, 1)
    c.train.accum_steps, c.data.batch_size = k, batch
    with pytest.raises(config_lib.ConfigError, match=message.replace(".", r"\.")):
        train_and_evaluate(c, str(tmp_path))
    assert not any(tmp_path.iterdir())           # nothing written


def test_microbatch_split_names_the_field():
    with pytest.raises(ValueError, match="accum_steps=3"):
        accumulate.split({"x": np.zeros((8, 2))}, 3)


def test_a_workdir_from_before_the_new_fields_resumes_unless_they_change(tmp_path):
    """config.json written before train.accum_steps / config.precision existed: the defaults are no change;
    accum_steps=2 is one, named."""

    c = blobs_config("none", 1)
    stored = json.loads(c.to_json_best_effort(sort_keys=True))
    for section, field in (("train", "accum_steps"), ("train", "prefetch"), ("parallel", "mesh")):
        del stored[section][field]
    del stored["precision"]
    (tmp_path / "config.json").write_text(json.dumps(stored))
    (tmp_path / "checkpoints" / "10").mkdir(parents=True)     # a run to resume (without one any change is allowed)
    workdir_lib.check_config(str(tmp_path), c)
    c.train.accum_steps = 2
    with pytest.raises(config_lib.ConfigError, match=r"config\.train\.accum_steps: None -> 2"):
        workdir_lib.check_config(str(tmp_path), c)
