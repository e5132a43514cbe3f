"""Launcher outputs are checked before the work: K-means --out and lr_find's workdir (issue #32, poor cases)."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from jaxml.cli import kmeans as cli
from jaxml.train.workdir import check_output_dir

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_out_onto_an_unrelated_file_is_refused_unless_overwrite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                                       # the default swatch goes to the current folder
    image = tmp_path / "photo.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(image)
    notes = tmp_path / "notes.png"
    notes.write_bytes(b"my notes")
    with pytest.raises(ValueError, match=r"exists and is not a swatch this command wrote: refusing to overwrite it; "
                                         r"pass --overwrite"):
        cli.image_output(str(image), str(notes))
    assert cli.image_output(str(image), str(notes), overwrite=True) == str(notes)
    assert notes.read_bytes() == b"my notes"
    # A swatch this command wrote may be replaced by the next run.
    swatch = tmp_path / "photo_palette.png"
    cli.save_swatch(np.zeros((3, 6, 3), np.uint8), str(swatch))
    assert cli.image_output(str(image), None) == "photo_palette.png"
    plain = tmp_path / "plain.png"
    Image.fromarray(np.zeros((3, 6, 3), np.uint8)).save(plain)           # an untagged PNG is someone else's
    with pytest.raises(ValueError, match="refusing to overwrite"):
        cli.image_output(str(image), str(plain))


def test_npz_out_is_replaced_only_when_it_holds_clusters(tmp_path):
    mine, other = tmp_path / "mine.npz", tmp_path / "other.npz"
    np.savez(mine, centers=np.zeros((2, 2)), labels=np.zeros(3))
    np.savez(other, weights=np.zeros(3))
    assert cli.data_output(str(tmp_path / "x.csv"), str(mine)) == str(mine)
    with pytest.raises(ValueError, match=r"other.npz' exists and is not a clusters this command wrote"):
        cli.data_output(str(tmp_path / "x.csv"), str(other))


def test_a_dangling_symlink_fails_before_the_work(tmp_path):
    image = tmp_path / "photo.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(image)
    link = tmp_path / "swatch.png"
    link.symlink_to(tmp_path / "gone" / "swatch.png")
    with pytest.raises(ValueError, match=r"is a symbolic link to .*gone/swatch.png', which does not exist"):
        cli.image_output(str(image), str(link))


def test_lr_find_checks_its_workdir_before_the_sweep(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    with pytest.raises(ValueError, match=r"--workdir .*taken' exists and is not a directory"):
        check_output_dir(str(taken), ("lr_find.png",))
    (tmp_path / "run" / "lr_find.png").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"lr_find.png' is a directory"):
        check_output_dir(str(tmp_path / "run"), ("lr_find.png", "lr_find.json"))
    check_output_dir(str(tmp_path / "new" / "deep"), ("lr_find.png",))
    assert os.path.isdir(tmp_path / "new" / "deep")
    r = subprocess.run([sys.executable, str(ROOT / "launch" / "lr_find.py"), "--config=configs/blobs_mlp.py",
                        f"--workdir={taken}", "--steps=5"], capture_output=True, text=True, cwd=ROOT, timeout=300,
                       env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert r.returncode == 1 and "exists and is not a directory" in r.stderr.strip().splitlines()[-1]
    assert "suggested lr" not in r.stdout and taken.read_text() == "a file"
