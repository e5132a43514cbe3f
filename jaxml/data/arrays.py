"""Your own arrays as a dataset: ``from_arrays({split: (x, y)}, batch_size=..., seed=...) -> pipeline.Splits``.

The "train" split becomes a ``pipeline.ArraySource`` (shuffled per (seed, epoch), so batch s is a pure function
of (seed, s) and a resumed run sees the batches an uninterrupted one would); every other split is evaluated
over all its examples. It is what ``jaxml.train.fit(config, data=arrays)`` trains on, and a builder registered
with ``jaxml.data.register`` may return it too.
"""
from __future__ import annotations

import hashlib
from typing import Mapping

import numpy as np

from jaxml.data import pipeline

__all__ = ["arrays_sha256", "check_arrays", "check_model_input", "check_split", "check_targets", "from_arrays",
           "named_sha256"]


def check_split(split: str, value) -> dict:
    """One split, (x, y) or {"x": ..., "y": ..., ...}, as {"x": ndarray, "y": ndarray, ...}; a ValueError naming
    ``split`` when it is not numeric arrays with one entry per example."""
    if isinstance(value, Mapping):
        if "x" not in value or "y" not in value:
            raise ValueError(f"data[{split!r}] must be (x, y) or a dict with 'x' and 'y'; got keys {sorted(value)}")
        out = {k: np.asarray(v) for k, v in value.items()}
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        out = {"x": np.asarray(value[0]), "y": np.asarray(value[1])}
    else:
        raise ValueError(f"data[{split!r}] must be a pair (x, y) of arrays or a dict with 'x' and 'y'; "
                         f"got {type(value).__name__}")
    for k, v in out.items():
        if v.dtype.kind not in "biuf":
            raise ValueError(f"data[{split!r}][{k!r}] is not a numeric array (dtype {v.dtype}"
                             f"{', strings' if v.dtype.kind in 'US' else ''}); convert it to numbers first")
        if v.ndim == 0:
            raise ValueError(f"data[{split!r}][{k!r}] is a scalar; expected one entry per example")
        if v.dtype.kind == "f" and not np.isfinite(v).all():
            i = _first_example(~np.isfinite(v))
            raise ValueError(f"data[{split!r}][{k!r}]: example {i} holds NaN or inf "
                             f"({int((~np.isfinite(v)).reshape(len(v), -1).any(-1).sum())} examples do)")
    sizes = {k: len(v) for k, v in out.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"data[{split!r}]: x and y must have one entry per example (the same first dimension); "
                         f"got {', '.join(f'{k}: {s}' for k, s in sizes.items())} "
                         f"(shapes {', '.join(f'{k} {v.shape}' for k, v in out.items())})")
    if sizes["x"] == 0:
        raise ValueError(f"data[{split!r}] has no examples")
    return out


def check_model_input(who: str, x, trace) -> np.ndarray:
    """``x`` as a NumPy array of examples a model takes: numeric, at least one example, and examples of a shape
    ``trace(example_shape, dtype)`` (tracing the model, no compile) accepts; a ValueError naming ``who``."""
    x = np.asarray(x)
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"{who}: x must hold at least one example along its first axis, got shape {x.shape}")
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{who}: x must be numbers, got dtype {x.dtype}")
    try:
        trace(x.shape[1:], x.dtype)
    except (TypeError, ValueError) as e:
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise ValueError(f"{who}: x has examples of shape {x.shape[1:]}, which the trained model does not take "
                         f"({first})") from None
    return x


def _first_example(bad: np.ndarray) -> int:
    """Index of the first example (entry along axis 0) with any True in ``bad``."""
    return int(np.flatnonzero(bad.reshape(len(bad), -1).any(-1))[0])


