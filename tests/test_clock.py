"""Tests for the clock renderer, styles, preprocessing and datasets (jaxml/tasks/clock/) and its metrics."""
import dataclasses
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxml.tasks import clock as C
from jaxml.tasks.clock import metrics as cm
from jaxml.tasks.clock import render, report

CENTRE = (C.CANVAS - 1) / 2.0
R = 0.9 * 75.0  # CANONICAL_STYLE radius in pixels


def canonical(hour, minute, style=C.CANONICAL_STYLE):
    return np.asarray(C.render_clock(jax.random.key(0), hour, minute, style)).astype(np.float32)


def sample(img, radius, angle_deg):
    """Nearest pixel at clock-frame polar (radius px, angle clockwise from 12) of an upright,
    centred clock."""
    a = math.radians(angle_deg)
    col = CENTRE + radius * math.sin(a)
    row = CENTRE - radius * math.cos(a)
    return img[int(round(row)), int(round(col))]


def dark_angle(img, radius, threshold=128.0, exclude=None, exclude_width=15.0):
    """Circular mean of the angles (deg, clockwise from 12) whose pixel at ``radius`` is dark,
    leaving out angles within ``exclude_width`` of ``exclude``."""
    angles = np.arange(0.0, 360.0, 0.25)
    if exclude is not None:
        angles = np.array([a for a in angles if angle_diff(a, exclude) > exclude_width])
    vals = np.array([sample(img, radius, a) for a in angles])
    w = np.clip(threshold - vals, 0, None)
    assert w.sum() > 0, f"no dark pixels on the circle of radius {radius}"
    rad = np.radians(angles)
    return math.degrees(math.atan2((w * np.sin(rad)).sum(), (w * np.cos(rad)).sum())) % 360.0


def angle_diff(a, b):
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


# ---------------------------------------------------------------- renderer: determinism, batching

def test_render_deterministic_and_keys_differ():
    k = jax.random.key(7)
    a = np.asarray(C.render_clock(k, 4, 20, C.TRAIN_STYLE))
    b = np.asarray(C.render_clock(k, 4, 20, C.TRAIN_STYLE))
    c = np.asarray(C.render_clock(jax.random.key(8), 4, 20, C.TRAIN_STYLE))
    assert a.dtype == np.uint8 and a.shape == (150, 150)
    np.testing.assert_array_equal(a, b)
    # A different key redraws the whole design: most pixels change, not just the noise.
    assert np.mean(np.abs(a.astype(int) - c.astype(int)) > 10) > 0.2


def assert_equal_up_to_rounding(a, b):
    """uint8 images from differently compiled (vectorised vs scalar) XLA programs: float32
    results differ by an ulp or so, which flips a rare pixel across a grey-level boundary."""
    diff = np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int))
    assert diff.max() <= 1 and np.mean(diff > 0) < 1e-4, (diff.max(), np.mean(diff > 0))


def test_batch_equals_one_by_one():
    key, style = jax.random.key(3), C.TRAIN_STYLE
    # (Same argument kinds in every test: each new signature costs an XLA compile of seconds.)
    images, hours, minutes = C.render_batch(key, 6, style, 0)
    for i in range(6):
        k_time, k_img = jax.random.split(jax.random.fold_in(key, i))
        h, m = (int(a) for a in render.uniform_time(k_time))
        assert (h, m) == (int(hours[i]), int(minutes[i]))
        assert_equal_up_to_rounding(images[i], C.render_clock(k_img, h, m, style))
    # A batch at an offset continues the same stream (same compiled program: exact).
    later, h2, _ = C.render_batch(key, 6, style, 3)
    np.testing.assert_array_equal(np.asarray(later[:3]), np.asarray(images[3:]))
    np.testing.assert_array_equal(np.asarray(h2[:3]), np.asarray(hours[3:]))


def test_times_are_uniform_over_the_dial():
    keys = jax.random.split(jax.random.key(0), 6000)
    hours, minutes = (np.asarray(a) for a in jax.jit(jax.vmap(render.uniform_time))(keys))
    np.testing.assert_array_equal(np.unique(hours), np.arange(12))
    np.testing.assert_array_equal(np.unique(minutes), np.arange(60))
    counts = np.bincount(hours, minlength=12)
    assert counts.min() > 6000 / 12 * 0.8 and counts.max() < 6000 / 12 * 1.2


