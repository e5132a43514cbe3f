"""The clock task (jaxml/tasks/clock/): its registrations, exact decoding of the periodic targets, hour/minute
consistency, loss zero at the target, the report's two-head loss weighting, the config, the data builder and a
short training run scored by ``python -m jaxml.tasks.clock.heldout``."""
import dataclasses
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxml import data
from jaxml.cli.common import load_config
from jaxml.data import filters
from jaxml.tasks import clock
from jaxml.tasks.clock import builder as _builder  # noqa: F401  (clock.builder, clock.report: submodules)
from jaxml.tasks.clock import heldout as heldout_script
from jaxml.tasks.clock import independent as _independent  # noqa: F401
from jaxml.tasks.clock import report as _report  # noqa: F401
from jaxml.train import config as config_lib
from jaxml.train import objectives, reports
from jaxml.train.loop import build_model, evaluate, restore_trained, train_and_evaluate


def test_the_package_registers_its_data_objectives_and_report():
    assert data.BUILDERS["clock"] is clock.build_data
    for name, fn in (("clock_heads", clock.heads_objective), ("clock_periodic", clock.periodic_objective),
                     ("clock_absolute", clock.absolute_objective)):
        assert objectives.get(name) is fn
        assert objectives.view_maps(name) == clock.VIEW_MAPS
    assert reports.REPORTS["clock_predictions"] is clock.sample_grid_report
    with pytest.raises(ValueError, match="objective 'mse' does not say how its outputs transform"):
        objectives.view_maps("mse")


def _angles(hour, minute):
    t = (np.asarray(hour) % 12) * 60 + np.asarray(minute)
    return jnp.asarray(np.stack([np.cos(2 * np.pi * t / 720), np.sin(2 * np.pi * t / 720),
                                 np.cos(2 * np.pi * np.asarray(minute) / 60),
                                 np.sin(2 * np.pi * np.asarray(minute) / 60)], -1), jnp.float32)


def test_periodic_decoding_is_exact_for_all_720_times():
    hour, minute = np.divmod(np.arange(720), 60)
    h, m = clock.decode_periodic({"angles": _angles(hour, minute)})
    np.testing.assert_array_equal(h, hour)
    np.testing.assert_array_equal(m, minute)


def test_hour_follows_the_minute_it_is_paired_with():
    # The 720-minute angle says "about 4:00" (3:59.6), the minute hand says 59: the reading is 3:59, not 4:59.
    a = np.array(_angles([3], [59]))
    t = 239.6
    a[0, :2] = [np.cos(2 * np.pi * t / 720), np.sin(2 * np.pi * t / 720)]
    h, m = clock.decode_periodic({"angles": jnp.asarray(a)})
    assert (int(h[0]), int(m[0])) == (3, 59)


def test_periodic_loss_is_zero_at_target_and_metrics_perfect():
    hour, minute = jnp.array([0, 3, 11]), jnp.array([0, 59, 1])
    loss, metrics = clock.periodic_objective({"angles": _angles(hour, minute)}, {"hour": hour, "minute": minute})
    np.testing.assert_allclose(loss, 0.0, atol=1e-6)
    np.testing.assert_array_equal(metrics["clock_error_min"], 0.0)


def test_heads_loss_weights_six_to_four():
    hour, minute = jnp.array([2]), jnp.array([30])
    out = {"hour": jnp.zeros((1, 12)), "minute": jnp.zeros((1, 60))}
    loss, metrics = clock.heads_objective(out, {"hour": hour, "minute": minute})
    assert float(loss[0]) == pytest.approx(0.6 * np.log(12) + 0.4 * np.log(60), rel=1e-6)
    out["hour"] = out["hour"].at[0, 2].set(10.0)
    out["minute"] = out["minute"].at[0, 31].set(10.0)
    _, metrics = clock.heads_objective(out, {"hour": hour, "minute": minute})
    assert float(metrics["clock_error_min"][0]) == 1.0 and float(metrics["minute_within_1"][0]) == 1.0


def _absolute(hour, minute, rotation):
    t = (np.asarray(hour) % 12) * 60 + np.asarray(minute)
    angles = (2 * np.pi * t / 720 + rotation, 2 * np.pi * np.asarray(minute) / 60 + rotation, rotation)
    return jnp.asarray(np.stack([f(a) for a in angles for f in (np.cos, np.sin)], -1), jnp.float32)


