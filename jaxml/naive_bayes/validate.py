"""Input checks for the naive Bayes entry points, as scikit-learn's: each failure is a ValueError that starts with
the function and names the argument and the first bad position (``count_matrix: x has 3 negative values ...``).

What is checked: shapes (2-D matrices, one label per row, the model's vocabulary / feature count), finite
values, non-negative counts (multinomial / complement / Bernoulli), integer-valued counts where the kernel
counts in integers (``count_matrix``, token ids), and labels in ``0..C-1`` (``-1`` = padding where the token
stream allows it). The checks are vectorised reductions — NumPy on the host for host arrays, one small
device reduction for a ``jax.Array`` — and are skipped for tracers (a caller's ``jit`` cannot be checked
on values).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

INT32_MAX = int(np.iinfo(np.int32).max)


def traced(*arrays) -> bool:
    """Whether any leaf of the arguments is a tracer (inside a caller's jit or vmap)."""
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(arrays))


def _xp(a):
    return jnp if isinstance(a, jax.Array) else np


def _where(mask) -> str:
    """'row r, column c' / 'index i' of the first True in a host or device mask."""
    idx = np.argwhere(np.asarray(mask))[0]
    return f"row {idx[0]}, column {idx[1]}" if len(idx) == 2 else f"index {idx[0]}"


def _fail(who: str, name: str, a, mask, what: str, hint: str = "") -> ValueError:
    mask = np.asarray(mask)
    first = tuple(np.argwhere(mask)[0])
    value = np.asarray(a)[first].item()
    return ValueError(f"{who}: {name} has {int(mask.sum())} {what} (first at {_where(mask)}: {value!r}){hint}")


def array(a, name: str, who: str, *, ndim: int):
    """``a`` as a NumPy array (or the jax.Array itself) of a real numeric dtype with ``ndim`` dimensions."""
    if not isinstance(a, jax.Array):
        a = np.asarray(a)
    if a.dtype == bool:
        pass
    elif not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise ValueError(f"{who}: {name} must hold real numbers, got dtype {a.dtype}")
    if a.ndim != ndim:
        want = "a 2-D array [rows, features]" if ndim == 2 else "a 1-D array"
        raise ValueError(f"{who}: {name} must be {want}, got shape {tuple(a.shape)}")
    return a


def finite(a, name: str, who: str) -> None:
    if traced(a) or not np.issubdtype(a.dtype, np.floating):
        return
    xp = _xp(a)
    if not bool(xp.all(xp.isfinite(a))):
        raise _fail(who, name, a, ~np.isfinite(np.asarray(a)), "NaN or inf values")


def non_negative(a, name: str, who: str) -> None:
    if traced(a) or a.dtype == bool or np.issubdtype(a.dtype, np.unsignedinteger) or not a.size:
        return
    if bool(_xp(a).min(a) < 0):
        raise _fail(who, name, a, np.asarray(a) < 0, "negative values",
                    "; naive Bayes counts and frequencies must be >= 0")


def integral(a, name: str, who: str, *, what: str = "counts") -> None:
    """Integer-valued (a float array of whole numbers passes); values up to int32's maximum."""
    if traced(a) or a.dtype == bool or not a.size:
        return
    xp = _xp(a)
    if np.issubdtype(a.dtype, np.floating) and not bool(xp.all(a == xp.round(a))):
        host = np.asarray(a)
        raise _fail(who, name, a, host != np.round(host), f"fractional values ({what} must be whole numbers)")
    wide = np.issubdtype(a.dtype, np.floating) or a.dtype.itemsize > 4 or a.dtype == np.uint32
    if wide and bool(xp.max(xp.abs(a)) > INT32_MAX):
        raise _fail(who, name, a, np.abs(np.asarray(a, np.float64)) > INT32_MAX, f"values beyond int32 {what}")


def in_range(a, lo: int, hi: int, name: str, who: str, *, meaning: str) -> None:
    """Whole numbers in [lo, hi) (``meaning`` says what they index)."""
    integral(a, name, who, what=meaning)
    if traced(a) or not a.size:
        return
    xp = _xp(a)
    if bool(xp.min(a) < lo) or bool(xp.max(a) >= hi):
        host = np.asarray(a)
        raise _fail(who, name, a, (host < lo) | (host >= hi), f"values outside [{lo}, {hi})", f" ({meaning})")


