"""The independent clock renderer (jaxml/tasks/clock/independent.py): deterministic per seed, no code shared
with the training renderer's drawing, labels right (the hands cover the pixels they should), and its sets."""
import ast
import math
import os

import numpy as np
import pytest

from jaxml.tasks.clock import independent as ind

CLOCK_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "jaxml", "tasks", "clock")


def _imports(name):
    with open(os.path.join(CLOCK_DIR, name)) as f:
        tree = ast.parse(f.read())
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            mods.add("." if node.level else node.module.split(".")[0])
    return mods


def test_shares_no_code_path_with_the_training_renderer():
    """independent.py imports only numpy, PIL and the standard library (no jaxml, no jax), and the training
    renderer (render.py, styles.py) imports neither independent.py nor PIL."""
    assert _imports("independent.py") <= {"__future__", "io", "math", "numpy", "PIL"}, _imports("independent.py")
    for name in ("render.py", "styles.py"):
        with open(os.path.join(CLOCK_DIR, name)) as f:
            source = f.read()
        assert "independent" not in source and "PIL" not in _imports(name), name


def test_deterministic_per_seed_and_sets_differ():
    a = ind.independent_clock(3, 5, "turned")
    b = ind.independent_clock(3, 5, "turned")
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1:4] == b[1:4]
    assert not np.array_equal(a[0], ind.independent_clock(4, 5, "turned")[0])
    assert not np.array_equal(a[0], ind.independent_clock(3, 5, "upright")[0])
    small, large = ind.independent_set(1, 3, "upright"), ind.independent_set(1, 5, "upright")
    for k in small:  # a smaller n is a prefix
        np.testing.assert_array_equal(small[k], large[k][:3])
    assert small["images"].shape == (3, 150, 150) and small["images"].dtype == np.uint8


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="set must be one of"):
        ind.independent_set(0, 2, "sideways")
    with pytest.raises(ValueError, match="n must be a positive int"):
        ind.independent_set(0, 0)
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        ind.independent_clock(-1, 0)


def test_turned_and_upright_sets_and_cues():
    """Upright faces stay within 6 degrees of upright, turned ones use the whole circle, and every turned face
    carries a cue for 12 o'clock (numerals or a mark); some upright faces have none."""
    rng = np.random.default_rng(0)
    up = [ind.sample_design(rng, upright=True) for _ in range(300)]
    turned = [ind.sample_design(rng, upright=False) for _ in range(300)]
    assert max(abs(d["rotation_deg"]) for d in up) <= 6.0
    rot = np.array([d["rotation_deg"] for d in turned])
    assert rot.min() < 30 and rot.max() > 330
    assert all(d["numerals"] != "none" or d["top_mark"] != "none" for d in turned)
    assert any(d["numerals"] == "none" and d["top_mark"] == "none" for d in up)
    assert {d["hour_hand"] for d in turned} == set(ind.HANDS)


def _plain(rotation_deg, hand):
    """A design with nothing but the face and hands: white dial, black hands, grey flat background."""
    d = ind.sample_design(np.random.default_rng(1), upright=True)
    d.update(rotation_deg=rotation_deg, radius=0.9, offset=np.zeros(2), bezel="none", face=1.0, ink=0.0,
             numerals="none", ticks="none", top_mark="none", hour_hand=hand, minute_hand=hand, hour_len=0.5,
             minute_len=0.8, hour_width=0.09, minute_width=0.05, tail=0.0, second_hand=False,
             background="flat", background_level=0.5, tilt=0.0, ramp=0.0, vignette=0.0, highlight=0.0,
             blur=0.0, noise=0.0, jpeg_quality=0)
    return d


@pytest.mark.parametrize("hand", ind.HANDS)
@pytest.mark.parametrize("hour,minute,rotation_deg", [(3, 0, 0.0), (7, 40, 0.0), (10, 10, 90.0), (1, 25, 217.0)])
def test_hands_point_where_the_time_says(hand, hour, minute, rotation_deg):
    """Image direction of a hand = clock angle + rotation, clockwise from up: at 0.45 R along the minute hand
    and at 0.3 R along the hour hand the pixel is ink; 0.45 R the other way from the minute hand it is face."""
    img = ind.draw_clock(_plain(rotation_deg, hand), hour, minute)
    c, radius = (ind.SIZE - 1) / 2, 0.9 * ind.SIZE / 2

    def pixel(angle_deg, frac):
        a = math.radians(angle_deg + rotation_deg)
        return img[int(round(c - frac * radius * math.cos(a))), int(round(c + frac * radius * math.sin(a)))]

    m_angle, h_angle = 6 * minute, (hour % 12 + minute / 60) * 30
    assert pixel(m_angle, 0.45) < 100, "minute hand"
    assert pixel(h_angle, 0.3) < 100, "hour hand"
    if abs((m_angle - h_angle + 180) % 360 - 180) < 150:  # the hour hand is not opposite the minute hand
        assert pixel(m_angle + 180, 0.45) > 200, "face opposite the minute hand"


def test_full_designs_draw_and_keep_their_labels():
    """Whole random clocks (tilt, lighting, JPEG...) are uint8 images with varied content, labels in range."""
    s = ind.independent_set(0, 6, "turned")
    assert s["images"].std(axis=(1, 2)).min() > 5
    assert s["hour"].min() >= 0 and s["hour"].max() < 12 and s["minute"].max() < 60
    assert len({(int(h), int(m)) for h, m in zip(s["hour"], s["minute"])}) > 3
