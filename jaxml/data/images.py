"""MNIST and Fashion-MNIST as in-memory numpy arrays, from the original IDX files or from TFDS.

Entry point: `load_image_dataset(name, source=..., validation_fraction=..., permute_seed=...)`
returns `{"train": {"x", "y"}, ["validation": {...},] "test": {...}}` with
`x: float32[N, 28, 28, 1]` in [0, 1] (pixel / 255) and `y: int32[N]` in [0, NUM_CLASSES).

Sources (same bytes, same order, identical arrays):
- `"idx"`: the four original `.gz` files in `<data_dir>/<name>/` (data_dir defaults to
  `$JAXML_DATA_DIR`), read by `jaxml.data.idx` with magic/shape/size checks and, by default, SHA-256
  verification against the published checksums embedded below. No TensorFlow.
- `"tfds"`: `tfds.data_source(name, split=..., download=False)` from an array_record TFDS data dir
  (`data_dir`, default TFDS's own: `$TFDS_DATA_DIR` or `~/tensorflow_datasets`). Reading needs no
  TensorFlow; preparing the dataset once does — see `prepare_tfds` (offline, from the IDX files).
  TFDS stores the records in a hashed order; `tfds_record_order` puts them back in the IDX order.

Validation split: carved from train, stratified by class (each class contributes
`validation_fraction` of its examples, largest-remainder rounding so the total is exactly
`round(validation_fraction * N)`), chosen by a seeded permutation; both parts keep the original order.

Permuted variants: one fixed permutation `p = pixel_permutation(seed)` of the 784 pixels, applied to
every split: `x_perm.reshape(N, 784)[:, j] = x.reshape(N, 784)[:, p[j]]`.

Randomness here (permutation, validation split) comes from SplitMix64 hashes of (seed, index), not
from a library RNG, so a given seed names the same permutation and split on every numpy version.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile

import numpy as np

from jaxml.data import idx

DATASETS = ("mnist", "fashion_mnist")
SOURCES = ("idx", "tfds")
NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)
NUM_PIXELS = 28 * 28
SPLIT_SIZES = {"train": 60000, "test": 10000}

MNIST_CLASS_NAMES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
CLASS_NAMES = {"mnist": MNIST_CLASS_NAMES, "fashion_mnist": FASHION_MNIST_CLASS_NAMES}

# Mean and std of the train-set pixels / 255 (over all 60000 * 784 values). MNIST: the customary
# constants (exact: 0.130660, 0.308108). Fashion-MNIST: computed from the data (0.286041, 0.353024).
PIXEL_MEAN_STD = {"mnist": (0.1307, 0.3081), "fashion_mnist": (0.2860, 0.3530)}

# split -> (images file, labels file), identical names for both datasets.
IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# SHA-256 of the published original .gz files (the values TFDS and Keras check).
IDX_SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}
_ORIGIN = {
    "mnist": "http://yann.lecun.com/exdb/mnist/ (mirror: https://storage.googleapis.com/cvdf-datasets/mnist/)",
    "fashion_mnist": "https://github.com/zalandoresearch/fashion-mnist (data/fashion/)",
}

RawSplits = dict[str, tuple[np.ndarray, np.ndarray]]  # split -> (uint8[N, 28, 28], uint8[N])


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files (IDX) or prepared TFDS data are not where we looked; says where to put them."""


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"dataset name {name!r} unknown; expected one of {DATASETS}")


# ----------------------------------------------------------------------------- seeded permutations
def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 (wrapping arithmetic): a fixed, well-mixed hash of x."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _check_seed(seed, field: str) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
        raise ValueError(f"{field} must be an integer in [0, 2**64), got {seed!r}")
    return int(seed)


def seeded_permutation(seed: int, n: int, stream: int = 0) -> np.ndarray:
    """A permutation of range(n), a pure function of (seed, stream): argsort of SplitMix64 keys."""
    with np.errstate(over="ignore"):
        base = _splitmix64(np.array([seed], np.uint64) ^ _splitmix64(np.array([stream], np.uint64)))
        keys = _splitmix64(base + np.arange(n, dtype=np.uint64))
    return np.argsort(keys, kind="stable")


def pixel_permutation(seed: int) -> np.ndarray:
    """int64[784]: the fixed pixel permutation of the permuted-MNIST variants for this seed."""
    return seeded_permutation(_check_seed(seed, "permute_seed"), NUM_PIXELS, stream=1)