# ---------------------------------------------------------------- renderer: geometry

def test_three_oclock_hour_hand_right_minute_hand_up():
    img = canonical(3, 0)
    face = sample(img, 0.3 * R, 180.0)  # empty face below the centre
    assert face > 240
    assert sample(img, 0.3 * R, 90.0) < 40          # hour hand to the right, along the horizontal
    assert sample(img, 0.3 * R, 0.0) < 40           # minute hand up
    assert sample(img, 0.65 * R, 0.0) < 40          # minute hand is long ...
    assert sample(img, 0.65 * R, 90.0) > 240        # ... the hour hand is not
    for angle in (180.0, 270.0):
        assert sample(img, 0.3 * R, angle) > 240
    # Along the horizontal through the centre, the dark pixels are to the right.
    row = img[int(CENTRE), :]
    right = row[int(CENTRE) + 8: int(CENTRE + 0.45 * R)]
    left = row[int(CENTRE - 0.45 * R): int(CENTRE) - 8]
    assert right.max() < 40 and left.min() > 240


@pytest.mark.parametrize("hour,minute,hour_angle,minute_angle", [
    (6, 30, 195.0, 180.0), (12, 0, 0.0, 0.0), (0, 0, 0.0, 0.0), (9, 45, 292.5, 270.0),
    (1, 10, 35.0, 60.0), (10, 10, 305.0, 60.0), (4, 53, 146.5, 318.0)])
def test_hands_at_the_right_angles(hour, minute, hour_angle, minute_angle):
    img = canonical(hour, minute)
    # Beyond the hour hand's length only the minute hand is on the circle.
    assert angle_diff(dark_angle(img, 0.65 * R), minute_angle) < 1.0
    assert sample(img, 0.35 * R, hour_angle) < 40
    assert sample(img, 0.35 * R, (hour_angle + 180) % 360) > 240
    if angle_diff(hour_angle, minute_angle) > 30:  # hour hand alone once the minute hand is masked
        assert angle_diff(dark_angle(img, 0.35 * R, exclude=minute_angle), hour_angle) < 1.0


def test_six_thirty_both_hands_down():
    img = canonical(6, 30)
    below = img[int(CENTRE) + 8: int(CENTRE + 0.45 * R), int(CENTRE) - 6: int(CENTRE) + 7]
    above = img[int(CENTRE - 0.45 * R): int(CENTRE) - 8, int(CENTRE) - 6: int(CENTRE) + 7]
    assert below.min(axis=1).max() < 40   # every row below the centre crosses a hand
    assert above.min() > 240             # nothing above


def test_hour_hand_shorter_and_wider_than_minute_hand():
    img = canonical(3, 0)  # hour hand along +x, minute hand along +y
    hour_cross = img[:, int(CENTRE + 0.3 * R)]            # column across the hour hand
    minute_cross = img[int(CENTRE - 0.3 * R), :]          # row across the minute hand
    hour_w, minute_w = (255 - hour_cross).sum() / 255, (255 - minute_cross).sum() / 255
    # Inked width in pixels: rim and face edge contribute equally to both, so compare excess.
    base = (255 - img[:, int(CENTRE - 0.3 * R)]).sum() / 255   # same column on the empty side
    assert hour_w - base == pytest.approx(0.08 * R, abs=0.6)
    assert minute_w - base == pytest.approx(0.035 * R, abs=0.6)


def test_rotation_rotates_the_whole_clock():
    rotated = dataclasses.replace(C.CANONICAL_STYLE, rotation_deg=(90.0, 90.0))
    img = canonical(12, 0, rotated)
    assert sample(img, 0.3 * R, 90.0) < 40 and sample(img, 0.3 * R, 0.0) > 240
    # 90 deg clockwise about the canvas centre maps pixel centres onto pixel centres.
    for h, m in [(12, 0), (3, 0), (7, 41)]:
        ref = np.rot90(canonical(h, m), k=-1)
        diff = np.abs(canonical(h, m, rotated) - ref)
        assert diff.max() <= 1.0