def positive_int(v, name: str, who: str, *, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ValueError(f"{who}: {name} must be an integer >= {minimum}, got {v!r}")
    return int(v)


def same_length(a, b, name_a: str, name_b: str, who: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{who}: {name_a} has {a.shape[0]} entries but {name_b} has {b.shape[0]}; "
                         "they must match one to one")


def labels(y, num_classes: int, n: int, who: str, *, name: str = "y", padding: bool = False):
    """Class labels: 1-D, n of them, whole numbers in [0, C) (or [-1, C) with -1 = padding)."""
    y = array(y, name, who, ndim=1)
    if y.shape[0] != n:
        raise ValueError(f"{who}: {name} has {y.shape[0]} labels for {n} rows; one label per row")
    in_range(y, -1 if padding else 0, num_classes, name, who,
             meaning=f"class labels 0..{num_classes - 1}" + (", -1 = padding" if padding else ""))
    return y


def counts_matrix(x, who: str, *, whole: bool = True, name: str = "x"):
    """A dense [N, V] count matrix: finite, >= 0 and (``whole``) integer-valued."""
    x = array(x, name, who, ndim=2)
    finite(x, name, who)
    non_negative(x, name, who)
    if whole:
        integral(x, name, who)
    return x


def counts_dict(counts, who: str):
    """``{"feature_count": [C, V], "class_count": [C]}``, finite and >= 0."""
    if not isinstance(counts, dict) or not {"feature_count", "class_count"} <= set(counts):
        got = sorted(counts) if isinstance(counts, dict) else type(counts).__name__
        raise ValueError(f"{who}: counts must be a dict with 'feature_count' [C, V] and 'class_count' [C], got {got}")
    fc = array(counts["feature_count"], "counts['feature_count']", who, ndim=2)
    cc = array(counts["class_count"], "counts['class_count']", who, ndim=1)
    if cc.shape[0] != fc.shape[0]:
        raise ValueError(f"{who}: counts['class_count'] has {cc.shape[0]} classes but counts['feature_count'] "
                         f"has {fc.shape[0]} rows")
    for a, name in ((fc, "counts['feature_count']"), (cc, "counts['class_count']")):
        finite(a, name, who)
        non_negative(a, name, who)
    return fc, cc


def class_prior(prior, num_classes: int, who: str):
    """Given priors: shape (C,), finite, >= 0, summing to 1 (scikit-learn's tolerance)."""
    if prior is None or traced(prior):
        return
    p = np.asarray(prior, np.float64)
    if p.shape != (num_classes,):
        raise ValueError(f"{who}: class_prior has shape {p.shape}, expected ({num_classes},)")
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError(f"{who}: class_prior must be finite and >= 0, got {p.tolist()}")
    if not np.isclose(p.sum(), 1.0):
        raise ValueError(f"{who}: class_prior must sum to 1, got {p.sum()!r}")


def positive_scalar_or_array(v, name: str, who: str) -> None:
    """alpha-like smoothing: finite and > 0 everywhere (a scalar or an array broadcast against [C, V])."""
    if traced(v):
        return
    a = np.asarray(v, np.float64)
    if not (np.isfinite(a).all() and (a > 0).all()):
        raise ValueError(f"{who}: {name} must be > 0 (additive smoothing), got {v}")


def texts(docs, who: str, *, name: str = "texts"):
    """A sequence of str (a list, tuple, NumPy string array or Arrow array): a bare str or bytes is refused (it
    would be fitted one character per document), and so is the first entry that is not a str, by index."""
    if isinstance(docs, (str, bytes)):
        raise ValueError(f"{who}: {name} is a single {type(docs).__name__}; pass a sequence of documents, "
                         f"e.g. [{name}]")
    if type(docs).__module__.startswith("pyarrow"):
        return docs
    if isinstance(docs, np.ndarray) and docs.dtype.kind == "U":
        return docs
    if not isinstance(docs, (list, tuple, np.ndarray)):
        docs = list(docs)
    for i, doc in enumerate(docs):
        if not isinstance(doc, str):
            raise ValueError(f"{who}: {name}[{i}] is {type(doc).__name__} {doc!r:.40}, not a str; every document "
                             "must be a string")
    return docs


def text_labels(labels, n: int, num_classes: int, who: str, class_names=None) -> np.ndarray:
    """int32[n] class indices of ``labels``: whole numbers in [0, C), or strings that are ``class_names``
    (mapped to their index); anything else names the first bad text."""
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{who}: labels must be int[{n}] (one per text), got shape {y.shape}")
    if y.dtype.kind in "US" or (y.dtype.kind == "O" and any(isinstance(v, str) for v in y)):
        y = np.array([v.item() if isinstance(v, np.generic) else v for v in y], object)
        if class_names is None:
            raise ValueError(f"{who}: labels are strings (text 0: {y[0]!r}); pass class_names=(...) to map them to "
                             f"0..{num_classes - 1}, or integer labels")
        index = {str(c): i for i, c in enumerate(class_names)}
        unknown = [i for i, v in enumerate(y) if not isinstance(v, str) or v not in index]
        if unknown:
            raise ValueError(f"{who}: labels[{unknown[0]}] = {y[unknown[0]]!r} is not one of class_names "
                             f"{tuple(class_names)}")
        return np.array([index[v] for v in y], np.int32)
    y = array(y, "labels", who, ndim=1)
    integral(y, "labels", who, what="class labels")
    y = y.astype(np.int64)
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        bad = int(np.flatnonzero((y < 0) | (y >= num_classes))[0])
        raise ValueError(f"{who}: labels must lie in [0, {num_classes}), got range [{y.min()}, {y.max()}] "
                         f"(first outside: text {bad}: {y[bad]})")
    return y.astype(np.int32)
