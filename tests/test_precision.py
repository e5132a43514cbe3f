"""Mixed precision (config.precision): bfloat16 close to float32 with float32 master state, float16's dynamic
loss scale (skip + halve on overflow, growth after N good steps, checkpointed), the guard left silent."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxml import models
from jaxml.tasks import toy  # noqa: F401  (registers the blobs dataset)
from jaxml.train import config as config_lib
from jaxml.train import loop, objectives, precision, train_and_evaluate
from jaxml.train import step as step_lib
from jaxml.train.state import TrainState
from tests import helpers

CNN = ("conv:8:3", "act", "maxpool:2", "bn", "flatten", "dense:16", "act")


def cnn(dtype):
    return precision.apply_policy(models.get("cnn", input_shape=(8, 8, 1), layers=CNN, num_outputs=4), dtype)


def image_batch(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(n, 8, 8, 1)).astype(np.float32), "y": rng.integers(0, 4, n).astype(np.int32),
            "mask": np.ones(n, np.float32)}


def one_step(model, optimizer, batch, *, steps=1):
    params = models.get("cnn", input_shape=(8, 8, 1), layers=CNN, num_outputs=4).init(jax.random.key(0))
    state = TrainState(jnp.zeros((), jnp.int32), params, model.init_state(), optimizer.init(params))
    step = jax.jit(step_lib.make_train_step(model, objectives.get("softmax_xent"), optimizer))
    sums = []
    for _ in range(steps):
        state, s = step(state, batch, step_lib.Hparams(seed=0))
        sums.append(jax.device_get(s))
    return state, sums


def update_error(params, ref_params):
    """|params - ref| / |ref - p0| in global norm: the relative error of the update from the initial p0."""
    p0 = cnn("float32").init(jax.random.key(0))
    diff = optax.tree_utils.tree_sub(params, ref_params)
    return float(optax.global_norm(diff) / optax.global_norm(optax.tree_utils.tree_sub(ref_params, p0)))


def test_bfloat16_computes_in_bfloat16_and_keeps_float32_state():
    """The policy casts at apply: the convolution's matmul runs on bf16 operands, outputs come back float32."""
    model, batch = cnn("bfloat16"), image_batch()
    params = model.init(jax.random.key(0))
    jaxpr = str(jax.make_jaxpr(lambda p, x: model.apply(p, x, state=model.init_state(), train=True))(params,
                                                                                                     batch["x"]))
    assert "dot_general" in jaxpr and "bf16[16,8,8,8]" in jaxpr.replace(" ", "")
    out, new_state = model.apply(params, batch["x"], state=model.init_state(), train=True)
    assert out.dtype == jnp.float32
    assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(new_state))   # batch-norm running statistics
    state, _ = one_step(model, optax.adam(1e-2), batch)
    assert all(a.dtype == jnp.float32 for a in jax.tree.leaves((state.params, state.opt_state, state.model_state))
               if jnp.issubdtype(a.dtype, jnp.floating))


def test_bfloat16_step_is_close_to_float32():
    """One SGD step: bf16's parameter update is float32's to within 10% in global norm (bf16 keeps 8 bits of
    mantissa; CPU sums the conv's 1024-term gradient reductions in it) — and is not float32's (the cast happened)."""
    batch, opt = image_batch(), optax.sgd(0.1)
    (s32, m32), (s16, m16) = one_step(cnn("float32"), opt, batch), one_step(cnn("bfloat16"), opt, batch)
    assert 1e-4 < update_error(s16.params, s32.params) < 0.1
    assert m16[0]["loss"] == pytest.approx(m32[0]["loss"], rel=1e-2)