def test_twelve_oclock_marker_is_distinct_from_ticks():
    img = canonical(6, 30)  # hands out of the way at the top and at 3 o'clock
    tick_out = R - 0.03 * R - 0.03 * R
    radius = tick_out - 0.03 * R  # inside the tick band
    angles = np.arange(-15.0, 15.0, 0.25)

    def ink_at(centre):
        return sum(255 - sample(img, radius, centre + a) for a in angles)

    # The triangle at 12 is far wider than the plain tick at 3 o'clock ...
    assert ink_at(0.0) > 2.0 * ink_at(90.0)
    # ... and the 12-o'clock marker sits alone: 3, 6 and 9 all look the same.
    assert ink_at(90.0) == pytest.approx(ink_at(270.0), rel=0.15)


@pytest.mark.parametrize("ticks,hour_ticks,three_only,minute_ticks", [
    ("lines12", True, False, False), ("lines60", True, False, True), ("dots12", True, False, False),
    ("dots60", True, False, True), ("lines4", True, True, False), ("none", False, False, False),
    ("bars12", True, False, False), ("squares12", True, False, False)])
@pytest.mark.slow
def test_tick_styles(ticks, hour_ticks, three_only, minute_ticks):
    img = canonical(6, 30, dataclasses.replace(C.CANONICAL_STYLE, tick_styles=(ticks,)))
    tick_out = R - 0.03 * R - 0.03 * R

    def ink_at(angle):
        return max(255 - sample(img, tick_out - r * R, angle + a)
                   for a in np.arange(-1.5, 1.51, 0.25) for r in (0.01, 0.02, 0.03, 0.045))

    assert ink_at(0.0) > 200                                   # the 12-o'clock marker, always
    assert (ink_at(90.0) > 150) == hour_ticks                  # 3 o'clock
    assert (ink_at(30.0) > 150) == (hour_ticks and not three_only)   # 1 o'clock
    assert (ink_at(6.0) > 100) == minute_ticks                 # minute 1
    assert ink_at(15.0) < 10 and ink_at(45.0) < 10             # between ticks: bare face


@pytest.mark.parametrize("shape,tip_over_base", [("rect", 1.0), ("rounded", 1.0), ("tapered", 0.3),
                                                ("flared", 1.5), ("lancet", 0.6)])
@pytest.mark.slow
def test_hand_shapes_change_width_along_the_hand(shape, tip_over_base):
    img = canonical(3, 0, dataclasses.replace(C.CANONICAL_STYLE, hand_shapes=(shape,)))
    # Minute hand straight up (0.8 R long): inked width across it near the base and near the tip.

    def width(frac):
        return (255 - img[int(round(CENTRE - frac * R)), int(CENTRE) - 12: int(CENTRE) + 13]).sum() / 255

    base, tip = width(0.15), width(0.7)
    # half-width at fraction f of the length: 1 - taper * f (taper 0.85 tapered, -0.6 flared, 0.5 lancet)
    assert tip / base == pytest.approx(tip_over_base, rel=0.2), (base, tip)


@pytest.mark.slow
def test_sampled_params_respect_style_and_heldout_is_disjoint():
    """Drawn as the renderer draws them (the style's numbers traced: one program for both styles)."""
    keys = jax.random.split(jax.random.key(0), 400)
    draw = jax.jit(jax.vmap(C.sample_clock_params, in_axes=(0, None)))
    for style in (C.TRAIN_STYLE, C.HELDOUT_STYLE):
        p = draw(keys, C.style_values(style))
        rot = np.degrees(np.asarray(p["rotation"]))
        assert rot.min() >= style.rotation_deg[0] and rot.max() <= style.rotation_deg[1]
        assert rot.max() - rot.min() > 300  # the whole circle is used
        shapes = {C.HAND_SHAPES[i] for i in np.asarray(p["hand_shape"])}
        ticks = {C.TICK_STYLES[i] for i in np.asarray(p["tick_style"])}
        assert shapes == set(style.hand_shapes) and ticks == set(style.tick_styles)
        ratio = np.asarray(p["hour_len"] / p["minute_len"])
        assert ratio.max() < 1.0
        assert np.all(np.asarray(p["gradient"]) >= style.gradient[0])
        assert np.all(np.asarray(p["gradient"]) <= style.gradient[1])
    assert not set(C.TRAIN_STYLE.tick_styles) & set(C.HELDOUT_STYLE.tick_styles)
    assert not set(C.TRAIN_STYLE.hand_shapes) & set(C.HELDOUT_STYLE.hand_shapes)


