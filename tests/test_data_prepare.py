"""``jaxml-data`` (jaxml/data/prepare.py, jaxml/cli/data.py): a tiny archive of the official aclImdb layout
becomes the CSV files ``jaxml.data.imdb`` reads, with the reviews, ratings and order of the archive; tiny IDX
files land where ``jaxml.data.images`` reads them; bad downloads fail naming the file and write nothing; the
real data (``$JAXML_DATA_DIR``) round-trips to the published bytes; launchers leave no workdir on missing data."""
import csv
import gzip
import hashlib
import io
import os
import pathlib
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from jaxml.data import idx, images, imdb, prepare

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = os.environ.get("JAXML_DATA_DIR")

# (member, text): pos/neg of both splits, ids out of order (10 after 2), quotes, commas and non-ASCII text, and
# the members the conversion skips (unsup reviews, url lists, the vocabulary).
MEMBERS = [
    ("aclImdb/README", "Large Movie Review Dataset v1.0\n"),
    ("aclImdb/imdb.vocab", "the\nand\n"),
    ("aclImdb/train/pos/10_8.txt", 'A "great" film, truly.<br /><br />Caf\u00e9 scenes!'),
    ("aclImdb/train/pos/2_9.txt", "Bromwell High is a cartoon comedy."),
    ("aclImdb/train/neg/0_3.txt", "Story of a man who has unnatural feelings for a pig."),
    ("aclImdb/train/neg/1_1.txt", "Dull."),
    ("aclImdb/train/unsup/0_0.txt", "not labelled"),
    ("aclImdb/train/urls_pos.txt", "http://www.imdb.com/title/tt0453418/usercomments\n"),
    ("aclImdb/test/pos/0_10.txt", "Loved it"),
    ("aclImdb/test/neg/0_2.txt", "Hated it, \"really\""),
]


def make_archive(path, members=MEMBERS):
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members:
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_imdb_archive_becomes_the_csv_jaxml_reads(tmp_path):
    archive = make_archive(tmp_path / "aclImdb_v1.tar.gz")
    done = prepare.prepare_imdb(archive, tmp_path / "data")
    folder = tmp_path / "data" / "imdb"
    assert done == {str(folder / f): "written" for f in ("aclImdb_train.csv.gz", "aclImdb_test.csv.gz",
                                                         "aclImdb_README.txt")}
    with gzip.open(folder / "aclImdb_train.csv.gz", "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["path"], r["id"], r["rating"], r["label"], r["sentiment"]) for r in rows] == [
        ("train/pos/2_9.txt", "2", "9", "pos", "1"), ("train/pos/10_8.txt", "10", "8", "pos", "1"),
        ("train/neg/0_3.txt", "0", "3", "neg", "0"), ("train/neg/1_1.txt", "1", "1", "neg", "0")]
    assert rows[1]["review"] == 'A "great" film, truly.<br /><br />Caf\u00e9 scenes!'
    train = imdb.load_imdb("train", data_dir=tmp_path / "data")            # the loader's own checks pass
    assert train.texts.to_pylist() == [r["review"] for r in rows]
    np.testing.assert_array_equal(train.labels, [1, 1, 0, 0])
    np.testing.assert_array_equal(train.ids, [2, 10, 0, 1])
    test = imdb.load_imdb("test", data_dir=tmp_path / "data")
    assert test.texts.to_pylist() == ["Loved it", 'Hated it, "really"']
    assert (folder / "aclImdb_README.txt").read_text() == MEMBERS[0][1]
    raw = (folder / "aclImdb_test.csv.gz").read_bytes()
    assert raw[:10] == bytes.fromhex("1f8b08000000000002ff")  # no name, MTIME 0, level 9
    # The same archive again: the same bytes, kept.
    assert set(prepare.prepare_imdb(archive, tmp_path / "data").values()) == {"kept"}


