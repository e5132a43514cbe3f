"""Image classification on MNIST and Fashion-MNIST (and their pixel-permuted twins) and any TFDS image dataset:
importing this package registers the ``mnist`` and ``fashion_mnist`` dataset builders and the ``tfds:<name>``
family (tfds_builder.py); ``image_config`` is the config family the
``configs/{mnist,fashion}_{mlp,cnn}.py`` experiments share; ``python -m jaxml.tasks.images.results`` trains
them and prints the results table (README.md beside this file)."""
from __future__ import annotations

from jaxml import data
from jaxml.data import images, pipeline
from jaxml.data.augment import ShiftAugmented
from jaxml.tasks.images.config import image_config
from jaxml.tasks.images.tfds_builder import augmented, build_tfds_images, limit_train

__all__ = ["build_images", "build_tfds_images", "image_config"]


def build_images(config) -> pipeline.Splits:
    """MNIST / Fashion-MNIST from IDX files (``$JAXML_DATA_DIR/<name>``) or TFDS (jaxml/data/images.py).
    Fields: source, data_dir, validation_fraction, split_seed, permute_seed (< 0: none), standardize,
    train_limit (> 0: first N training examples, for smoke runs), augment_shift (> 0: random translations
    of training images by up to that many pixels, jaxml/data/augment.py), augment_crop / augment_flip (random
    crops of the zero-padded image / mirroring, tfds_builder.augmented)."""
    d = config.data
    permute = int(d.get("permute_seed", -1))
    splits = images.load_image_dataset(
        d.name, source=d.get("source", "idx"), data_dir=d.get("data_dir") or None,
        validation_fraction=float(d.get("validation_fraction", 0.0)), split_seed=int(d.get("split_seed", 0)),
        permute_seed=None if permute < 0 else permute)
    if d.get("standardize", False):
        for arrays in splits.values():
            arrays["x"] = images.standardize(arrays["x"], d.name)
    train, splits = limit_train(splits.pop("train"), splits, int(d.get("train_limit", 0)), d.eval_batch_size)
    source = augmented(pipeline.ArraySource(train, d.batch_size, seed=config.seed), config)
    shift = d.get("augment_shift", 0)
    if shift:
        source = ShiftAugmented(source, shift, seed=config.seed,
                                pixel_perm=None if permute < 0 else images.pixel_permutation(permute))
    return pipeline.Splits(train=source, eval=splits, input_shape=images.IMAGE_SHAPE,
                           info={"class_names": list(images.CLASS_NAMES[d.name])})


for _name in images.DATASETS:
    data.register(_name, build_images)
data.register("tfds:", build_tfds_images)
