"""The K-means launcher's inputs and outputs (``jaxml.cli.kmeans``, ``launch/kmeans.py``): CSV headers are
explicit, output paths are checked before any work, and the input image is never overwritten."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def cli():
    from jaxml.cli import kmeans as cli_kmeans
    return cli_kmeans


def test_launcher_csv_header_is_explicit(cli, tmp_path):
    """A CSV header is read only with --header: a ragged file names its bad line, a non-numeric first row says to
    pass --header, a non-numeric field is named by line and field."""
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("1,2,3\n4,5\n6,7\n")
    with pytest.raises(ValueError, match=r"ragged\.csv.*line 2 has 2 fields, the rows before it 3"):
        cli.load_matrix(str(ragged))
    named = tmp_path / "named.csv"
    named.write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(ValueError, match=r"named\.csv.*line 1 is not numeric \('a,b'\); if it is a header, "
                                         r"pass --header"):
        cli.load_matrix(str(named))
    np.testing.assert_array_equal(cli.load_matrix(str(named), header=True), [[1, 2], [3, 4]])
    word = tmp_path / "word.csv"
    word.write_text("1,2\n3,x\n")
    with pytest.raises(ValueError, match=r"line 2, field 2: 'x' is not a number"):
        cli.load_matrix(str(word))


def test_launcher_output_paths_are_checked_up_front(cli, tmp_path):
    image = tmp_path / "photo.png"
    image.write_bytes(b"not really")
    with pytest.raises(ValueError, match=r"is the input file .*refusing to overwrite it with the swatch"):
        cli.image_output(str(image), str(image))
    with pytest.raises(ValueError, match=r"refusing to overwrite"):
        cli.image_output(str(image), str(tmp_path / "." / "photo.png"))
    with pytest.raises(ValueError, match=r"folder .*nowhere.* does not exist"):
        cli.image_output(str(image), str(tmp_path / "nowhere" / "s.png"))
    with pytest.raises(ValueError, match=r"unknown image extension"):
        cli.image_output(str(image), str(tmp_path / "s.xyz"))
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ValueError, match=r"is a directory"):
        cli.image_output(str(image), str(tmp_path / "folder.png"))
    assert cli.image_output(str(image), None) == "photo_palette.png"      # in the current folder
    assert cli.data_output(str(tmp_path / "x.csv"), str(tmp_path / "fit")) == str(tmp_path / "fit.npz")
    data = tmp_path / "fit.npz"
    data.write_bytes(b"")
    with pytest.raises(ValueError, match="is the input file"):       # np.savez appends .npz: the real target
        cli.data_output(str(data), str(tmp_path / "fit"))
    if os.geteuid() != 0:                                             # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(ValueError, match="is not writable"):
                cli.image_output(str(image), str(locked / "s.png"))
        finally:
            locked.chmod(0o700)
    assert image.read_bytes() == b"not really"


def _launch(*args, cwd=None):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, str(ROOT / "launch" / "kmeans.py"), *args], capture_output=True,
                          text=True, env=env, timeout=300, cwd=cwd)


@pytest.mark.slow
def test_launcher_refuses_to_overwrite_the_image_and_skips_transparent_pixels(tmp_path):
    from PIL import Image
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[:20] = (200, 30, 30, 255)
    rgba[20:30] = (20, 120, 220, 255)   # the rest is transparent black: not a colour of the palette
    photo = tmp_path / "logo.png"
    Image.fromarray(rgba, "RGBA").save(photo)
    original = photo.read_bytes()
    r = _launch(f"--image={photo}", "--k=2", "--n_init=1", f"--out={photo}")
    assert r.returncode == 1
    assert "refusing to overwrite it with the swatch" in r.stderr.strip().splitlines()[-1]
    assert "iterations" not in r.stderr                              # failed before any clustering
    assert photo.read_bytes() == original
    r = _launch(f"--image={photo}", "--k=2", "--n_init=1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["#c81e1e  0.6667", "#1478dc  0.3333"]
    assert "(400 transparent, skipped)" in r.stderr
    assert photo.read_bytes() == original and (tmp_path / "logo_palette.png").is_file()
