"""The ``tfds:<name>`` dataset family (``config.data.name = "tfds:cifar10"``) and the crop / flip augmentation
fields that it shares with MNIST / Fashion-MNIST.

Fields of ``config.data``: data_dir (the TFDS data dir; "" = TFDS's default), cache_dir ("" = jaxml's,
jaxml/data/tfds_images.py), validation_fraction / split_seed (a stratified validation split carved from train),
standardize (default True: per-channel train statistics), train_limit (> 0: smoke runs), augment_crop (> 0:
random crops of the zero-padded image), augment_flip (random horizontal mirroring).
"""
from __future__ import annotations

import numpy as np

from jaxml.data import images, pipeline, tfds_images
from jaxml.data.augment import CropFlipAugmented


def augmented(source, config):
    """``source`` wrapped in CropFlipAugmented when config.data.augment_crop / augment_flip ask for it."""
    d = config.data
    pad, flip = d.get("augment_crop", 0), d.get("augment_flip", False)
    if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
        raise ValueError(f"config.data.augment_crop must be a whole number of pixels >= 0, got {pad!r}")
    if not isinstance(flip, bool):
        raise ValueError(f"config.data.augment_flip must be True or False, got {flip!r}")
    return CropFlipAugmented(source, pad=pad, flip=flip, seed=config.seed) if (pad or flip) else source


def limit_train(train: dict, evals: dict, limit: int, eval_batch_size: int) -> tuple[dict, dict]:
    """The first ``limit`` training examples and max(limit // 4, eval_batch_size) of every eval split."""
    if limit <= 0:
        return train, evals
    keep = max(limit // 4, eval_batch_size)
    return {k: v[:limit] for k, v in train.items()}, {s: {k: v[:keep] for k, v in a.items()} for s, a in evals.items()}


def build_tfds_images(config) -> pipeline.Splits:
    d = config.data
    name = tfds_images.dataset_name(d.name)
    data = tfds_images.load(name, data_dir=d.get("data_dir") or None, cache_dir=d.get("cache_dir") or None)
    raw = dict(data.splits)
    fraction = float(d.get("validation_fraction", 0.0))
    if fraction > 0:
        if "validation" in raw:
            raise ValueError(f"config.data.validation_fraction: TFDS {name!r} has its own validation split; set 0")
        tr, va = images.stratified_validation_split(raw["train"][1], fraction, int(d.get("split_seed", 0)))
        x, y = raw["train"]
        raw["train"], raw["validation"] = (x[tr], y[tr]), (x[va], y[va])
    standardize = bool(d.get("standardize", True))

    def arrays(x, y):
        return {"x": tfds_images.standardize(x, data) if standardize else x.astype(np.float32) / np.float32(255),
                "y": y}
    train = arrays(*raw.pop("train"))
    train, evals = limit_train(train, {s: arrays(*v) for s, v in raw.items()}, int(d.get("train_limit", 0)),
                               d.eval_batch_size)
    source = augmented(pipeline.ArraySource(train, d.batch_size, seed=config.seed), config)
    return pipeline.Splits(train=source, eval=evals, input_shape=data.image_shape,
                           info={"class_names": list(data.class_names)})