@pytest.mark.parametrize("member, text, message", [
    ("aclImdb/train/neg/5_8.txt", "x", r"aclImdb/train/neg/5_8.txt: rating 8 disagrees with 'neg'"),
    ("aclImdb/train/pos/5_7.txt", "two\nlines", r"aclImdb/train/pos/5_7.txt: a review holds a line break"),
])
def test_imdb_bad_member_is_named_and_nothing_is_written(tmp_path, member, text, message):
    archive = make_archive(tmp_path / "a.tar.gz", MEMBERS + [(member, text)])
    with pytest.raises(ValueError, match=message):
        prepare.prepare_imdb(archive, tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_imdb_wrong_archive_fails_naming_it(tmp_path, monkeypatch):
    no_test = make_archive(tmp_path / "a.tar.gz", [m for m in MEMBERS if "/test/" not in m[0]])
    with pytest.raises(ValueError, match=r"no reviews under aclImdb/test/\{pos,neg\}"):
        prepare.prepare_imdb(no_test, tmp_path / "data")
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    with pytest.raises(ValueError, match=r"junk.tar.gz: not a readable aclImdb tar archive"):
        prepare.prepare_imdb(junk, tmp_path / "data")
    bad_utf8 = tmp_path / "b.tar.gz"
    with tarfile.open(bad_utf8, "w:gz") as tar:
        info = tarfile.TarInfo("aclImdb/train/pos/0_9.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"\xff\xfe"))
    with pytest.raises(ValueError, match=r"aclImdb/train/pos/0_9.txt: not UTF-8"):
        prepare.prepare_imdb(bad_utf8, tmp_path / "data")
    assert not (tmp_path / "data").exists()
    monkeypatch.delenv("JAXML_DATA_DIR", raising=False)
    with pytest.raises(ValueError, match=r"--data_dir=DIR .* \$JAXML_DATA_DIR"):
        prepare.prepare_imdb(make_archive(tmp_path / "a.tar.gz"), None)


def test_a_different_file_already_there_is_never_replaced(tmp_path):
    archive = make_archive(tmp_path / "a.tar.gz")
    target = tmp_path / "data" / "imdb" / "aclImdb_test.csv.gz"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="aclImdb_test.csv.gz exists with other contents"):
        prepare.prepare_imdb(archive, tmp_path / "data")
    assert target.read_bytes() == b"mine"
    assert [p.name for p in target.parent.iterdir()] == ["aclImdb_test.csv.gz"]   # no partial files left


def tiny_idx(folder, n_train=6, n_test=4, seed=0):
    """The four IDX .gz files of a tiny MNIST-shaped dataset; returns the arrays."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x, y = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)
        for file, a in zip(images.IDX_FILES[split], (x, y)):
            idx.write_idx(folder / file, a)
        arrays[split] = (x, y)
    return arrays


def test_idx_files_land_where_the_image_loader_reads_them(tmp_path):
    arrays = tiny_idx(tmp_path / "downloads")
    done = prepare.prepare_idx("fashion_mnist", tmp_path / "downloads", tmp_path / "data", verify=False)
    assert sorted(os.path.basename(p) for p in done) == sorted(f for p in images.IDX_FILES.values() for f in p)
    got = images.load_raw("fashion_mnist", data_dir=tmp_path / "data", verify_checksums=False)
    for split, (x, y) in arrays.items():
        np.testing.assert_array_equal(got[split][0], x)
        np.testing.assert_array_equal(got[split][1], y)


def test_idx_checksum_header_and_count_faults_are_named_and_nothing_is_written(tmp_path):
    src = tmp_path / "downloads"
    tiny_idx(src)
    with pytest.raises(idx.IdxChecksumError, match=r"train-images-idx3-ubyte.gz: SHA-256 [0-9a-f]{64} is not the "
                                                    r"published 440fcabf"):
        prepare.prepare_idx("mnist", src, tmp_path / "data")
    idx.write_idx(src / "t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(idx.IdxFormatError, match=r"test: 4 images but 3 labels"):
        prepare.prepare_idx("mnist", src, tmp_path / "data", verify=False)
    (src / "t10k-labels-idx1-ubyte.gz").write_bytes(b"plain text")
    with pytest.raises(idx.IdxFormatError, match=r"t10k-labels-idx1-ubyte.gz: not a gzip file"):
        prepare.prepare_idx("mnist", src, tmp_path / "data", verify=False)
    (src / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"t10k-labels-idx1-ubyte.gz not found"):
        prepare.prepare_idx("mnist", src, tmp_path / "data", verify=False)
    with pytest.raises(ValueError, match="dataset 'cifar10' unknown"):
        prepare.prepare_idx("cifar10", src, tmp_path / "data")
    assert not (tmp_path / "data").exists()


def _launch(script, *args, env=None, cwd=None):
    env = dict(os.environ if env is None else env, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, str(ROOT / "launch" / script), *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


@pytest.mark.slow
def test_command_prepares_imdb_and_mnist_and_checks(tmp_path):
    archive = make_archive(tmp_path / "aclImdb_v1.tar.gz")
    tiny_idx(tmp_path / "mnist_downloads")
    env = dict(os.environ, JAXML_DATA_DIR=str(tmp_path / "data"))
    r = _launch("data.py", "imdb", f"--from={archive}", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == f"written  {tmp_path / 'data' / 'imdb' / 'aclImdb_train.csv.gz'}"
    r = _launch("data.py", "mnist", f"--from={tmp_path / 'mnist_downloads'}", env=env)
    assert r.returncode == 1 and "is not the published" in r.stderr.strip().splitlines()[-1]
    r = _launch("data.py", "mnist", f"--from={tmp_path / 'mnist_downloads'}", "--noverify", env=env)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 4, r.stderr
    r = _launch("data.py", "check", env=env)
    status = dict(line.split(None, 1)[::-1] for line in r.stdout.splitlines()[:-1])
    assert status[str(tmp_path / "data" / "mnist" / "t10k-labels-idx1-ubyte.gz")] == "differs"
    assert status[str(tmp_path / "data" / "fashion_mnist" / "t10k-labels-idx1-ubyte.gz")] == "missing"
    assert r.stdout.splitlines()[-1] == "0 of 10 files as published"
    for bad, message in ((("imdb",), "needs --from=aclImdb_v1.tar.gz"), (("cifar",), "give one command of"),
                         (("imdb", f"--from={tmp_path / 'nope.tar.gz'}"), "no such file or folder")):
        r = _launch("data.py", *bad, env=env)
        assert r.returncode == 1 and message in r.stderr.strip().splitlines()[-1], r.stderr


@pytest.mark.slow
def test_naive_bayes_launcher_leaves_no_workdir_on_missing_data(tmp_path):
    env = dict(os.environ, JAXML_DATA_DIR=str(tmp_path / "empty"))
    r = _launch("naive_bayes.py", f"--config={ROOT / 'configs' / 'imdb_nb.py'}:quick",
                f"--workdir={tmp_path / 'run'}", env=env)
    assert r.returncode == 1 and "aclImdb_train.csv.gz not found" in r.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.skipif(not DATA, reason="JAXML_DATA_DIR not set: the real IMDB and MNIST files are not here")
def test_real_files_round_trip_to_the_published_bytes(tmp_path):
    """The shared IMDB test CSV's rows, written by the converter, are the published file bit for bit; the real
    MNIST files pass the published checksums and are copied unchanged."""
    path = pathlib.Path(DATA) / "imdb" / "aclImdb_test.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    data = prepare.imdb_csv_bytes(rows)
    assert hashlib.sha256(data).hexdigest() == prepare.IMDB_CSV_SHA256["aclImdb_test.csv.gz"]
    assert data == path.read_bytes()
    done = prepare.prepare_idx("mnist", pathlib.Path(DATA) / "mnist", tmp_path)
    assert set(done.values()) == {"written"}
    status = prepare.check(tmp_path)
    assert [s for p, s in status.items() if "/mnist/" in p] == ["ok"] * 4