def test_float16_overflow_skips_the_step_and_halves_the_scale():
    """A scale of 2^40 overflows float16's gradients: params and Adam state unchanged bit for bit, the scale
    halves, the step's metric sums are dropped (so the loop's guard sees no inf)."""
    model, batch = cnn("float16"), image_batch()
    opt = precision.dynamic_loss_scale(optax.adam(1e-2), init_scale=2.0 ** 40, period=10)
    state, (sums,) = one_step(model, opt, batch)
    p0 = model.init(jax.random.key(0))
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), state.params, p0)
    assert float(state.opt_state.scale) == 2.0 ** 39 and int(state.opt_state.good_steps) == 0
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
                 state.opt_state.inner, opt.init(p0).inner)
    assert all(v == 0.0 for v in sums.values())
    assert int(state.step) == 1


def test_float16_scale_grows_after_period_good_steps_and_trains_like_float32():
    model, batch = cnn("float16"), image_batch()
    opt = precision.dynamic_loss_scale(optax.sgd(0.1), init_scale=2.0 ** 4, period=3)
    state, sums = one_step(model, opt, batch, steps=7)
    assert float(state.opt_state.scale) == 2.0 ** 6 and int(state.opt_state.good_steps) == 1
    ref, ref_sums = one_step(cnn("float32"), optax.sgd(0.1), batch, steps=7)
    assert update_error(state.params, ref.params) < 0.1
    assert sums[-1]["n"] == 16.0 and sums[-1]["loss"] == pytest.approx(ref_sums[-1]["loss"], rel=2e-2)


def test_loss_scale_of_one_applies_a_non_finite_step():
    """At scale 1 a non-finite gradient is real divergence: applied (not skipped), so the guard will see it."""
    opt = precision.dynamic_loss_scale(optax.sgd(1.0), init_scale=4.0)
    params = {"w": jnp.ones(2)}
    bad = {"w": jnp.array([jnp.inf, 1.0])}
    updates, st = opt.update(bad, opt.init(params), params)
    assert float(st.scale) == 2.0 and np.all(np.asarray(updates["w"]) == 0.0)
    updates, st = opt.update(bad, st._replace(scale=jnp.float32(1.0)), params)
    assert float(st.scale) == 1.0 and not np.all(np.isfinite(np.asarray(updates["w"])))


def blobs_config(dtype="float32", **precision_fields):
    return helpers.blobs_config(model={"widths": (32, 16)}, data={"batch_size": 64, "eval_batch_size": 64},
                                optimizer={"lr": 0.05}, precision={"compute_dtype": dtype, **precision_fields},
                                num_steps=16, log_every=2)


def test_float16_run_skips_overflow_steps_silently_and_resumes_its_scale(tmp_path):
    """The loop: init scale 2^26 overflows for the first steps (skipped, no FloatingPointError), the scale
    falls and training proceeds; a run stopped at step 8 and resumed ends bit-identical with the same scale."""
    c = blobs_config("float16", loss_scale_init=2.0 ** 26, loss_scale_period=3)
    final = train_and_evaluate(c, str(tmp_path / "full")).final
    assert final["test"]["accuracy"] > 0.5
    shape = (8,)
    _, _, full = loop.restore_trained(c, str(tmp_path / "full"), shape)
    assert 1.0 <= float(full.opt_state.scale) < 2.0 ** 26
    c4 = blobs_config("float16", loss_scale_init=2.0 ** 26, loss_scale_period=3)
    c4.train.num_steps = 8
    train_and_evaluate(c4, str(tmp_path / "resumed"))
    train_and_evaluate(c, str(tmp_path / "resumed"), allow_config_change=("train.num_steps",))
    _, _, resumed = loop.restore_trained(c, str(tmp_path / "resumed"), shape)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), resumed, full)


@pytest.mark.parametrize("field,value,message", [
    ("compute_dtype", "float64", "config.precision.compute_dtype must be one of"),
    ("loss_scale_init", 0.5, "config.precision.loss_scale_init must be >= 1, got 0.5"),
    ("loss_scale_period", 0, "config.precision.loss_scale_period must be a whole number >= 1, got 0"),
])
def test_bad_precision_fields_are_config_errors(tmp_path, field, value, message):
    c = blobs_config()
    c.precision[field] = value
    with pytest.raises(config_lib.ConfigError, match=message):
        train_and_evaluate(c, str(tmp_path))
    assert not any(tmp_path.iterdir())