def apply_pixel_permutation(x: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """x: [N, 28, 28, 1] (or [N, 28, 28]) -> same shape with `flat_out[:, j] = flat_in[:, perm[j]]`.

    Invert with `apply_pixel_permutation(x_perm, np.argsort(perm))`.
    """
    perm = np.asarray(perm)
    if perm.shape != (NUM_PIXELS,) or not np.array_equal(np.sort(perm), np.arange(NUM_PIXELS)):
        raise ValueError(f"perm must be a permutation of range({NUM_PIXELS}), got shape {perm.shape}")
    n = x.shape[0]
    if int(np.prod(x.shape[1:])) != NUM_PIXELS:
        raise ValueError(f"x must hold {NUM_PIXELS} pixels per example, got shape {x.shape}")
    return x.reshape(n, NUM_PIXELS)[:, perm].reshape(x.shape)


def stratified_validation_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx), both sorted, disjoint, covering range(len(labels)).

    Class k (n_k examples) gives m_k validation examples, m_k = floor(f n_k) plus one for the
    classes with the largest remainders f n_k - floor(f n_k) (ties: lower class first) until
    sum m_k = round(f N). Within a class the m_k come first in `seeded_permutation(seed, N)` order.
    """
    labels = np.asarray(labels)
    n = labels.shape[0]
    n_val = int(round(fraction * n))
    if not 0 < n_val < n:
        raise ValueError(
            f"validation_fraction={fraction} of {n} train examples gives {n_val} validation examples; "
            "need at least 1 and fewer than all"
        )
    classes, counts = np.unique(labels, return_counts=True)
    quota = fraction * counts
    take = np.floor(quota).astype(np.int64)
    by_remainder = np.lexsort((np.arange(len(classes)), -(quota - take)))
    take[by_remainder[: n_val - take.sum()]] += 1
    order = seeded_permutation(seed, n, stream=2)
    shuffled_labels = labels[order]
    val = np.concatenate([order[shuffled_labels == c][:m] for c, m in zip(classes, take)])
    is_val = np.zeros(n, bool)
    is_val[val] = True
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


# ----------------------------------------------------------------------------- IDX source
def idx_dataset_dir(name: str, data_dir: str | os.PathLike | None = None) -> str:
    """`<data_dir or $JAXML_DATA_DIR>/<name>`, checked to exist with a message saying what to put there."""
    _check_name(name)
    root = os.fspath(data_dir) if data_dir is not None else os.environ.get("JAXML_DATA_DIR")
    files = [f for pair in IDX_FILES.values() for f in pair]
    if not root:
        raise DatasetNotFoundError(
            f"no data directory for {name!r}: pass data_dir=... or set JAXML_DATA_DIR to a directory "
            f"holding {name}/ with the original files {files} (from {_ORIGIN[name]})"
        )
    path = os.path.abspath(os.path.join(root, name))
    if not os.path.isdir(path):
        raise DatasetNotFoundError(
            f"{path} does not exist: put the original files {files} of {name} there "
            f"(from {_ORIGIN[name]}); the data root is {root!r} (data_dir or $JAXML_DATA_DIR)"
        )
    missing = [f for f in files if not os.path.isfile(os.path.join(path, f))]
    if missing:
        raise DatasetNotFoundError(
            f"{path} lacks {missing} (expected all of {files}, the original {name} files from {_ORIGIN[name]})"
        )
    return path


def _read_idx_split(name: str, path: str, split: str, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    image_file, label_file = IDX_FILES[split]
    sums = IDX_SHA256[name] if verify else {}
    n = SPLIT_SIZES[split] if verify else None
    images = idx.read_idx(
        os.path.join(path, image_file), expected_magic=idx.MAGIC_IMAGES_UINT8_3D,
        expected_shape=(n, 28, 28), sha256=sums.get(image_file),
    )
    labels = idx.read_idx(
        os.path.join(path, label_file), expected_magic=idx.MAGIC_LABELS_UINT8_1D,
        expected_shape=(n,), sha256=sums.get(label_file),
    )
    if images.shape[0] != labels.shape[0]:
        raise idx.IdxFormatError(
            f"{os.path.join(path, image_file)} holds {images.shape[0]} images but "
            f"{os.path.join(path, label_file)} holds {labels.shape[0]} labels; expected equal counts"
        )
    return images, labels


# ----------------------------------------------------------------------------- TFDS source
def tfds_prepare_instructions(name: str, tfds_data_dir=None, idx_data_dir=None) -> str:
    """The how-to shown when a TFDS copy is missing: the `prepare_tfds` call and what it runs."""
    manual = os.path.join(os.fspath(idx_data_dir or os.environ.get("JAXML_DATA_DIR") or "<JAXML_DATA_DIR>"), name)
    target = tfds_data_dir or "~/tensorflow_datasets (or $TFDS_DATA_DIR)"
    return (
        f"Prepare the TFDS array_record copy of {name!r} in {target} once, offline, from the original IDX "
        f"files (needs TensorFlow: pip install 'jaxml[tf]'):\n"
        f"  from jaxml.data import images; images.prepare_tfds({name!r}, tfds_data_dir={tfds_data_dir!r}, "
        f"idx_data_dir={idx_data_dir!r})\n"
        f"which runs tfds.builder({name!r}, data_dir=..., file_format='array_record').download_and_prepare("
        f"download_dir=<a fresh temp dir>, download_config=tfds.download.DownloadConfig(manual_dir={manual!r}, "
        "try_download_gcs=False)).\n"
        "TFDS takes each file from manual_dir by its original name and checks its registered size and "
        "SHA-256, so nothing is downloaded. Or use source='idx', which reads those files directly."
    )


def prepare_tfds(name: str, *, tfds_data_dir=None, idx_data_dir=None) -> str:
    """Builds TFDS's array_record `name` from the IDX files in `<idx_data_dir>/<name>` (no network).

    What the installed TFDS (4.9.10) does with `DownloadConfig(manual_dir=...)`: its download
    manager looks in manual_dir for each URL's registered file name (url_checksums/mnist.txt,
    fashion_mnist.txt: the original names), checks the registered size and SHA-256, and downloads
    nothing. It then gunzips each file to `<download_dir>/extracted/GZIP.<file name>` and reuses
    an existing extraction of that name: with one shared download dir, preparing fashion_mnist after
    mnist silently builds "fashion_mnist" from the MNIST pixels and labels (seen here; the TFDS ==
    IDX test caught it). So each call extracts into its own temporary download dir.

    Needs TensorFlow (TFDS gunzips and reads the IDX files with tf.io.gfile) and, for TFDS 4.9.10,
    the `importlib_resources` package. Returns the prepared directory.
    """
    manual_dir = idx_dataset_dir(name, idx_data_dir)
    try:
        import tensorflow  # noqa: F401  pylint: disable=unused-import
    except ImportError as e:
        raise ImportError(
            "prepare_tfds needs TensorFlow (pip install 'jaxml[tf]'); reading a prepared dataset does not.\n"
            + tfds_prepare_instructions(name, tfds_data_dir, idx_data_dir)
        ) from e
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=tfds_data_dir, file_format="array_record")
    config = tfds.download.DownloadConfig(manual_dir=manual_dir, try_download_gcs=False)
    with tempfile.TemporaryDirectory(prefix=f"jaxml-tfds-{name}-") as download_dir:
        builder.download_and_prepare(download_dir=download_dir, download_config=config)
    return os.fspath(builder.data_dir)


def tfds_record_order(split: str, n: int) -> np.ndarray:
    """int64[n]: `order[j]` = original index (IDX position) of record j of a prepared TFDS split.

    TFDS's MNIST builder yields example i under key i, and its writer stores the records sorted by
    the 128-bit key hash int(md5(split_name + str(i)).hexdigest(), 16) (tfds.core.hashing, salted by
    the split name; TFDS bumps dataset major versions rather than change it). Undoing that sort puts
    the TFDS records back in the original order, so both sources give identical arrays.
    """
    salt = hashlib.md5(split.encode())
    keys = []
    for i in range(n):
        h = salt.copy()
        h.update(str(i).encode())
        keys.append(h.digest())  # big-endian bytes: sorts like the 128-bit integer
    return np.array(sorted(range(n), key=keys.__getitem__), dtype=np.int64)


def _read_tfds_split(name: str, split: str, tfds_data_dir) -> tuple[np.ndarray, np.ndarray]:
    import tensorflow_datasets as tfds

    try:
        source = tfds.data_source(name, split=split, data_dir=tfds_data_dir, download=False)
    except (RuntimeError, OSError, ValueError, AssertionError) as e:  # TFDS's "not prepared" errors vary
        raise DatasetNotFoundError(
            f"TFDS {name!r} split {split!r} is not readable from data_dir={tfds_data_dir!r} ({e}).\n"
            + tfds_prepare_instructions(name, tfds_data_dir)
        ) from e
    n = len(source)
    shuffled = not source.dataset_info.disable_shuffling
    order = tfds_record_order(split, n) if shuffled else np.arange(n)
    images = np.empty((n, 28, 28), np.uint8)
    labels = np.empty((n,), np.uint8)
    # One record at a time (PNG decoded by TFDS with PIL or OpenCV): far slower than the IDX source,
    # once per process.
    for j in range(n):
        record = source[j]
        image, label = np.asarray(record["image"]), int(record["label"])
        if image.shape != IMAGE_SHAPE or image.dtype != np.uint8:
            raise ValueError(
                f"TFDS {name!r}/{split} record {j}: image {image.dtype}{image.shape}, expected uint8{IMAGE_SHAPE}"
            )
        images[order[j]], labels[order[j]] = image[..., 0], label
    return images, labels


# ----------------------------------------------------------------------------- cached raw load
@functools.lru_cache(maxsize=8)
def _load_raw_cached(name: str, source: str, location, verify: bool) -> RawSplits:
    out = {}
    for split in SPLIT_SIZES:
        if source == "idx":
            images, labels = _read_idx_split(name, location, split, verify)
        else:
            images, labels = _read_tfds_split(name, split, location)
        if labels.size and labels.max() >= NUM_CLASSES:
            raise ValueError(f"{name}/{split} ({source}): label {labels.max()} outside [0, {NUM_CLASSES})")
        images.setflags(write=False)  # shared by every caller through the cache
        labels.setflags(write=False)
        out[split] = (images, labels)
    return out


def load_raw(name: str, *, source: str = "idx", data_dir=None, verify_checksums: bool = True) -> RawSplits:
    """{"train": (uint8[N, 28, 28], uint8[N]), "test": ...}, read-only, decoded once per process.

    `data_dir`: for "idx" the root holding `<name>/` (default $JAXML_DATA_DIR); for "tfds" the
    TFDS data dir (default TFDS's). `verify_checksums` (idx only): compare each file's SHA-256
    with the published original and require the official 60000 / 10000 examples.
    """
    _check_name(name)
    if source == "idx":
        location = idx_dataset_dir(name, data_dir)
    elif source == "tfds":
        location = None if data_dir is None else os.path.abspath(os.fspath(data_dir))
    else:
        raise ValueError(f"source {source!r} unknown; expected one of {SOURCES}")
    return _load_raw_cached(name, source, location, bool(verify_checksums) and source == "idx")


def load_image_dataset(
    name: str,
    *,
    source: str = "idx",
    data_dir=None,
    validation_fraction: float = 0.0,
    split_seed: int = 0,
    permute_seed: int | None = None,
    verify_checksums: bool = True,
) -> dict[str, dict[str, np.ndarray]]:
    """MNIST / Fashion-MNIST splits as float arrays, optionally with a validation split and permuted pixels.

    Returns {"train", "validation" (only if validation_fraction > 0), "test"} -> {"x": float32[N, 28, 28, 1]
    = pixels / 255, "y": int32[N]}. Fresh arrays on every call (the decoded uint8 data is cached).
    The validation examples are removed from train (see `stratified_validation_split`, seeded by
    `split_seed`); `permute_seed` applies `pixel_permutation(permute_seed)` to every split.
    """
    if isinstance(validation_fraction, bool) or not isinstance(validation_fraction, (int, float)) or not (
        0.0 <= validation_fraction < 1.0
    ):
        raise ValueError(f"validation_fraction must be a number in [0, 1), got {validation_fraction!r}")
    split_seed = _check_seed(split_seed, "split_seed")
    perm = None if permute_seed is None else pixel_permutation(permute_seed)
    raw = load_raw(name, source=source, data_dir=data_dir, verify_checksums=verify_checksums)

    selections = {"train": (raw["train"], slice(None)), "test": (raw["test"], slice(None))}
    if validation_fraction > 0:
        train_idx, val_idx = stratified_validation_split(raw["train"][1], validation_fraction, split_seed)
        selections = {
            "train": (raw["train"], train_idx),
            "validation": (raw["train"], val_idx),
            "test": (raw["test"], slice(None)),
        }
    out = {}
    for split, ((images, labels), sel) in selections.items():
        x = images[sel].astype(np.float32)[..., None] / np.float32(255.0)
        if perm is not None:
            x = apply_pixel_permutation(x, perm)
        out[split] = {"x": x, "y": labels[sel].astype(np.int32)}
    return out


def standardize(x: np.ndarray, name: str) -> np.ndarray:
    """(x - mean) / std with the train-set constants of `PIXEL_MEAN_STD[name]`; x in [0, 1]."""
    _check_name(name)
    mean, std = PIXEL_MEAN_STD[name]
    return (x - np.float32(mean)) / np.float32(std)