def test_traced_style_numbers_draw_what_the_static_style_draws():
    """style_values (one compiled renderer for every plain style) draws the static style's parameters: the same
    choices exactly, the same numbers up to an ulp (XLA folds constants it cannot fold in arguments); an
    extended style is refused (it has a program of its own)."""
    keys = jax.random.split(jax.random.key(4), 300)
    for style in (C.TRAIN_STYLE, C.HELDOUT_STYLE, dataclasses.replace(C.CANONICAL_STYLE, rotation_deg=(-30.0, 30.0))):
        static = jax.vmap(lambda k: C.sample_clock_params(k, style))(keys)
        traced = jax.vmap(C.sample_clock_params, in_axes=(0, None))(keys, C.style_values(style))
        assert set(static) == set(traced)
        for name in ("hand_shape", "tick_style"):
            np.testing.assert_array_equal(traced[name], static[name])
        for name in set(static) - {"hand_shape", "tick_style"}:
            np.testing.assert_allclose(traced[name], static[name], rtol=1e-6, atol=1e-6, err_msg=name)
    with pytest.raises(ValueError, match="extended style"):
        C.style_values(C.WIDE_STYLE)


def test_style_validation_names_the_field():
    with pytest.raises(ValueError, match="hour_len"):
        dataclasses.replace(C.TRAIN_STYLE, hour_len=(0.5, 0.75))
    with pytest.raises(ValueError, match="tick_styles"):
        dataclasses.replace(C.TRAIN_STYLE, tick_styles=("roman",))
    with pytest.raises(ValueError, match="rotation_deg"):
        dataclasses.replace(C.TRAIN_STYLE, rotation_deg=(10.0, 0.0))
    with pytest.raises(ValueError, match="noise_std must be a tuple"):  # lists are not hashable
        dataclasses.replace(C.TRAIN_STYLE, noise_std=[0.0, 0.1])
    style = C.ClockStyle.from_dict({"noise_std": [0.0, 0.1], "hand_shapes": ["tapered"]})
    assert style == dataclasses.replace(C.TRAIN_STYLE, noise_std=(0.0, 0.1), hand_shapes=("tapered",))
    assert hash(style) == hash(C.ClockStyle.from_dict(dataclasses.asdict(style)))
    with pytest.raises(ValueError, match="unknown fields"):
        C.ClockStyle.from_dict({"colour": (0, 1)})


def test_polynomial_angle_and_noise_helpers():
    x, y = np.random.default_rng(0).normal(size=(2, 20000)).astype(np.float32)
    x[:4], y[:4] = [0, 0, 1, -1], [1, -1, 0, 0]
    np.testing.assert_allclose(np.asarray(render.angle_cw(x, y)), np.arctan2(x, y), atol=2e-6)
    n1 = np.asarray(render.hash_noise(jax.random.key(1)))
    n2 = np.asarray(render.hash_noise(jax.random.key(2)))
    assert abs(n1.mean()) < 0.03 and abs(n1.std() - 1.0) < 0.03
    assert abs(np.corrcoef(n1.ravel(), n2.ravel())[0, 1]) < 0.03
    assert abs(np.corrcoef(n1[:, 1:].ravel(), n1[:, :-1].ravel())[0, 1]) < 0.03


# ---------------------------------------------------------------- contrast curve

def test_contrast_curve_monotone_and_darkens_dark_pixels_more():
    x = jnp.linspace(0.0, 1.0, 101)
    y = np.asarray(C.contrast_curve(x, 2.0))
    np.testing.assert_allclose(y, np.linspace(0, 1, 101) ** 2, atol=1e-6)
    assert np.all(np.diff(y) > 0)
    assert y[0] == 0.0 and y[-1] == pytest.approx(1.0)
    assert np.all(y[1:-1] < np.asarray(x)[1:-1])
    ratio = y[1:] / np.asarray(x)[1:]
    assert np.all(np.diff(ratio) > 0)  # relative darkening is largest for dark pixels
    np.testing.assert_allclose(np.asarray(C.contrast_curve(x, 1.0)), np.asarray(x), atol=1e-7)
    with pytest.raises(ValueError, match="gamma"):
        C.contrast_curve(x, 0.0)


