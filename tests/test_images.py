"""IDX reader and MNIST / Fashion-MNIST loader: known facts of the real files, errors on bad files."""

import gzip
import hashlib
import os
import re

import numpy as np
import pytest

from jaxml.data import idx, images

# ----------------------------------------------------------------------------- fixtures
# `data_dir` (the real datasets root, skipping loudly when JAXML_DATA_DIR is unset) is in conftest.py.


def _write_fake_dataset(root, name="mnist", n_train=40, n_test=12, seed=0):
    """Small but well-formed IDX files in root/name; returns the arrays written."""
    rng = np.random.default_rng(seed)
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        image_file, label_file = images.IDX_FILES[split]
        idx.write_idx(path / image_file, x)
        idx.write_idx(path / label_file, y)
        arrays[split] = (x, y)
    return arrays


# ----------------------------------------------------------------------------- IDX format


def test_idx_header_bytes_by_hand(tmp_path):
    p = tmp_path / "tiny-idx1-ubyte"
    idx.write_idx(p, np.array([1, 2, 3], np.uint8))
    assert p.read_bytes() == b"\x00\x00\x08\x01" + b"\x00\x00\x00\x03" + b"\x01\x02\x03"
    np.testing.assert_array_equal(idx.read_idx(p, expected_magic=2049), [1, 2, 3])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_roundtrip_big_endian(tmp_path, dtype):
    a = (np.arange(2 * 3 * 5) - 7).astype(dtype).reshape(2, 3, 5)
    p = tmp_path / "a.gz"
    idx.write_idx(p, a)
    raw = gzip.decompress(p.read_bytes())
    if np.dtype(dtype).itemsize > 1:  # stored big-endian: the second element (-6) byte-swapped on disk
        assert raw[16 : 16 + a.itemsize] == a.astype(np.dtype(dtype).newbyteorder(">")).ravel()[:1].tobytes()
    b = idx.read_idx(p, expected_shape=(None, 3, 5))
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative
    np.testing.assert_array_equal(a, b)


def test_bad_magic_names_file_and_expected(tmp_path):
    p = tmp_path / "train-images-idx3-ubyte.gz"
    idx.write_idx(p, np.zeros(5, np.uint8))  # a labels file (2049) where images (2051) are expected
    with pytest.raises(idx.IdxFormatError, match=r"train-images-idx3-ubyte\.gz: bad magic number 2049.*expected 2051"):
        idx.read_idx(p, expected_magic=idx.MAGIC_IMAGES_UINT8_3D)
    p.write_bytes(gzip.compress(b"\x12\x34\x56\x78" + bytes(20)))
    with pytest.raises(idx.IdxFormatError, match="bad magic number 0x12345678"):
        idx.read_idx(p)


def test_truncated_gzip_stream(tmp_path):
    p = tmp_path / "t10k-images-idx3-ubyte.gz"
    idx.write_idx(p, np.arange(3 * 28 * 28).astype(np.uint8).reshape(3, 28, 28))
    p.write_bytes(p.read_bytes()[:-30])
    with pytest.raises(idx.IdxFormatError, match=r"t10k-images-idx3-ubyte\.gz: truncated gzip stream"):
        idx.read_idx(p, expected_magic=idx.MAGIC_IMAGES_UINT8_3D)


def test_truncated_and_padded_data(tmp_path):
    p = tmp_path / "x.gz"
    header = b"\x00\x00\x08\x03" + b"".join(d.to_bytes(4, "big") for d in (3, 28, 28))
    p.write_bytes(gzip.compress(header + bytes(3 * 784 - 10)))
    with pytest.raises(idx.IdxFormatError,
                       match=r"x\.gz: truncated: header shape \(3, 28, 28\).*needs 2352 data bytes, found 2342"):
        idx.read_idx(p)
    p.write_bytes(gzip.compress(header + bytes(3 * 784 + 1)))
    with pytest.raises(idx.IdxFormatError, match="trailing bytes.*found 2353"):
        idx.read_idx(p)
    p.write_bytes(gzip.compress(b"\x00\x00\x08\x03\x00\x00"))
    with pytest.raises(idx.IdxFormatError, match="truncated header: 3 dimensions need 16"):
        idx.read_idx(p)


def test_not_gzip(tmp_path):
    p = tmp_path / "labels.gz"
    p.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07")  # valid IDX, but not gzipped
    with pytest.raises(idx.IdxFormatError, match=r"labels\.gz: not a valid gzip file"):
        idx.read_idx(p)


def test_wrong_shape(tmp_path):
    p = tmp_path / "img.gz"
    idx.write_idx(p, np.zeros((4, 27, 28), np.uint8))
    with pytest.raises(idx.IdxFormatError, match=r"img\.gz: header shape \(4, 27, 28\), expected \('N', 28, 28\)"):
        idx.read_idx(p, expected_shape=(None, 28, 28))