def check_targets(arrays: Mapping[str, Mapping], objective: str, kind: str, output_shape: tuple) -> None:
    """Check every split's ``y`` against the model's per-example ``output_shape`` for an objective of ``kind``:
    "labels" — integer class indices of shape ``output_shape[:-1]`` in ``[0, output_shape[-1])``;
    "real" — targets of ``output_shape``. A ValueError names the split, ``y``, the first bad example and the fix."""
    for split, a in arrays.items():
        if "y" not in a:
            continue
        y, name = np.asarray(a["y"]), f"data[{split!r}]['y']"
        if kind == "labels":
            n = int(output_shape[-1])
            if y.shape[1:] == tuple(output_shape) and y.shape[1:] != tuple(output_shape[:-1]):
                raise ValueError(f"{name} has shape {y.shape}, one row of {n} per example (one-hot?): {objective} "
                                 f"takes integer class labels of shape {(len(y),) + tuple(output_shape[:-1])}; "
                                 "pass y.argmax(-1)")
            if y.shape[1:] != tuple(output_shape[:-1]):
                raise ValueError(f"{name} has shape {y.shape}; {objective} takes integer class labels of shape "
                                 f"{(len(y),) + tuple(output_shape[:-1])}")
            if y.dtype.kind == "f":
                raise ValueError(f"{name} has dtype {y.dtype}; {objective} takes integer class labels in [0, {n}): "
                                 "pass y.astype(np.int32) (or y.argmax(-1) of one-hot rows)")
            bad = (y < 0) | (y >= n)
            if bad.any():
                i = _first_example(bad)
                raise ValueError(f"{name}[{i}] = {y[i].tolist()}: {objective} labels must be integers in "
                                 f"[0, {n}) (the model has {n} outputs; config.model.num_outputs); "
                                 f"{int(bad.reshape(len(y), -1).any(-1).sum())} examples are outside")
        elif kind == "real" and y.shape[1:] != tuple(output_shape):
            squeeze = " (a trailing axis of 1? pass y[:, 0])" if y.shape[1:] == tuple(output_shape) + (1,) else ""
            raise ValueError(f"{name} has shape {y.shape}, but {objective} compares it with the model's outputs "
                             f"of shape {(len(y),) + tuple(output_shape)}{squeeze}")


def check_arrays(data: Mapping) -> dict[str, dict[str, np.ndarray]]:
    """{split: {"x", "y", ...}} numpy arrays from ``{split: (x, y) or dict}``, checked: a "train" split, each
    split's arrays sharing their first dimension, every split's examples (``x.shape[1:]``) shaped like train's;
    a ValueError names the split and the problem otherwise."""
    if not isinstance(data, Mapping):
        raise ValueError(f"data must be a dict {{split: (x, y)}}, got {type(data).__name__}")
    if "train" not in data:
        raise ValueError(f"data has no 'train' split (got splits {sorted(data)}); pass {{'train': (x, y), ...}}")
    out = {split: check_split(split, value) for split, value in data.items()}
    example = out["train"]["x"].shape[1:]
    for split, arrays in out.items():
        if arrays["x"].shape[1:] != example:
            raise ValueError(f"data[{split!r}]: examples of shape {arrays['x'].shape[1:]} but train's are {example}")
        if arrays["y"].shape[1:] != out["train"]["y"].shape[1:]:
            raise ValueError(f"data[{split!r}]: targets of shape {arrays['y'].shape[1:]} but train's are "
                             f"{out['train']['y'].shape[1:]}")
    return out


def arrays_sha256(data: Mapping) -> str:
    """SHA-256 over every split's arrays (name, dtype, shape and bytes, in sorted order): which data a run saw,
    recorded in its config so a workdir cannot resume on other arrays."""
    return named_sha256((f"{split}/{k}", v) for split, arrays in sorted(check_arrays(data).items())
                        for k, v in sorted(arrays.items()))


def named_sha256(named) -> str:
    """SHA-256 over ``(name, array)`` pairs in the order given: each name, dtype and shape, then its bytes."""
    h = hashlib.sha256()
    for name, v in named:
        v = np.ascontiguousarray(v)
        h.update(f"{name}:{v.dtype}:{v.shape};".encode())
        h.update(v.tobytes())
    return h.hexdigest()


def from_arrays(data: Mapping, *, batch_size: int, seed: int = 0, shuffle: bool = True,
                info: dict | None = None) -> pipeline.Splits:
    """``pipeline.Splits`` of in-memory arrays ``{split: (x, y)}`` (or ``{split: {"x", "y", ...}}``).

    train: batches of ``batch_size`` examples, example order a permutation seeded by (seed, epoch) (``shuffle``)
    with the remainder of each epoch dropped; the other splits: evaluation arrays. ``input_shape`` =
    ``x.shape[1:]``. ``info`` (e.g. ``{"class_names": [...]}``) is passed through for reports."""
    arrays = check_arrays(data)
    train = arrays.pop("train")
    n = len(train["x"])
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or not 1 <= batch_size <= n:
        raise ValueError(f"batch_size {batch_size!r} must be a whole number in [1, {n}] (the train examples)")
    return pipeline.Splits(train=pipeline.ArraySource(train, int(batch_size), seed=int(seed), shuffle=shuffle),
                           eval=arrays, input_shape=tuple(train["x"].shape[1:]), info=dict(info or {}))