def test_absolute_decoding_is_exact_for_all_720_times_at_any_rotation():
    hour, minute = np.divmod(np.arange(720), 60)
    rotation = np.random.default_rng(0).uniform(0, 2 * np.pi, 720)
    h, m = clock.decode_absolute({"abs_angles": _absolute(hour, minute, rotation)})
    np.testing.assert_array_equal(h, hour)
    np.testing.assert_array_equal(m, minute)
    batch = {"hour": jnp.asarray(hour), "minute": jnp.asarray(minute), "rotation": jnp.asarray(rotation, jnp.float32)}
    loss, metrics = clock.absolute_objective({"abs_angles": _absolute(hour, minute, rotation)}, batch)
    np.testing.assert_allclose(loss, 0.0, atol=1e-5)
    np.testing.assert_array_equal(metrics["clock_error_min"], 0.0)
    # The same outputs read against a marker 90 degrees off give a different time: the marker matters.
    shifted = _absolute(hour, minute, rotation)
    shifted = shifted.at[:, 4:].set(_absolute(hour, minute, rotation + np.pi / 2)[:, 4:])
    h2, _ = clock.decode_absolute({"abs_angles": shifted})
    assert (np.asarray(h2) != hour).mean() > 0.9


def test_rendered_rotation_is_the_one_drawn():
    """Canonical clocks turned at random: at 0.65 R along the predicted image direction of the minute hand
    (clock angle + rotation, clockwise from up) the pixel is ink, on the opposite side it is face."""
    style = dataclasses.replace(clock.CANONICAL_STYLE, rotation_deg=(0.0, 360.0))
    key = jax.random.key(7)
    images, hour, minute = clock.render_batch(key, 16, style)
    rotation = np.asarray(clock.rotations(key, 16, style))
    assert np.ptp(rotation) > 1.0                       # really rotated
    c, radius = (clock.CANVAS - 1) / 2.0, 0.9 * clock.CANVAS / 2.0
    for img, m, rho in zip(np.asarray(images), np.asarray(minute), rotation):
        for sign, want_dark in ((1.0, True), (-1.0, False)):
            a = 2 * np.pi * m / 60 + rho
            x, y = c + sign * 0.65 * radius * np.sin(a), c - sign * 0.65 * radius * np.cos(a)
            assert (img[int(round(y)), int(round(x))] < 128) == want_dark, (m, np.degrees(rho), sign)


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs", "clock.py")


def _clock_config(arg=""):
    """``get_config(arg)`` of configs/clock.py, through the launchers' loader."""
    return load_config(f"{CONFIG}:{arg}" if arg else CONFIG)


@pytest.mark.slow
def test_quick_training_reads_clocks_well_below_chance(tmp_path):
    """The default formulation (configs/clock.py, clock_absolute) learns: 120 steps of batch 32 at a constant
    lr of 2e-3 on clean clocks turned at random (the canonical style, rotation 0-360 degrees), with the
    ``:tiny`` trunk, bring the common-sense error on 100 test clocks from chance (180 min) to well below it."""
    c = _clock_config("quick,tiny")
    assert c.objective == "clock_absolute" and c.data.test_size == 100
    style = dataclasses.replace(clock.CANONICAL_STYLE, rotation_deg=(0.0, 360.0))
    c.data.train_style = ml_collections.ConfigDict(dataclasses.asdict(style))
    c.data.batch_size = 32
    c.train.num_steps = 120
    c.train.eval_every = 120
    c.optimizer.schedule = "constant"
    c.optimizer.lr = 2e-3
    c.train.progress_bar = False
    c.reports = ()
    final = train_and_evaluate(c, str(tmp_path)).final
    assert final["test"]["clock_error_min"] < 45.0, final["test"]