def test_checksum_mismatch_names_file_and_both_hashes(tmp_path):
    p = tmp_path / "train-labels-idx1-ubyte.gz"
    idx.write_idx(p, np.arange(10, dtype=np.uint8))
    good = hashlib.sha256(p.read_bytes()).hexdigest()
    assert idx.sha256_of_file(p) == good
    np.testing.assert_array_equal(idx.read_idx(p, sha256=good), np.arange(10))
    bad = "0" * 64
    with pytest.raises(idx.IdxChecksumError,
                       match=rf"train-labels-idx1-ubyte\.gz: SHA-256 mismatch: expected {bad}, got {good}"):
        idx.read_idx(p, sha256=bad)


# ----------------------------------------------------------------------------- loader on fake files


def test_fake_dataset_values_and_checksum_policy(tmp_path):
    arrays = _write_fake_dataset(tmp_path)
    # The published checksums are checked by default, so fake files are refused, naming the file.
    with pytest.raises(idx.IdxChecksumError,
                       match=r"mnist/train-images-idx3-ubyte\.gz: SHA-256 mismatch: expected 440fcabf"):
        images.load_image_dataset("mnist", data_dir=tmp_path)
    d = images.load_image_dataset("mnist", data_dir=tmp_path, verify_checksums=False)
    assert set(d) == {"train", "test"}
    for split, (x, y) in arrays.items():
        assert d[split]["x"].dtype == np.float32 and d[split]["x"].shape == (len(x), 28, 28, 1)
        np.testing.assert_array_equal(d[split]["x"][..., 0] * 255, x.astype(np.float32))
        assert d[split]["y"].dtype == np.int32
        np.testing.assert_array_equal(d[split]["y"], y)
    # Decoded once: the raw arrays come from the per-process cache and are read-only.
    r1 = images.load_raw("mnist", data_dir=tmp_path, verify_checksums=False)
    assert images.load_raw("mnist", data_dir=tmp_path, verify_checksums=False) is r1
    assert not r1["train"][0].flags.writeable
    # Returned float arrays are fresh: mutating them does not reach the cache.
    d["train"]["x"][:] = 0
    np.testing.assert_array_equal(
        images.load_image_dataset("mnist", data_dir=tmp_path, verify_checksums=False)["train"]["x"][..., 0] * 255,
        arrays["train"][0],
    )


def test_missing_directory_and_files_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.delenv("JAXML_DATA_DIR", raising=False)
    with pytest.raises(images.DatasetNotFoundError, match="JAXML_DATA_DIR.*fashion_mnist/.*train-images-idx3-ubyte.gz"):
        images.load_image_dataset("fashion_mnist")
    with pytest.raises(images.DatasetNotFoundError,
                       match=re.escape(f"{tmp_path}/mnist does not exist: put the original files")):
        images.load_image_dataset("mnist", data_dir=tmp_path)
    _write_fake_dataset(tmp_path)
    os.remove(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(images.DatasetNotFoundError, match=r"lacks \['t10k-labels-idx1-ubyte.gz'\]"):
        images.load_image_dataset("mnist", data_dir=tmp_path, verify_checksums=False)


def test_inconsistent_files(tmp_path):
    _write_fake_dataset(tmp_path)
    idx.write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", np.zeros(39, np.uint8))
    with pytest.raises(idx.IdxFormatError, match="holds 40 images but .*train-labels-idx1-ubyte.gz holds 39 labels"):
        images.load_raw("mnist", data_dir=tmp_path, verify_checksums=False)
    idx.write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", np.full(40, 10, np.uint8))
    with pytest.raises(ValueError, match=r"label 10 outside \[0, 10\)"):
        images.load_raw("mnist", data_dir=tmp_path, verify_checksums=False)


def test_bad_arguments():
    with pytest.raises(ValueError, match="dataset name 'cifar10' unknown"):
        images.load_image_dataset("cifar10")
    with pytest.raises(ValueError, match="source 'web' unknown"):
        images.load_raw("mnist", source="web", data_dir="/nonexistent")
    with pytest.raises(ValueError, match=r"validation_fraction must be a number in \[0, 1\), got 1.0"):
        images.load_image_dataset("mnist", validation_fraction=1.0)
    with pytest.raises(ValueError, match="permute_seed must be an integer"):
        images.pixel_permutation(-1)


# ----------------------------------------------------------------------------- splits and permutations


def test_stratified_split_by_hand():
    labels = np.array([0, 1, 0, 0, 1, 0, 1, 0])  # class 0: 5, class 1: 3
    tr, va = images.stratified_validation_split(labels, 0.5, seed=0)
    # n_val = 4; quotas 2.5 / 1.5 -> floors 2 / 1, one left over; equal remainders -> class 0 gets it.
    assert np.bincount(labels[va]).tolist() == [3, 1]
    assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(8)) and len(tr) == 4
    assert np.all(np.diff(tr) > 0) and np.all(np.diff(va) > 0)
    with pytest.raises(ValueError, match="gives 0 validation examples"):
        images.stratified_validation_split(labels, 0.01, seed=0)


