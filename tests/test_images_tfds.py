"""The TFDS source of MNIST / Fashion-MNIST: mocked (no TF, no download) and, where possible, real.

The real comparison (TFDS arrays == IDX arrays) needs a prepared array_record copy: it runs when
TensorFlow is importable (the test prepares one offline from the IDX files) or when
JAXML_TFDS_DATA_DIR names a TFDS data dir already holding mnist/ and fashion_mnist/.
"""

import importlib.util
import os

import numpy as np
import pytest

from jaxml.data import images

tfds = pytest.importorskip("tensorflow_datasets")

HAS_TF = importlib.util.find_spec("tensorflow") is not None


@pytest.mark.parametrize("name", images.DATASETS)
def test_mock_tfds_source_matches_records(tmp_path, name):
    n = 13
    with tfds.testing.mock_data(num_examples=n):
        raw = images.load_raw(name, source="tfds", data_dir=tmp_path)
        d = images.load_image_dataset(name, source="tfds", data_dir=tmp_path)
        direct = {s: tfds.data_source(name, split=s, data_dir=tmp_path, download=False) for s in ("train", "test")}
        expected = {s: [direct[s][i] for i in range(n)] for s in direct}
    assert set(d) == {"train", "test"}
    for split, records in expected.items():
        order = images.tfds_record_order(split, n)  # record j holds original example order[j]
        want_x = np.zeros((n, 28, 28, 1), np.float32)
        want_y = np.zeros(n, np.int64)
        want_x[order] = np.stack([r["image"] for r in records]).astype(np.float32) / 255
        want_y[order] = [r["label"] for r in records]
        assert raw[split][0].dtype == np.uint8 and raw[split][0].shape == (n, 28, 28)
        assert d[split]["x"].dtype == np.float32 and d[split]["x"].shape == (n, 28, 28, 1)
        assert d[split]["y"].dtype == np.int32
        np.testing.assert_array_equal(d[split]["x"], want_x)
        np.testing.assert_array_equal(d[split]["y"], want_y)
    assert d["train"]["x"].max() > 0  # mock images are random, not blank


@pytest.mark.parametrize("split", ["train", "test"])
def test_record_order_matches_tfds_hasher(split):
    from tensorflow_datasets.core import hashing

    hasher = hashing.Hasher(split)  # the salt TFDS's split builder uses: the split name
    want = sorted(range(500), key=hasher.hash_key)
    np.testing.assert_array_equal(images.tfds_record_order(split, 500), want)
    assert not np.array_equal(images.tfds_record_order("train", 500), images.tfds_record_order("test", 500))


def test_mock_tfds_source_with_validation_and_permutation(tmp_path):
    with tfds.testing.mock_data(num_examples=40):
        d = images.load_image_dataset("mnist", source="tfds", data_dir=tmp_path, validation_fraction=0.25,
                                      permute_seed=3)
        plain = images.load_image_dataset("mnist", source="tfds", data_dir=tmp_path)
    assert len(d["train"]["y"]) == 30 and len(d["validation"]["y"]) == 10
    tr, va = images.stratified_validation_split(plain["train"]["y"], 0.25, 0)
    inverse = np.argsort(images.pixel_permutation(3))
    np.testing.assert_array_equal(images.apply_pixel_permutation(d["validation"]["x"], inverse),
                                  plain["train"]["x"][va])
    np.testing.assert_array_equal(images.apply_pixel_permutation(d["test"]["x"], inverse), plain["test"]["x"])
    np.testing.assert_array_equal(d["train"]["y"], plain["train"]["y"][tr])


def test_unprepared_tfds_dir_explains_how_to_prepare(tmp_path):
    with pytest.raises(images.DatasetNotFoundError, match="(?s)not readable from data_dir.*prepare_tfds.*manual_dir"):
        images.load_raw("fashion_mnist", source="tfds", data_dir=tmp_path)


@pytest.mark.skipif(HAS_TF, reason="TensorFlow is installed: preparation would run instead of failing")
def test_prepare_without_tensorflow_says_what_to_install(tmp_path):
    (tmp_path / "idx" / "mnist").mkdir(parents=True)
    for pair in images.IDX_FILES.values():
        for f in pair:
            (tmp_path / "idx" / "mnist" / f).write_bytes(b"")
    with pytest.raises(ImportError, match=r"needs TensorFlow \(pip install 'jaxml\[tf\]'\)"):
        images.prepare_tfds("mnist", tfds_data_dir=tmp_path / "tfds", idx_data_dir=tmp_path / "idx")


@pytest.fixture(scope="module")
def prepared_tfds_dir(tmp_path_factory):
    given = os.environ.get("JAXML_TFDS_DATA_DIR")
    if given:
        return given
    if not HAS_TF:
        pytest.skip("TFDS == IDX comparison NOT RUN: TensorFlow is not installed (needed once to prepare the "
                    "TFDS copy) and JAXML_TFDS_DATA_DIR is unset")
    idx_root = os.environ.get("JAXML_DATA_DIR")
    if not idx_root:
        pytest.skip("JAXML_DATA_DIR unset: cannot prepare TFDS from the IDX files")
    out = tmp_path_factory.mktemp("tfds")
    for name in images.DATASETS:
        images.prepare_tfds(name, tfds_data_dir=out, idx_data_dir=idx_root)
    return str(out)


@pytest.mark.parametrize("name", images.DATASETS)
def test_tfds_and_idx_give_identical_arrays(prepared_tfds_dir, name):
    idx_root = os.environ.get("JAXML_DATA_DIR")
    if not idx_root:
        pytest.skip("JAXML_DATA_DIR unset: no IDX files to compare with")
    from_tfds = images.load_raw(name, source="tfds", data_dir=prepared_tfds_dir)
    from_idx = images.load_raw(name, source="idx", data_dir=idx_root)
    for split in ("train", "test"):
        assert from_tfds[split][0].shape == (images.SPLIT_SIZES[split], 28, 28)
        np.testing.assert_array_equal(from_tfds[split][0], from_idx[split][0])
        np.testing.assert_array_equal(from_tfds[split][1], from_idx[split][1])
