"""Fitting a discrete naive Bayes is counting: integer sufficient statistics, exact under any split.

For documents ``d`` with term counts ``x[d, v]`` and labels ``y[d]`` in ``0..C-1``::

    feature_count[c, v] = sum_{d : y[d] = c} x[d, v]          i32[C, V]
    class_count[c]      = #{d : y[d] = c}                      i32[C]

:func:`count_tokens` gets both from a flat token stream with ONE segment-sum over the fused
``(class, token)`` id ``y * V + v``. Counts are integers, so they add exactly: ``partial_fit`` is
:func:`add_counts`, and :func:`count_tokens_sharded` (a ``jax.shard_map`` over the ``data`` mesh
axis: per-device counts, one ``lax.psum``) returns the same counts bit for bit on any number of
devices. Only the ``[C, V]`` counts ever leave a device. int32 counts hold up to 2^31 - 1 tokens per
(class, term).

The public functions check their inputs first (``validate``: ids and labels in range, counts whole and
non-negative); the jitted kernels (``_count_tokens``, ``_count_matrix``) take them as checked.
"""
from __future__ import annotations

import functools
import warnings
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import PartitionSpec as P

from jaxml import buckets
from jaxml.naive_bayes import validate
from jaxml.parallel import DATA_AXIS, data_mesh


def _as_int32(a):
    return a.astype(jnp.int32) if isinstance(a, jax.Array) else np.asarray(a, np.int32)


def check_token_stream(token_ids, token_labels, doc_labels, num_classes, vocab_size, who: str):
    """Checked (token_ids, token_labels, doc_labels) as int32: ids in [0, V), labels in [-1, C)."""
    num_classes = validate.positive_int(num_classes, "num_classes", who)
    vocab_size = validate.positive_int(vocab_size, "vocab_size", who)
    ids = validate.array(token_ids, "token_ids", who, ndim=1)
    tlab = validate.array(token_labels, "token_labels", who, ndim=1)
    dlab = validate.array(doc_labels, "doc_labels", who, ndim=1)
    validate.same_length(ids, tlab, "token_ids", "token_labels", who)
    validate.in_range(ids, 0, vocab_size, "token_ids", who, meaning=f"term ids 0..{vocab_size - 1}")
    for a, name in ((tlab, "token_labels"), (dlab, "doc_labels")):
        validate.in_range(a, -1, num_classes, name, who, meaning=f"class labels 0..{num_classes - 1}, -1 = padding")
    return _as_int32(ids), _as_int32(tlab), _as_int32(dlab)


def count_tokens(token_ids, token_labels, doc_labels, *, num_classes: int, vocab_size: int):
    """Integer counts from a token stream: one segment-sum over fused (class, token) ids.

    token_ids: i32[T] term ids in [0, V); token_labels: i32[T] the class of each token's document (-1 =
    padding, not counted); doc_labels: i32[D] one per document (-1 = padding).
    Returns ``{"feature_count": i32[C, V], "class_count": i32[C]}``.
    """
    if validate.traced(token_ids, token_labels, doc_labels):
        return _count_tokens(token_ids, token_labels, doc_labels, num_classes=num_classes, vocab_size=vocab_size)
    args = check_token_stream(token_ids, token_labels, doc_labels, num_classes, vocab_size, "count_tokens")
    return _count_tokens(*args, num_classes=num_classes, vocab_size=vocab_size)


@functools.partial(jax.jit, static_argnames=("num_classes", "vocab_size"))
def _count_tokens(token_ids, token_labels, doc_labels, *, num_classes: int, vocab_size: int):
    valid = token_labels >= 0
    fused = jnp.where(valid, token_labels * vocab_size + token_ids, 0)
    feature = jax.ops.segment_sum(valid.astype(jnp.int32), fused,
                                  num_segments=num_classes * vocab_size)
    docs = doc_labels >= 0
    classes = jax.ops.segment_sum(docs.astype(jnp.int32), jnp.where(docs, doc_labels, 0),
                                  num_segments=num_classes)
    return {"feature_count": feature.reshape(num_classes, vocab_size), "class_count": classes}


def count_matrix(x, y, *, num_classes: int, binary: bool = False):
    """Counts from a dense ``x: int[N, V]`` count matrix and labels ``y: i32[N]`` in [0, C) (exact integers).

    ``x`` must be finite and >= 0, and whole numbers unless ``binary=True``, which counts presence
    (``x > 0``), the statistics of Bernoulli naive Bayes.
    """
    if not validate.traced(x, y):
        who = "count_matrix"
        num_classes = validate.positive_int(num_classes, "num_classes", who)
        x = validate.counts_matrix(x, who, whole=not binary)
        y = _as_int32(validate.labels(y, num_classes, x.shape[0], who))
    return _count_matrix(x, y, num_classes=num_classes, binary=bool(binary))