@pytest.mark.slow
def test_heldout_script_scores_a_run_as_its_own_evaluation(tmp_path):
    """jaxml.tasks.clock.heldout restores a (10-step, ``:tiny``) run and scores it; its held-out row renders the
    same 20 clocks as the run's own final "heldout" evaluation, so the two agree exactly. (--rows=summary:
    the table's rows are checked by test_heldout_table_rows_swap_each_setting_in_and_out without scoring.)"""
    c = _clock_config("quick,tiny")
    c.data.test_size = 20
    c.train.num_steps = c.train.eval_every = 10
    c.train.progress_bar = False
    c.reports = ()
    final = train_and_evaluate(c, str(tmp_path)).final
    out = subprocess.run([sys.executable, "-m", "jaxml.tasks.clock.heldout", f"--config={CONFIG}:quick,tiny",
                          f"--workdir={tmp_path}", "--n=20", "--rows=summary"],
                         capture_output=True, text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert (result["step"], result["test_views"]) == (10, 8)
    errors = result["clock_error_min"]
    assert set(errors) == {"test (training designs)", "heldout (all of them)"}
    assert errors["heldout (all of them)"] == pytest.approx(final["heldout"]["clock_error_min"], abs=1e-3)

    # The same run scored through one view instead of the config's 8 averaged views (rotations and mirrors;
    # jaxml/models/views.py), as the script scores it with --config.model.test_views=1: a different number (the
    # averaged model is not the model). In process: a second script run would cost another JAX start-up.
    c.model.test_views = 1
    _, driver, state = restore_trained(c, str(tmp_path), (clock.CANVAS, clock.CANVAS, 1))
    one = evaluate(driver, state, clock.rendered_arrays(c, clock.HELDOUT_STYLE, "heldout", 20), 20)
    assert one["clock_error_min"] != pytest.approx(errors["heldout (all of them)"])


def test_heldout_table_rows_swap_each_setting_in_and_out():
    """The full table of ``jaxml.tasks.clock.heldout``: each held-out setting alone, the two groups, all of them,
    and all but one; each row's style differs from its base in exactly the fields the row names."""
    rows = heldout_script.settings(clock.TRAIN_STYLE, clock.HELDOUT_STYLE)
    assert set(rows) == {"only tick_styles", "only hand_shapes", "only gradient", "only contrast",
                         "only blur_sigma", "only noise_std", "only designs (tick_styles, hand_shapes)",
                         "only lighting (gradient, contrast, blur_sigma, noise_std)", "heldout (all of them)",
                         "heldout except tick_styles", "heldout except hand_shapes", "heldout except gradient",
                         "heldout except contrast", "heldout except blur_sigma", "heldout except noise_std"}

    def differ(a, b):
        return {f.name for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name)}

    assert rows["heldout (all of them)"] == clock.HELDOUT_STYLE
    assert differ(rows["only contrast"], clock.TRAIN_STYLE) == {"contrast"}
    assert differ(rows["only designs (tick_styles, hand_shapes)"], clock.TRAIN_STYLE) == {"tick_styles", "hand_shapes"}
    assert differ(rows["heldout except noise_std"], clock.HELDOUT_STYLE) == {"noise_std"}


def test_preprocess_options_and_bad_value_named():
    c = ml_collections.ConfigDict({"data": {"contrast_gamma": 1.5, "normalize": "detrend"}})
    x = np.random.default_rng(0).uniform(size=(2, 150, 150, 1)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(clock.preprocess(c)(x)),
                               np.asarray(clock.detrend_standardize(clock.contrast_curve(x, 1.5))), atol=1e-6)
    c.data.normalize = "none"
    np.testing.assert_allclose(np.asarray(clock.preprocess(c)(x)), x ** 1.5, rtol=1e-6)
    c.data.normalize = "standardise"
    with pytest.raises(config_lib.ConfigError, match="config.data.normalize"):
        clock.preprocess(c)
    c.data.normalize = "detrend"
    c.data.preblur_sigma = 1.25  # the fixed blur comes first, then the curve, then the plane
    np.testing.assert_allclose(
        np.asarray(clock.preprocess(c)(x)),
        np.asarray(clock.detrend_standardize(clock.contrast_curve(filters.gaussian_blur(x, 1.25), 1.5))), atol=1e-5)
    for bad in (-0.5, "1.0", 9.0):
        c = ml_collections.ConfigDict({"data": {"normalize": "detrend", "preblur_sigma": bad}})
        with pytest.raises(config_lib.ConfigError, match="config.data.preblur_sigma"):
            clock.preprocess(c)


def test_clock_config_arguments():
    """configs/clock.py: the default pre-blurs by 1.25 px and scores 8 views (its README figure), ':sharp' reads
    unblurred inputs, ':heads' averages rotations only, arguments combine, and a wrong or conflicting one is named;
    every formulation's model builds with its views."""
    c = _clock_config()
    assert (c.data.preblur_sigma, c.model.test_views, c.train.num_steps) == (1.25, 8, 16000)
    c = _clock_config("sharp,quick")
    assert (c.data.preblur_sigma, c.train.num_steps, c.objective) == (0.0, 60, "clock_absolute")
    assert (_clock_config("heads").objective, _clock_config("heads").model.test_views) == ("clock_heads", 4)
    for arg in ("", "heads", "periodic"):
        assert build_model(_clock_config(arg), (150, 150, 1)).apply is not None
    with pytest.raises(ValueError, match="'preblur'"):
        _clock_config("preblur")
    with pytest.raises(ValueError, match="choose one"):
        _clock_config("heads,periodic")


