"""launch/kmeans.py end to end: a palette printed largest first with its swatch, a CSV matrix clustered,
and each failure (k > distinct points, NaN, an unreadable image) exits 1 with the reason on the last line."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow   # each test runs the launcher in a subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = os.path.join(ROOT, "launch", "kmeans.py")
COLOURS = np.array([[200, 30, 30], [250, 250, 250], [20, 120, 220]], np.uint8)  # 50%, 30%, 20%


def run(*args, cwd=None):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, LAUNCH, *args], capture_output=True, text=True, env=env, timeout=300,
                          cwd=cwd)


@pytest.fixture
def flat_png(tmp_path):
    img = np.zeros((50, 40, 3), np.uint8)  # fits the 200x400 thumbnail: pixels kept as they are
    img[:25], img[25:40], img[40:] = COLOURS
    path = tmp_path / "flat.png"
    Image.fromarray(img).save(path)
    return path


def test_palette_lines_and_swatch_in_the_current_folder(flat_png, tmp_path):
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    r = run(f"--image={flat_png}", "--k=3", "--n_init=2", cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["#c81e1e  0.5000", "#fafafa  0.3000", "#1478dc  0.2000"]
    assert not (flat_png.parent / "flat_palette.png").exists()       # nothing written beside the image
    swatch = np.asarray(Image.open(cwd / "flat_palette.png").convert("RGB"))
    np.testing.assert_array_equal(swatch[50, [50, 150, 250]], COLOURS)


def test_csv_matrix_with_header_is_clustered(tmp_path):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (30, 2)), rng.normal(5, 0.1, (10, 2))])
    path = tmp_path / "x.csv"
    np.savetxt(path, x, delimiter=",", header="a,b", comments="")
    out = tmp_path / "fit.npz"
    r = run(f"--data={path}", "--header", "--k=2", f"--out={out}")   # headers are explicit (no guessing)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [line.split()[2] for line in lines] == ["0.7500", "0.2500"]
    saved = np.load(out)
    assert np.bincount(saved["labels"]).tolist() in ([30, 10], [10, 30])
    np.testing.assert_allclose(sorted(saved["centers"][:, 0]), [x[:30, 0].mean(), x[30:, 0].mean()], rtol=1e-5)


def test_failures_exit_1_with_the_reason_last(flat_png, tmp_path):
    bad = tmp_path / "nan.npy"
    np.save(bad, np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, 4.0]], np.float32))
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    cases = [((f"--image={flat_png}", "--k=5"), "k=5 is larger than the number of distinct points (3)"),
             ((f"--data={bad}", "--k=2"), "x has 1 rows with NaN or inf (first: row 1"),
             ((f"--image={text}",), "cannot read image"),
             ((f"--data={tmp_path / 'missing.csv'}",), "does not exist")]
    for args, reason in cases:
        r = run(*args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert reason in r.stderr.strip().splitlines()[-1], (args, r.stderr)