def test_detrend_standardize_is_the_least_squares_residual_and_blind_to_contrast_and_ramps():
    x = np.random.default_rng(0).uniform(size=(2, 150, 150, 1)).astype(np.float32)
    y = np.asarray(C.detrend_standardize(x))
    rows, cols = np.meshgrid(np.arange(150.0), np.arange(150.0), indexing="ij")
    basis = np.stack([np.ones(150 * 150), rows.ravel(), cols.ravel()], 1)
    for i in range(2):
        coef, *_ = np.linalg.lstsq(basis, x[i, ..., 0].ravel().astype(np.float64), rcond=None)
        r = x[i, ..., 0].ravel() - basis @ coef
        np.testing.assert_allclose(y[i, ..., 0].ravel(), r / r.std(), atol=2e-5)
    ramp = (0.3 * (cols - 74.5) - 0.2 * (rows - 74.5)) / 75.0
    lit = 0.5 + 0.6 * (x - 0.5) + ramp[None, :, :, None]            # contrast 0.6, additive ramp
    np.testing.assert_allclose(np.asarray(C.detrend_standardize(lit.astype(np.float32))), y, atol=2e-5)
    # the renderer's multiplicative gradient: removed to first order (a 0.3 ramp leaves < 5 % of unit variance)
    clean = np.asarray(C.render_clock(jax.random.key(0), 4, 20, C.CANONICAL_STYLE), np.float32)[None, :, :, None] / 255
    lit = clean * (1.0 + 0.3 * (cols - 74.5)[None, :, :, None] / 75.0)
    d = np.asarray(C.detrend_standardize(lit)) - np.asarray(C.detrend_standardize(clean))
    plain = (lit - lit.mean()) / lit.std() - (clean - clean.mean()) / clean.std()   # standardising alone
    assert np.mean(d ** 2) < 0.05 and np.mean(d ** 2) < np.mean(plain ** 2) / 4, (np.mean(d ** 2), np.mean(plain ** 2))


# ---------------------------------------------------------------- datasets and files

@pytest.mark.slow
def test_clock_dataset_deterministic_prefix_and_splits_differ():
    a = C.clock_dataset(5, 12, C.TRAIN_STYLE, "train")
    b = C.clock_dataset(5, 300, C.TRAIN_STYLE, "train")  # two chunks
    t = C.clock_dataset(5, 12, C.TRAIN_STYLE, "test")
    assert a["x"].dtype == np.float32 and a["x"].shape == (12, 150, 150, 1)
    assert 0.0 <= a["x"].min() and a["x"].max() <= 1.0
    for k in ("x", "hour", "minute"):
        np.testing.assert_array_equal(a[k], b[k][:12])
    assert not np.array_equal(a["x"], t["x"])
    key = jax.random.fold_in(jax.random.key(5), 0)
    imgs, h, m = C.render_batch(key, 6, C.TRAIN_STYLE, 258)  # the second chunk continues the stream
    np.testing.assert_array_equal(b["x"][258:264, ..., 0], np.asarray(imgs) / np.float32(255.0))
    np.testing.assert_array_equal(b["hour"][258:264], np.asarray(h))
    np.testing.assert_array_equal(b["minute"][258:264], np.asarray(m))
    with pytest.raises(ValueError, match="split"):
        C.clock_dataset(5, 3, split="valid")


@pytest.mark.slow
def test_write_npy_dataset_round_trips(tmp_path):
    paths = C.write_npy_dataset(str(tmp_path), seed=2, n=20, test_fraction=0.25, heldout_n=3)
    assert sorted(os.path.basename(p) for p in paths.values()) == sorted(
        f"{s}_{n}.npy" for s in ("train", "test", "heldout") for n in ("images", "hours", "minutes"))
    images = np.load(tmp_path / "train_images.npy")
    assert images.dtype == np.uint8 and images.shape == (15, 150, 150)
    for split, n, style in (("train", 15, C.TRAIN_STYLE), ("test", 5, C.TRAIN_STYLE),
                            ("heldout", 3, C.HELDOUT_STYLE)):
        loaded = C.load_npy_dataset(str(tmp_path), split)
        expected = C.clock_dataset(2, n, style, split)
        for k in ("x", "hour", "minute"):
            np.testing.assert_array_equal(loaded[k], expected[k])
    with pytest.raises(FileNotFoundError, match="valid_images.npy"):
        C.load_npy_dataset(str(tmp_path), "valid")


