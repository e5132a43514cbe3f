"""Random translations (jaxml/data/augment.py): exact pixel moves, determinism in (seed, step), shards that
add up to the global batch, permuted twins shifted in image space, and config errors."""
import numpy as np
import pytest

from jaxml.data import augment, images, pipeline
from jaxml.tasks import toy  # noqa: F401  (registers the blobs dataset)
from jaxml.train import config as config_lib


def _source(n=64, batch=16, seed=0):
    rng = np.random.default_rng(1)
    x = rng.random((n, 28, 28, 1)).astype(np.float32)
    return pipeline.ArraySource({"x": x, "y": np.arange(n, dtype=np.int32)}, batch, seed=seed)


def test_shift_moves_pixels_and_fills_zeros():
    x = np.zeros((3, 6, 5, 1), np.float32)
    x[:, 2, 2, 0] = [1.0, 2.0, 3.0]
    out = augment.shift_images(x, np.array([2, -1, 0]), np.array([-1, 2, 0]))
    assert out.shape == x.shape
    assert out[0, 4, 1, 0] == 1.0 and out[1, 1, 4, 0] == 2.0 and out[2, 2, 2, 0] == 3.0
    assert np.count_nonzero(out) == 3
    full = np.ones((1, 4, 4, 1), np.float32)
    moved = augment.shift_images(full, np.array([1]), np.array([-2]))[0, :, :, 0]
    np.testing.assert_array_equal(moved, [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0]])


def test_batches_are_a_function_of_seed_and_step_and_shards_add_up():
    src = augment.ShiftAugmented(_source(), 2, seed=3)
    a, b = src.batch(5), src.batch(5)
    np.testing.assert_array_equal(a["x"], b["x"])
    np.testing.assert_array_equal(a["y"], _source().batch(5)["y"])          # labels and order untouched
    assert not np.array_equal(a["x"], _source().batch(5)["x"])              # the images did move
    assert not np.array_equal(src.batch(6)["x"], augment.ShiftAugmented(_source(), 2, seed=4).batch(6)["x"])
    dy, dx = src.shifts(5)
    assert dy.min() >= -2 and dy.max() <= 2 and len(set(dy.tolist())) > 1
    halves = [src.batch(5, shard=(i, 2))["x"] for i in range(2)]
    np.testing.assert_array_equal(np.concatenate(halves), a["x"])
    assert src.steps_per_epoch == _source().steps_per_epoch                 # delegated attributes


def test_permuted_twin_is_shifted_in_image_space():
    perm = images.pixel_permutation(0)
    plain = _source()
    permuted = pipeline.ArraySource({"x": images.apply_pixel_permutation(plain.arrays["x"], perm),
                                     "y": plain.arrays["y"]}, 16, seed=0)
    a = augment.ShiftAugmented(plain, 3, seed=1).batch(2)["x"]
    b = augment.ShiftAugmented(permuted, 3, seed=1, pixel_perm=perm).batch(2)["x"]
    np.testing.assert_array_equal(b, images.apply_pixel_permutation(a, perm))


@pytest.mark.parametrize("value,extra,match", [(-1, {}, "augment_shift must be"), (1.5, {}, "augment_shift must be"),
                                               (14, {}, "augment_shift must be"),
                                               (2, {"standardize": True}, "cannot be combined")])
def test_bad_augment_shift_is_a_config_error(value, extra, match):
    c = config_lib.base_config()
    c.model.name, c.model.widths, c.data.name = "mlp", (4,), "blobs"
    c.data.augment_shift = value
    for k, v in extra.items():
        c.data[k] = v
    with pytest.raises(config_lib.ConfigError, match=match):
        config_lib.validate(c)
