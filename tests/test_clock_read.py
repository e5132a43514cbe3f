"""Reading a user's picture (jaxml/tasks/clock/read_clock.py): loading, cropping and resizing to the model's
input, and the reading of a trained run's clock saved as a PNG."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxml.cli.common import load_config
from jaxml.tasks import clock
from jaxml.tasks.clock import read_clock as rc
from jaxml.train.loop import train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _clocks(n=4):
    images, hour, minute = clock.render_batch(jax.random.key(11), n, clock.TRAIN_STYLE)
    return np.asarray(images), np.asarray(hour), np.asarray(minute)


def test_a_png_of_a_rendered_clock_is_the_rendered_input(tmp_path):
    """150 x 150 PNG -> exactly the rendered pixels; an RGB picture twice the size, padded to a wider frame,
    crops back to the clock's square and resizes to within a few grey levels of it."""
    images, _, _ = _clocks(1)
    path = tmp_path / "clock.png"
    Image.fromarray(images[0]).save(path)
    np.testing.assert_array_equal(rc.to_input(rc.load_image(str(path))), images[0])
    big = np.asarray(Image.fromarray(images[0]).resize((300, 300), Image.LANCZOS))
    wide = np.pad(big, ((0, 0), (50, 50)), constant_values=0)                      # 300 x 400, centred
    rgb = np.repeat(wide[..., None], 3, axis=-1)
    Image.fromarray(rgb).save(tmp_path / "wide.png")
    got = rc.to_input(rc.load_image(str(tmp_path / "wide.png")))
    assert got.shape == (150, 150)
    assert np.abs(got.astype(int) - images[0].astype(int)).mean() < 3.0
    assert rc.to_input(wide, crop="none").shape == (150, 150)                       # squashed, not cropped
    np.testing.assert_array_equal(rc.load_image(images[0].astype(np.float32) / 255), images[0])


def test_bad_images_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no image at"):
        rc.load_image(str(tmp_path / "missing.png"))
    with pytest.raises(ValueError, match="must be H x W"):
        rc.load_image(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="pixels in \\[0, 1\\]"):
        rc.load_image(np.full((8, 8), 3.0))
    with pytest.raises(ValueError, match="crop must be one of"):
        rc.to_input(np.zeros((8, 8), np.uint8), crop="left")
    with pytest.raises(FileNotFoundError, match="config.json missing"):
        rc.ClockReader(str(tmp_path))


def test_confidence_is_the_shortest_predicted_direction():
    out = {"abs_angles": jnp.array([[1.0, 0.0, 0.0, 0.5, 0.6, 0.8], [2.0, 0.0, 0.0, 3.0, 0.0, 1.5]])}
    np.testing.assert_allclose(rc.confidence(out), [0.5, 1.0])
    heads = {"hour": jnp.log(jnp.array([[0.5, 0.5] + [0.0] * 10]) + 1e-30),
             "minute": jnp.zeros((1, 60)).at[0, 3].set(1e3)}
    np.testing.assert_allclose(rc.confidence(heads), [0.5], rtol=1e-5)


@pytest.mark.slow
def test_read_clock_on_pngs_reads_what_the_run_reads(tmp_path):
    """A 20-step run (configs/clock.py:quick,tiny: the small trunk; any trained state will do): read_clock on
    its test clocks saved as PNGs gives, clock by clock, the time the run's own evaluation path reads (same
    restored model, same preprocessing), and the command line prints it."""
    c = load_config(os.path.join(ROOT, "configs", "clock.py") + ":quick,tiny")
    c.train.progress_bar = False
    c.reports = ()
    c.data.test_size = 8
    c.train.num_steps = c.train.eval_every = 20
    c.model.test_views = 1              # one view: 8x less to compile and run; the views have tests of their own
    workdir = str(tmp_path / "run")
    train_and_evaluate(c, workdir)
    reader = rc.ClockReader(workdir)
    assert reader.step == 20
    arrays = clock.rendered_arrays(c, clock.TRAIN_STYLE, "test", 8)
    pixels = np.round(clock.clock_dataset(0, 8, clock.TRAIN_STYLE, "test")["x"][..., 0] * 255).astype(np.uint8)
    want = clock.decode_absolute(jax.tree.map(jnp.asarray, reader.outputs(pixels)))
    x_direct = reader.model_outputs(arrays["x"])                                    # the evaluation's inputs
    np.testing.assert_allclose(x_direct["abs_angles"], reader.outputs(pixels)["abs_angles"], atol=1e-4)
    for i in range(8):
        path = tmp_path / f"clock{i}.png"
        Image.fromarray(pixels[i]).save(path)
        got = rc.read_clock(str(path), reader=reader)
        assert (got["hour"], got["minute"]) == (int(want[0][i]), int(want[1][i]))
        assert 0.0 <= got["confidence"] <= 1.0
    out = subprocess.run([sys.executable, os.path.join(ROOT, "launch", "read_clock.py"),
                          f"--image={tmp_path / 'clock0.png'}", f"--workdir={workdir}"],
                         capture_output=True, text=True, check=True).stdout
    h0 = int(want[0][0]) % 12
    assert out.splitlines()[0].startswith(f"{12 if h0 == 0 else h0}:{int(want[1][0]):02d}  confidence ")