def test_save_sample_grid_writes_labelled_png(tmp_path):
    images, hours, minutes = C.render_batch(jax.random.key(0), 6, C.TRAIN_STYLE, 0)
    path = str(tmp_path / "grid.png")
    C.save_sample_grid(path, images, hours, minutes, predicted=(hours, (minutes + 1) % 60), cols=3)
    png = np.asarray(Image.open(path).convert("L"))
    assert png.shape[0] > 200 and png.shape[1] > 300 and png.std() > 20
    assert report.clock_text(0, 5) == "12:05" and report.clock_text(13, 7) == "1:07"
    with pytest.raises(ValueError, match="hours"):
        C.save_sample_grid(path, images, hours[:3], minutes)


# ---------------------------------------------------------------- metrics

@pytest.mark.parametrize("a,b,expected", [
    ((3, 59), (4, 1), 2.0), ((11, 59), (0, 1), 2.0), ((0, 0), (6, 0), 360.0),
    ((12, 0), (0, 0), 0.0), ((1, 0), (11, 0), 120.0), ((6, 15), (6, 15), 0.0),
    ((23, 30), (0, 0), 30.0)])
def test_clock_error_hand_made_pairs(a, b, expected):
    err = cm.clock_error_minutes(jnp.array(a[0]), jnp.array(a[1]), jnp.array(b[0]), jnp.array(b[1]))
    assert float(err) == expected
    assert float(cm.clock_error_minutes(b[0], b[1], a[0], a[1])) == expected  # symmetric


def test_clock_metrics_per_example_against_brute_force():
    rng = np.random.default_rng(0)
    ph, th = rng.integers(0, 12, 500), rng.integers(0, 12, 500)
    pm, tm = rng.integers(0, 60, 500), rng.integers(0, 60, 500)
    got = jax.jit(cm.clock_metrics)(ph, pm, th, tm)
    # Brute force: walk the dial minute by minute both ways.
    t1, t2 = ph * 60 + pm, th * 60 + tm
    err = np.array([min((a - b) % 720, (b - a) % 720) for a, b in zip(t1, t2)])
    mdist = np.array([min((a - b) % 60, (b - a) % 60) for a, b in zip(pm, tm)])
    np.testing.assert_array_equal(np.asarray(got["clock_error_min"]), err)
    np.testing.assert_array_equal(np.asarray(got["hour_accuracy"]), ph == th)
    np.testing.assert_array_equal(np.asarray(got["minute_accuracy"]), pm == tm)
    np.testing.assert_array_equal(np.asarray(got["minute_within_1"]), mdist <= 1)
    np.testing.assert_array_equal(np.asarray(got["minute_within_5"]), mdist <= 5)
    assert float(cm.minute_distance(59, 1)) == 2.0 and float(cm.minute_distance(0, 30)) == 30.0
    # Float readings (periodic heads) work the same way.
    assert float(cm.clock_error_minutes(11.0, 59.5, 0.0, 0.25)) == pytest.approx(0.75)
    # Chance level: uniformly random readings are 180 minutes off on average.
    assert abs(err.mean() - 180.0) < 15.0
    with pytest.raises(ValueError, match="same shape"):
        cm.clock_error_minutes(jnp.zeros(3), jnp.zeros(3), jnp.zeros(4), jnp.zeros(4))


def test_wide_style_fields_are_validated_and_plain_styles_are_not_extended():
    assert not C.TRAIN_STYLE.extended and not C.CANONICAL_STYLE.extended and C.WIDE_STYLE.extended
    assert dataclasses.replace(C.TRAIN_STYLE, second_hand_prob=0.1).extended
    for field, bad, match in (("upright_prob", 1.5, "probability"), ("clutter", 2.0, "clutter must be an int"),
                              ("marker_probs", (0.7, 0.6), "sum <= 1"), ("aspect", (0.3, 1.0), "aspect"),
                              ("tone_gamma", (0.1, 1.0), "tone_gamma")):
        with pytest.raises(ValueError, match=match):
            dataclasses.replace(C.WIDE_STYLE, **{field: bad})
    assert C.ClockStyle.from_dict(dataclasses.asdict(C.WIDE_STYLE)) == C.WIDE_STYLE   # a config round trip
