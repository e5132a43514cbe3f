"""Any TFDS image-classification dataset by name, read with ``tfds.data_source`` (array_record; reading needs no
TensorFlow), decoded once and cached as one ``.npz`` per (dataset, version the builder reads, data dir).

``load("cifar10", data_dir=..., cache_dir=...)`` -> :class:`TfdsImages`: ``splits`` {split: (uint8[N, H, W, C],
int32[N])} for every split the dataset info lists (("train", "test") when it lists none, as under
``tfds.testing.mock_data``), ``class_names``, and the per-channel mean and std of the train pixels / 255
(float64 sums), so standardisation, x' = (x / 255 - mean_c) / std_c, is computed once per dataset.
Shapes and classes come from the dataset info; every record must match the first's shape (variable-size
datasets need resizing, which this reader does not do) and carry a label in [0, num_classes).

Prepare a dataset once (needs TensorFlow and network or a manual dir, on any machine):
``tfds.builder(name, data_dir=D, file_format="array_record").download_and_prepare()``; then read it here
with ``data_dir=D``. The cache directory is ``cache_dir``, else ``$JAXML_CACHE_DIR/datasets``, else
``~/.cache/jaxml/datasets``.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import os

import numpy as np

PREFIX = "tfds:"


@dataclasses.dataclass(frozen=True)
class TfdsImages:
    splits: dict
    class_names: tuple
    mean: np.ndarray      # f32[C], of the train pixels / 255
    std: np.ndarray       # f32[C]

    @property
    def image_shape(self) -> tuple:
        return tuple(next(iter(self.splits.values()))[0].shape[1:])


def dataset_name(config_name: str) -> str:
    """"tfds:cifar10" -> "cifar10"; a missing name fails naming the field."""
    name = config_name[len(PREFIX):] if config_name.startswith(PREFIX) else config_name
    if not name:
        raise ValueError(f"config.data.name {config_name!r}: name a TFDS dataset after {PREFIX!r}, e.g. 'tfds:cifar10'")
    return name


def default_cache_dir() -> str:
    root = os.environ.get("JAXML_CACHE_DIR")
    return os.path.join(root, "datasets") if root else os.path.expanduser("~/.cache/jaxml/datasets")


def _read_split(source, name: str, split: str, image_key: str, label_key: str, num_classes: int):
    n = len(source)
    if n == 0:
        raise ValueError(f"TFDS {name!r} split {split!r} is empty")
    first = np.asarray(source[0][image_key])
    if first.ndim == 2:
        first = first[..., None]
    images = np.empty((n,) + first.shape, np.uint8)
    labels = np.empty((n,), np.int32)
    for j in range(n):
        record = source[j]
        image = np.asarray(record[image_key])
        image = image[..., None] if image.ndim == 2 else image
        if image.shape != first.shape or image.dtype != np.uint8:
            raise ValueError(f"TFDS {name!r}/{split} record {j}: image {image.dtype}{image.shape}, expected "
                             f"uint8{first.shape} like record 0 (variable-size images are not supported)")
        images[j], labels[j] = image, int(record[label_key])
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise ValueError(f"TFDS {name!r}/{split} record {bad[0]}: label {labels[bad[0]]} outside [0, {num_classes})")
    return images, labels


def _decode(name, data_dir, image_key, label_key):
    import tensorflow_datasets as tfds

    def source(split):
        try:
            return tfds.data_source(name, split=split, data_dir=data_dir, download=False)
        except Exception as e:  # TFDS's "not prepared" errors vary by version and backend
            raise FileNotFoundError(
                f"TFDS {name!r} split {split!r} is not readable from data_dir={data_dir!r} ({type(e).__name__}: "
                f"{e}). Prepare it once: tfds.builder({name!r}, data_dir=..., file_format='array_record')"
                ".download_and_prepare() (jaxml/tasks/images/README.md)") from e
    first = source("train")
    info = first.dataset_info
    label = info.features[label_key]
    split_names = sorted(info.splits.keys()) or ["train", "test"]
    splits = {s: _read_split(first if s == "train" else source(s), name, s, image_key, label_key, label.num_classes)
              for s in split_names}
    return splits, tuple(label.names), str(info.version)


def dataset_version(name: str, data_dir: str | None) -> str:
    """The version ``tfds.data_source`` reads: the one ``name`` pins ("cifar10:3.0.2"), else the builder's
    (its code's); "" when TFDS does not know ``name`` (reading it then fails with its own message)."""
    import tensorflow_datasets as tfds
    try:
        return str(tfds.builder(name, data_dir=data_dir).version)
    except Exception:  # TFDS's "not found" errors vary by version
        return ""


def _stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
    mean = flat.mean(0)
    return mean.astype(np.float32), np.sqrt(np.maximum(flat.var(0), 1e-12)).astype(np.float32)


@functools.lru_cache(maxsize=4)
def load(name: str, *, data_dir: str | None = None, cache_dir: str | None = None, image_key: str = "image",
         label_key: str = "label") -> TfdsImages:
    """The dataset's splits, classes and pixel statistics (module docstring), from the cache when there."""
    data_dir = None if not data_dir else os.path.abspath(os.fspath(data_dir))
    cache_dir = cache_dir or default_cache_dir()
    version = dataset_version(name, data_dir)     # a new version of the dataset is decoded afresh
    tag = hashlib.sha256(repr((name, version, data_dir, image_key, label_key)).encode()).hexdigest()[:12]
    path = os.path.join(cache_dir, f"{name.replace('/', '_')}-{tag}.npz")
    if os.path.exists(path):
        with np.load(path) as z:
            splits = {s: (z[f"x_{s}"], z[f"y_{s}"]) for s in z["split_names"]}
            return TfdsImages(splits, tuple(z["class_names"]), z["mean"], z["std"])
    splits, class_names, _ = _decode(name, data_dir, image_key, label_key)
    mean, std = _stats(splits["train"][0])
    os.makedirs(cache_dir, exist_ok=True)
    tmp = path + f".tmp{os.getpid()}.npz"
    np.savez(tmp, split_names=np.array(sorted(splits)), class_names=np.array(class_names), mean=mean, std=std,
             version=np.array(version), **{f"x_{s}": v[0] for s, v in splits.items()},
             **{f"y_{s}": v[1] for s, v in splits.items()})
    os.replace(tmp, path)                     # atomic: a crash never leaves a half-written cache
    return TfdsImages(splits, class_names, mean, std)


def standardize(images: np.ndarray, data: TfdsImages) -> np.ndarray:
    """uint8[N, H, W, C] -> f32: (x / 255 - mean_c) / std_c."""
    return (images.astype(np.float32) / np.float32(255.0) - data.mean) / data.std