@pytest.mark.slow
@pytest.mark.parametrize("preblur_sigma", [0.0, 1.25])
def test_training_batches_are_render_then_preprocess(preblur_sigma):
    """build_data's on-the-fly batches (rendered and preprocessed as two compiled programs) equal the rendered
    clocks of the step's key, preprocessed in numpy-visible steps: same times, rotations and pixels."""
    c = _clock_config("quick")
    c.data.preblur_sigma = preblur_sigma
    c.data.test_size = 8
    splits = clock.build_data(c)
    got = splits.train.batch(7)
    key = jax.random.fold_in(jax.random.key(c.seed), 7)
    images, hour, minute = clock.render_batch(key, c.data.batch_size, clock.TRAIN_STYLE)
    np.testing.assert_array_equal(got["hour"], hour)
    np.testing.assert_array_equal(got["minute"], minute)
    np.testing.assert_array_equal(got["rotation"], clock.rotations(key, c.data.batch_size, clock.TRAIN_STYLE))
    want = clock.preprocess(c)(np.asarray(images, np.float32)[..., None] / 255.0)
    np.testing.assert_allclose(got["x"], want, atol=1e-4)
    assert got["x"].shape == (c.data.batch_size, 150, 150, 1)


@pytest.mark.slow
def test_prediction_grid_shows_the_rendered_pixels_of_the_model_inputs(tmp_path, monkeypatch):
    """clock_predictions draws the clocks as rendered (uint8, before the pre-blur and detrending), the very
    clocks whose preprocessed inputs the run's "test" split holds, then independent ones; and the grid refuses
    normalised inputs (which a uint8 cast would wrap around)."""
    c = _clock_config("quick")
    c.data.test_size = 8
    splits = clock.build_data(c)
    seen = {}
    monkeypatch.setattr(clock.report, "save_sample_grid", lambda path, images, *a, **k: seen.update(
        path=path, images=images, captions=k["captions"]))
    monkeypatch.setattr(reports, "predict", lambda ctx, x: {"abs_angles": np.zeros((len(x), 6), np.float32)})
    ctx = reports.Context(c, str(tmp_path), None, None, splits, {}, None)
    clock.sample_grid_report(ctx)
    rendered = np.asarray(clock.render_batch(jax.random.fold_in(jax.random.key(0), 1), 8, clock.TRAIN_STYLE)[0])
    assert seen["images"].dtype == np.uint8 and seen["images"].shape == (20, 150, 150)
    np.testing.assert_array_equal(seen["images"][:8], rendered)           # the test stream's pixels
    indep = clock.independent.independent_set(clock.builder.INDEPENDENT_SEED, 6, "upright")["images"]
    np.testing.assert_array_equal(seen["images"][14:], indep)
    assert seen["captions"][:8] == ["test"] * 8 and seen["captions"][14] == "independent upright"
    grid = clock.report.grid_clocks(c, 8, 0)
    np.testing.assert_allclose(grid["x"], splits.eval["test"]["x"], atol=1e-5)  # what the model was given
    with pytest.raises(ValueError, match="not the normalised model inputs"):
        clock.save_sample_grid(str(tmp_path / "bad.png"), splits.eval["test"]["x"], grid["hour"], grid["minute"])


@pytest.mark.slow
def test_wide_config_trains_on_the_wide_style():
    """configs/clock.py:wide renders its batches from WIDE_STYLE (its labels: the rendered rotations, upright
    ones within 8 degrees of 0) and scores one view; the default style draws none of the wider vocabulary."""
    c = _clock_config("wide,quick")
    assert c.model.test_views == 1 and clock.train_style(c) == clock.WIDE_STYLE
    assert clock.WIDE_STYLE.extended and not clock.TRAIN_STYLE.extended and not clock.HELDOUT_STYLE.extended
    assert not set(clock.WIDE_STYLE.tick_styles) & set(clock.HELDOUT_STYLE.tick_styles)
    assert not set(clock.WIDE_STYLE.hand_shapes) & set(clock.HELDOUT_STYLE.hand_shapes)
    c.data.test_size = 8
    got = clock.build_data(c).train.batch(3)
    key = jax.random.fold_in(jax.random.key(c.seed), 3)
    images, hour, _ = clock.render_batch(key, c.data.batch_size, clock.WIDE_STYLE)
    np.testing.assert_array_equal(got["hour"], hour)
    np.testing.assert_array_equal(got["rotation"], clock.rotations(key, c.data.batch_size, clock.WIDE_STYLE))
    p = jax.jit(jax.vmap(lambda k: clock.sample_clock_params(k, clock.WIDE_STYLE)))(
        jax.random.split(jax.random.key(1), 500))
    up, rot = np.asarray(p["upright"]), np.degrees(np.asarray(p["rotation"]))
    assert 0.3 < up.mean() < 0.5
    assert np.all(np.minimum(rot[up], 360 - rot[up]) <= 8.0)
    cue = np.asarray(p["numerals"]) | (np.asarray(p["marker_kind"]) != 2)
    assert np.all(cue[~up]) and not np.all(cue[up])           # a turned face always shows where 12 is