def test_pixel_permutation_is_a_fixed_bijection():
    p = images.pixel_permutation(0)
    assert p.shape == (784,) and np.array_equal(np.sort(p), np.arange(784))
    # SplitMix64-based, so these values do not depend on the numpy version.
    assert p[:10].tolist() == [365, 719, 69, 173, 165, 493, 560, 506, 590, 690]
    assert np.array_equal(images.pixel_permutation(0), p)
    assert not np.array_equal(images.pixel_permutation(1), p)
    x = np.arange(2 * 784, dtype=np.float32).reshape(2, 28, 28, 1)
    xp = images.apply_pixel_permutation(x, p)
    assert xp.reshape(2, 784)[1, 0] == x.reshape(2, 784)[1, 365]  # flat_out[:, j] = flat_in[:, p[j]]
    np.testing.assert_array_equal(images.apply_pixel_permutation(xp, np.argsort(p)), x)
    with pytest.raises(ValueError, match="perm must be a permutation of range"):
        images.apply_pixel_permutation(x, np.zeros(784, int))


def test_permuted_fake_dataset_same_permutation_every_split(tmp_path):
    _write_fake_dataset(tmp_path, n_train=50)
    kw = dict(data_dir=tmp_path, verify_checksums=False, validation_fraction=0.2, split_seed=3)
    plain = images.load_image_dataset("mnist", **kw)
    permuted = images.load_image_dataset("mnist", permute_seed=7, **kw)
    inverse = np.argsort(images.pixel_permutation(7))
    for split in ("train", "validation", "test"):
        assert not np.array_equal(permuted[split]["x"], plain[split]["x"])
        np.testing.assert_array_equal(images.apply_pixel_permutation(permuted[split]["x"], inverse), plain[split]["x"])
        np.testing.assert_array_equal(permuted[split]["y"], plain[split]["y"])


# ----------------------------------------------------------------------------- real data


def test_mnist_known_facts(data_dir):
    d = images.load_image_dataset("mnist", data_dir=data_dir)
    assert d["train"]["x"].shape == (60000, 28, 28, 1) and d["test"]["x"].shape == (10000, 28, 28, 1)
    assert np.bincount(d["train"]["y"]).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(d["test"]["y"]).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert d["train"]["y"][:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert d["test"]["y"][:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    x = d["train"]["x"]
    assert x.min() == 0.0 and x.max() == 1.0
    mean, std = images.PIXEL_MEAN_STD["mnist"]
    assert abs(x.mean(dtype=np.float64) - mean) < 5e-5 and abs(x.std(dtype=np.float64) - std) < 5e-5
    assert abs(x.mean(dtype=np.float64) - 0.1306604762738429) < 1e-8  # float32(p / 255) rounding


def test_fashion_known_facts(data_dir):
    d = images.load_image_dataset("fashion_mnist", data_dir=data_dir)
    assert np.bincount(d["train"]["y"]).tolist() == [6000] * 10
    assert np.bincount(d["test"]["y"]).tolist() == [1000] * 10
    assert d["train"]["y"][:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert images.FASHION_MNIST_CLASS_NAMES[9] == "Ankle boot" and len(images.CLASS_NAMES["fashion_mnist"]) == 10
    x = d["train"]["x"]
    mean, std = images.PIXEL_MEAN_STD["fashion_mnist"]
    assert abs(x.mean(dtype=np.float64) - mean) < 5e-5 and abs(x.std(dtype=np.float64) - std) < 5e-5
    z = images.standardize(d["test"]["x"], "fashion_mnist")
    assert abs(z.mean(dtype=np.float64)) < 0.01 and abs(z.std(dtype=np.float64) - 1) < 0.01


def test_real_validation_split(data_dir):
    a = images.load_image_dataset("fashion_mnist", data_dir=data_dir, validation_fraction=0.15, split_seed=1)
    assert len(a["train"]["y"]) == 51000 and len(a["validation"]["y"]) == 9000
    assert np.bincount(a["validation"]["y"]).tolist() == [900] * 10  # stratified
    raw_x, raw_y = images.load_raw("fashion_mnist", data_dir=data_dir)["train"]
    tr, va = images.stratified_validation_split(raw_y, 0.15, 1)
    assert np.intersect1d(tr, va).size == 0 and np.array_equal(np.union1d(tr, va), np.arange(60000))
    np.testing.assert_array_equal(a["validation"]["x"][..., 0] * 255, raw_x[va])
    np.testing.assert_array_equal(a["train"]["x"][..., 0] * 255, raw_x[tr])
    b = images.load_image_dataset("fashion_mnist", data_dir=data_dir, validation_fraction=0.15, split_seed=1)
    np.testing.assert_array_equal(a["validation"]["y"], b["validation"]["y"])
    np.testing.assert_array_equal(a["validation"]["x"], b["validation"]["x"])
    _, va2 = images.stratified_validation_split(raw_y, 0.15, 2)
    assert 0 < np.intersect1d(va, va2).size < 9000 // 2  # another seed: another (random) split
    # MNIST classes are unequal: largest-remainder rounding still gives exactly round(0.05 * 60000).
    _, mnist_y = images.load_raw("mnist", data_dir=data_dir)["train"]
    _, vm = images.stratified_validation_split(mnist_y, 0.05, 0)
    counts = np.bincount(mnist_y[vm])
    assert counts.sum() == 3000 and np.all(np.abs(counts - 0.05 * np.bincount(mnist_y)) < 1)
