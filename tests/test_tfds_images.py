"""Any TFDS image dataset by name (``tfds:<name>``, jaxml/data/tfds_images.py) under tfds.testing.mock_data
(nothing downloads): arrays == the records, per-channel statistics, the on-disk cache, a mock cifar10 config
that trains a step; and the jitted crop / flip augmentation: == a numpy crop of the drawn offsets, shards and
resumes see the same images."""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml import data
from jaxml.data import augment, pipeline, tfds_images
from jaxml.tasks import images as images_task  # noqa: F401  (registers the tfds: family)
from jaxml.train import config as config_lib
from jaxml.train import train_and_evaluate

tfds = pytest.importorskip("tensorflow_datasets")


def test_mock_cifar10_arrays_statistics_and_cache(tmp_path):
    n = 12
    with tfds.testing.mock_data(num_examples=n):
        got = tfds_images.load("cifar10", data_dir=str(tmp_path / "tfds"), cache_dir=str(tmp_path / "cache"))
        sources = {s: tfds.data_source("cifar10", split=s, data_dir=str(tmp_path / "tfds")) for s in ("train", "test")}
        records = {s: [src[i] for i in range(n)] for s, src in sources.items()}
        names = tuple(sources["train"].dataset_info.features["label"].names)
    assert set(got.splits) == {"train", "test"} and got.image_shape == (32, 32, 3)
    assert len(got.class_names) == 10 and got.class_names == names
    for split, recs in records.items():
        np.testing.assert_array_equal(got.splits[split][0], np.stack([r["image"] for r in recs]))
        np.testing.assert_array_equal(got.splits[split][1], [r["label"] for r in recs])
    pixels = np.stack([r["image"] for r in records["train"]]).astype(np.float64) / 255
    np.testing.assert_allclose(got.mean, pixels.mean((0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(got.std, pixels.std((0, 1, 2)), rtol=1e-5)
    z = tfds_images.standardize(got.splits["train"][0], got)
    np.testing.assert_allclose(z.mean((0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(z.std((0, 1, 2)), 1, atol=1e-4)
    # Outside the mock nothing is readable: this load comes from the cache file alone.
    tfds_images.load.cache_clear()
    again = tfds_images.load("cifar10", data_dir=str(tmp_path / "tfds"), cache_dir=str(tmp_path / "cache"))
    np.testing.assert_array_equal(again.splits["test"][0], got.splits["test"][0])
    np.testing.assert_array_equal(again.mean, got.mean)
    assert again.class_names == got.class_names


def test_cache_is_keyed_by_the_dataset_version(tmp_path, monkeypatch):
    kwargs = {"data_dir": str(tmp_path / "tfds"), "cache_dir": str(tmp_path / "cache")}
    with tfds.testing.mock_data(num_examples=4):
        assert tfds_images.dataset_version("cifar10", None) == str(tfds.builder("cifar10").version)
        tfds_images.load("cifar10", **kwargs)
    tfds_images.load.cache_clear()
    monkeypatch.setattr(tfds_images, "dataset_version", lambda name, data_dir: "99.0.0")
    with pytest.raises(FileNotFoundError, match="is not readable"):   # not the cache of the other version
        tfds_images.load("cifar10", **kwargs)
    tfds_images.load.cache_clear()


def test_names_and_unprepared_dataset_errors(tmp_path):
    assert "tfds:cifar10" in data.BUILDERS and "tfds:" in data.BUILDERS and "cifar10" not in data.BUILDERS
    with pytest.raises(ValueError, match="name a TFDS dataset after 'tfds:'"):
        tfds_images.dataset_name("tfds:")
    with pytest.raises(FileNotFoundError, match="(?s)'cifar10' split 'train' is not readable.*download_and_prepare"):
        tfds_images.load("cifar10", data_dir=str(tmp_path / "empty"), cache_dir=str(tmp_path / "cache"))


def cifar_config(tmp_path):
    c = config_lib.base_config()
    c.model.name = "resnet"
    c.model.stages = (1, 1)
    c.model.widths = (4, 8)
    c.model.conv_impl = "xla"
    c.data.name = "tfds:cifar10"
    c.data.data_dir = str(tmp_path / "tfds")
    c.data.cache_dir = str(tmp_path / "cache")
    c.data.validation_fraction = 0.25
    c.data.augment_crop = 4
    c.data.augment_flip = True
    c.data.batch_size = 8
    c.data.eval_batch_size = 8
    c.train.num_steps = 2
    c.train.progress_bar = False
    return c


def test_mock_cifar10_config_trains_a_step(tmp_path):
    c = cifar_config(tmp_path)
    with tfds.testing.mock_data(num_examples=32):
        splits = data.build(c)
        final = train_and_evaluate(c, str(tmp_path / "run")).final
    assert splits.input_shape == (32, 32, 3) and set(splits.eval) == {"validation", "test"}
    assert len(splits.eval["validation"]["y"]) == 8 and splits.train.num_examples == 24
    assert isinstance(splits.train, augment.CropFlipAugmented)
    assert 0.0 <= final["test"]["accuracy"] <= 1.0 and np.isfinite(final["test"]["loss"])
    c.data.augment_crop = -1
    with pytest.raises(ValueError, match="config.data.augment_crop must be a whole number"):
        data.build(c)


# ----------------------------------------------------------------------------- crop + flip
def _numpy_crop_flip(x, dy, dx, mirror, pad):
    h, w = x.shape[1:3]
    p = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    out = np.stack([p[b, dy[b]:dy[b] + h, dx[b]:dx[b] + w] for b in range(len(x))])
    return np.where(np.asarray(mirror)[:, None, None, None], out[:, :, ::-1], out)


def test_crop_flip_equals_a_numpy_crop_of_its_draws():
    x = np.random.default_rng(0).normal(size=(64, 6, 5, 2)).astype(np.float32)
    ids = jnp.arange(64)
    out = np.asarray(augment.crop_flip(jnp.asarray(x), 3, 7, ids, pad=2, flip=True))
    dy, dx, mirror = (np.asarray(a) for a in augment.crop_flip_draws(3, 7, ids, 2, True))
    np.testing.assert_array_equal(out, _numpy_crop_flip(x, dy, dx, mirror, 2))
    assert set(dy) == set(dx) == set(range(5)) and 16 < mirror.sum() < 48          # every offset; about half
    no_flip = augment.crop_flip_draws(3, 7, ids, 2, False)[2]
    assert not np.asarray(no_flip).any()
    first = np.asarray(augment.crop_flip(jnp.asarray(x[:4]), 3, 7, ids[10:14], pad=2, flip=True))
    np.testing.assert_array_equal(first, _numpy_crop_flip(x[:4], dy[10:14], dx[10:14], mirror[10:14], 2))


def test_crop_flip_source_is_a_function_of_seed_step_and_index():
    arrays = {"x": np.random.default_rng(1).normal(size=(40, 4, 4, 1)).astype(np.float32), "y": np.arange(40)}
    src = augment.CropFlipAugmented(pipeline.ArraySource(arrays, 8, seed=0), pad=1, flip=True, seed=5)
    whole = src.batch(3)
    halves = [src.batch(3, shard=(i, 2))["x"] for i in range(2)]
    np.testing.assert_array_equal(np.concatenate(halves), whole["x"])            # 2 processes == 1
    np.testing.assert_array_equal(augment.CropFlipAugmented(pipeline.ArraySource(arrays, 8, seed=0), pad=1, flip=True,
                                                            seed=5).batch(3)["x"], whole["x"])   # a resumed run
    assert not np.array_equal(src.batch(4)["x"], src.source.batch(4)["x"])
    with pytest.raises(ValueError, match="crop padding must be a whole number"):
        augment.CropFlipAugmented(src.source, pad=0, flip=False, seed=0)
