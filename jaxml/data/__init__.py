"""Dataset registry: ``build(config) -> pipeline.Splits`` dispatching on ``config.data.name``.

Each builder reads its own fields of ``config.data`` and returns a training source (deterministic in
(config.seed, step)), evaluation arrays per split and the input shape of one example.
"""
from __future__ import annotations

from typing import Callable

from jaxml.data import pipeline, toy


def _zhou_gender(config) -> pipeline.Splits:
    arrays = toy.zhou_gender()
    train = pipeline.ArraySource(arrays, config.data.batch_size, seed=config.seed,
                                 shuffle=config.data.get("shuffle", False))
    return pipeline.Splits(train=train, eval={"eval": arrays}, input_shape=(2,))


def _adding(config) -> pipeline.Splits:
    length = int(config.data.length)
    make = lambda key, n: toy.adding_problem(key, n, length)  # noqa: E731
    import jax
    eval_arrays = jax.device_get(toy.adding_problem(jax.random.key(10_000 + config.seed),
                                                    int(config.data.eval_size), length))
    train = pipeline.GeneratedSource(make, config.data.batch_size, seed=config.seed,
                                     steps_per_epoch=int(config.data.get("steps_per_epoch", 1000)))
    return pipeline.Splits(train=train, eval={"eval": dict(eval_arrays)}, input_shape=(length, 2))


def _blobs(config) -> pipeline.Splits:
    d = config.data
    kw = dict(num_classes=int(d.get("num_classes", 4)), features=int(d.get("features", 8)),
              spread=float(d.get("spread", 1.0)))
    train = toy.gaussian_blobs(int(d.get("data_seed", 0)), int(d.get("train_size", 1024)), **kw)
    test = toy.gaussian_blobs(int(d.get("data_seed", 0)), int(d.get("train_size", 1024)) + int(d.get("test_size", 256)),
                              **kw)
    test = {k: v[-int(d.get("test_size", 256)):] for k, v in test.items()}
    return pipeline.Splits(train=pipeline.ArraySource(train, d.batch_size, seed=config.seed),
                           eval={"test": test}, input_shape=(kw["features"],))


def _images(config) -> pipeline.Splits:
    """MNIST / Fashion-MNIST from IDX files (``$JAXML_DATA_DIR/<name>``) or TFDS, see data/images.py.
    Fields: source, data_dir, validation_fraction, split_seed, permute_seed (< 0: none), standardize,
    train_limit (> 0: first N training examples, for smoke runs), augment_shift (> 0: random translations
    of training images by up to that many pixels, data/augment.py)."""
    from jaxml.data import images
    d = config.data
    permute = int(d.get("permute_seed", -1))
    splits = images.load_image_dataset(
        d.name, source=d.get("source", "idx"), data_dir=d.get("data_dir") or None,
        validation_fraction=float(d.get("validation_fraction", 0.0)), split_seed=int(d.get("split_seed", 0)),
        permute_seed=None if permute < 0 else permute)
    if d.get("standardize", False):
        for arrays in splits.values():
            arrays["x"] = images.standardize(arrays["x"], d.name)
    limit = int(d.get("train_limit", 0))
    train = splits.pop("train")
    if limit > 0:
        train = {k: v[:limit] for k, v in train.items()}
        splits = {k: {kk: vv[:max(limit // 4, d.eval_batch_size)] for kk, vv in v.items()} for k, v in splits.items()}
    source = pipeline.ArraySource(train, d.batch_size, seed=config.seed)
    shift = d.get("augment_shift", 0)
    if shift:
        from jaxml.data.augment import ShiftAugmented
        source = ShiftAugmented(source, shift, seed=config.seed,
                                pixel_perm=None if permute < 0 else images.pixel_permutation(permute))
    return pipeline.Splits(train=source, eval=splits, input_shape=images.IMAGE_SHAPE,
                           info={"class_names": list(images.CLASS_NAMES[d.name])})


BUILDERS: dict[str, Callable] = {"zhou_gender": _zhou_gender, "adding": _adding, "blobs": _blobs,
                                 "mnist": _images, "fashion_mnist": _images,
                                 "clock": lambda config: __import__("jaxml.train.clock_task", fromlist=["x"]).build_data(config)}


def register(name: str, builder: Callable) -> None:
    BUILDERS[name] = builder


def build(config) -> pipeline.Splits:
    name = config.data.name
    if name not in BUILDERS:
        raise ValueError(f"config.data.name: unknown dataset {name!r}; known: {sorted(BUILDERS)}")
    return BUILDERS[name](config)
