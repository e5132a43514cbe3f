"""Fixed rendered clock datasets: deterministic in (seed, style, split), in memory or as .npy files.

Three independent streams, "train", "test" and "heldout" (``fold_in(key(seed), split_id)``); example i of a
stream is always the same image, so a smaller n gives a prefix of a larger one.
"""
from __future__ import annotations

import dataclasses
import json
import os

import jax
import numpy as np

from jaxml.tasks.clock.render import MIN_BATCH, render_labelled_batch
from jaxml.tasks.clock.styles import CANVAS, HELDOUT_STYLE, TRAIN_STYLE, ClockStyle

_SPLITS = {"train": 0, "test": 1, "heldout": 2}  # independent streams per split
_CHUNK = 256


def _dataset_uint8(seed: int, n: int, style: ClockStyle, split: str):
    """(images uint8[n, 150, 150], hour, minute, rotation f32[n]) as numpy: examples 0..n-1 of the stream
    ``fold_in(key(seed), split_id)``, rendered in chunks of 256 (of 32 below 256: one compiled shape each). A smaller
    n gives a prefix of a larger one."""
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {tuple(_SPLITS)}, got {split!r}")
    if not (isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0):
        raise ValueError(f"n must be a positive int, got {n!r}")
    key = jax.random.fold_in(jax.random.key(seed), _SPLITS[split])
    images = np.empty((n, CANVAS, CANVAS), np.uint8)
    hour, minute, rotation = np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n, np.float32)
    chunk = _CHUNK if n >= _CHUNK else MIN_BATCH       # a small set: the training batches' program
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        out = render_labelled_batch(key, chunk, style, start)
        for dst, src in zip((images, hour, minute, rotation), out):
            dst[start:stop] = np.asarray(src)[: stop - start]
    return images, hour, minute, rotation


def clock_dataset(seed: int, n: int, style: ClockStyle = TRAIN_STYLE, split: str = "train"):
    """A fixed rendered dataset, deterministic in (seed, style, split); split is "train", "test"
    or "heldout" (three independent streams); a smaller n gives a prefix of a larger one.

    Returns {"x": f32[n, 150, 150, 1] in [0, 1], "hour": i32[n] in 0..11, "minute": i32[n],
    "rotation": f32[n] (radians, clockwise; see :func:`rotations`)}."""
    images, hour, minute, rotation = _dataset_uint8(seed, n, style, split)
    return {"x": (images.astype(np.float32) / 255.0)[..., None], "hour": hour, "minute": minute,
            "rotation": rotation}


def write_npy_dataset(directory: str, seed: int = 0, n: int = 18000, test_fraction: float = 0.2,
                      style: ClockStyle = TRAIN_STYLE, heldout_n: int = 0,
                      heldout_style: ClockStyle = HELDOUT_STYLE) -> dict[str, str]:
    """Writes {train,test}_{images,hours,minutes}.npy (images uint8[., 150, 150]) and meta.json.

    The train part is ``clock_dataset(seed, n - n_test, style, "train")`` and the test part
    ``clock_dataset(seed, n_test, style, "test")`` with ``n_test = round(n * test_fraction)``
    (pixels stored as uint8 = 255 * x). With heldout_n > 0 it also writes heldout_*.npy:
    ``clock_dataset(seed, heldout_n, heldout_style, "heldout")``. Only process 0 writes.
    Returns {"train_images": path, ...}."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    n_test = int(round(n * test_fraction))
    if n_test < 1 or n - n_test < 1:
        raise ValueError(f"n={n} with test_fraction={test_fraction} leaves an empty split")
    parts = [("train", n - n_test, style), ("test", n_test, style)]
    if heldout_n:
        parts.append(("heldout", heldout_n, heldout_style))
    writer = jax.process_index() == 0
    if writer:
        os.makedirs(directory, exist_ok=True)
    paths = {}
    for split, size, split_style in parts:
        images, hours, minutes, _ = _dataset_uint8(seed, size, split_style, split)
        for name, arr in zip(("images", "hours", "minutes"), (images, hours, minutes)):
            paths[f"{split}_{name}"] = os.path.join(directory, f"{split}_{name}.npy")
            if writer:
                np.save(paths[f"{split}_{name}"], arr)
    if writer:
        meta = {"seed": seed, "n": n, "n_test": n_test, "test_fraction": test_fraction,
                "style": dataclasses.asdict(style), "heldout_n": heldout_n,
                "heldout_style": dataclasses.asdict(heldout_style) if heldout_n else None}
        with open(os.path.join(directory, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
    return paths


def load_npy_dataset(directory: str, split: str = "train") -> dict[str, np.ndarray]:
    """Reads what :func:`write_npy_dataset` wrote, in :func:`clock_dataset`'s format."""
    arrays = {}
    for name in ("images", "hours", "minutes"):
        path = os.path.join(directory, f"{split}_{name}.npy")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} missing: write it with launch/render_clocks.py --out_dir={directory}")
        arrays[name] = np.load(path)
    return {"x": (arrays["images"].astype(np.float32) / 255.0)[..., None],
            "hour": arrays["hours"], "minute": arrays["minutes"]}