@functools.partial(jax.jit, static_argnames=("num_classes", "binary"))
def _count_matrix(x, y, *, num_classes: int, binary: bool = False):
    x = (x > 0) if binary else x
    x = x.astype(jnp.int32)
    return {"feature_count": jax.ops.segment_sum(x, y, num_segments=num_classes),
            "class_count": jax.ops.segment_sum(jnp.ones_like(y, jnp.int32), y,
                                               num_segments=num_classes)}


def add_counts(a, b):
    """``partial_fit``: counts of two disjoint batches add exactly to the counts of their union."""
    for key in ("feature_count", "class_count"):
        if key not in a or key not in b or np.shape(a[key]) != np.shape(b[key]):
            raise ValueError(f"add_counts: {key} shapes differ: {np.shape(a.get(key))} vs {np.shape(b.get(key))} "
                             "(same classes and vocabulary needed)")
    return jax.tree.map(jnp.add, a, b)


def partial_fit(counts, token_ids, token_labels, doc_labels, *, num_classes: int, vocab_size: int):
    """Streaming fit: ``counts`` (None for the first batch) plus the counts of one more batch.

    Exact: any split of the documents into batches gives the counts of one fit over all of them.
    The vocabulary is fixed up front (build it on the first batch or on a sample).
    """
    if counts is not None:
        validate.counts_dict(counts, "partial_fit")
        if np.shape(counts["feature_count"]) != (num_classes, vocab_size):
            raise ValueError(f"partial_fit: counts['feature_count'] has shape {np.shape(counts['feature_count'])}, "
                             f"expected (num_classes, vocab_size) = ({num_classes}, {vocab_size})")
    args = check_token_stream(token_ids, token_labels, doc_labels, num_classes, vocab_size, "partial_fit")
    new = _count_tokens(*args, num_classes=num_classes, vocab_size=vocab_size)
    return new if counts is None else add_counts(counts, new)


def pad_to(x: np.ndarray, size: int, fill) -> np.ndarray:
    """x[n] followed by size - n copies of ``fill`` (x itself when size = n)."""
    pad = size - len(x)
    return np.concatenate([x, np.full(pad, fill, x.dtype)]) if pad else x


def count_tokens_sharded(token_ids, token_labels, doc_labels, *, num_classes: int, vocab_size: int,
                         mesh: jax.sharding.Mesh | None = None):
    """:func:`count_tokens` with tokens and documents split over the ``data`` mesh axis.

    Each device counts its shard, one ``lax.psum`` adds the ``[C, V]`` integer counts, so the
    result is identical (bit for bit) to the single-device count for any number of devices.
    The token and document streams are padded (label -1: not counted) to ``buckets.bucket`` sizes, so
    another corpus of about the same size reuses the compiled counter.
    """
    ids, tlab, dlab = (np.asarray(a) for a in check_token_stream(
        token_ids, token_labels, doc_labels, num_classes, vocab_size, "count_tokens_sharded"))
    mesh = data_mesh() if mesh is None else mesh
    n = mesh.shape[DATA_AXIS]
    tokens, docs = buckets.bucket(len(ids), n), buckets.bucket(len(dlab), n)
    ids = pad_to(ids, tokens, 0)
    tlab = pad_to(tlab, tokens, -1)
    dlab = pad_to(dlab, docs, -1)
    return _sharded_counter(mesh, num_classes, vocab_size)(ids, tlab, dlab)


@functools.lru_cache(maxsize=32)
def _sharded_counter(mesh, num_classes: int, vocab_size: int):
    """One jitted shard_map per (mesh, C, V), so repeated fits do not re-trace."""
    def local(ids, tlab, dlab):
        counts = _count_tokens(ids, tlab, dlab, num_classes=num_classes, vocab_size=vocab_size)
        return jax.tree.map(lambda c: lax.psum(c, DATA_AXIS), counts)

    return jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P(DATA_AXIS),) * 3, out_specs=P()))


def check_class_counts(class_count, class_names: Sequence[str] | None = None) -> None:
    """Warn about classes without training documents (their fitted prior is -inf)."""
    counts = np.asarray(class_count)
    for c in np.flatnonzero(counts == 0):
        name = class_names[c] if class_names is not None else str(c)
        warnings.warn(f"class {name!r} (index {c}) has no training documents: its fitted log prior "
                      f"is -inf and it will never be predicted", RuntimeWarning, stacklevel=2)
