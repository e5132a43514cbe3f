"""Naive Bayes as counting kernels: multinomial, Bernoulli, complement and Gaussian.

Fitting a discrete naive Bayes is counting. For documents ``d`` with term counts ``x[d, v]`` and
labels ``y[d]`` in ``0..C-1`` the sufficient statistics are two integer arrays::

    feature_count[c, v] = sum_{d : y[d] = c} x[d, v]          i32[C, V]
    class_count[c]      = #{d : y[d] = c}                      i32[C]

:func:`count_tokens` gets both from a flat token stream with ONE segment-sum over the fused
``(class, token)`` id ``y * V + v``. Counts are integers, so they add exactly: ``partial_fit`` is
:func:`add_counts`, and :func:`count_tokens_sharded` (a ``jax.shard_map`` over the ``data`` mesh
axis: per-device counts, one ``lax.psum``) returns the same counts bit for bit on any number of
devices. Only the ``[C, V]`` counts ever leave a device. int32 counts hold up to 2^31 - 1 tokens per
(class, term).

Every discrete variant then predicts with a linear score ``s[d, c] = sum_v x[d, v] W[c, v] + b[c]``
(log space throughout) and ``log p(c | d) = s[d, c] - logsumexp_c s[d, c]``:

- multinomial (``x`` = counts), Lidstone/Laplace smoothing ``alpha``::

      log theta[c, v] = log(feature_count[c, v] + alpha) - log(sum_v' feature_count[c, v'] + alpha V)
      W = log theta,  b = log prior

  The denominator is the number of WORDS in class ``c`` (plus ``alpha V``), so each row of theta
  sums to 1. The from-scratch book divides by the class's number of DOCUMENTS instead, which is not
  a probability over the vocabulary; jaxml uses the word count, as scikit-learn's MultinomialNB.
- Bernoulli (``x`` in {0, 1}: term present; ``feature_count`` = document frequency)::

      log p[c, v] = log(feature_count[c, v] + alpha) - log(class_count[c] + 2 alpha)
      W = log p - log(1 - p),  b = log prior + sum_v log(1 - p[c, v])

- complement (Rennie et al. 2003, "Tackling the poor assumptions of naive Bayes text
  classifiers"; identical to scikit-learn's ComplementNB): with ``comp[c, v] = sum_{c' != c}
  feature_count[c', v] + alpha``, ``W = -log(comp[c, v] / sum_v comp[c, v])`` (or, with
  ``norm=True``, ``log(comp/..) / sum_v log(comp/..)``, Rennie's weight normalisation), ``b = 0``
  (the prior is used only when there is a single class, as in scikit-learn).
- Gaussian (numeric features): per-class mean and variance, merged exactly in the Chan et al.
  pairwise form, ``var += var_smoothing * max_f var_total[f]`` as scikit-learn's GaussianNB::

      s[d, c] = log prior[c] - 1/2 sum_f log(2 pi var[c, f]) - 1/2 sum_f (x[d, f] - mu[c, f])^2 / var[c, f]

Priors: fitted ``log(class_count / N)``, uniform (``fit_prior=False``) or given (``class_prior``).
A class absent from training has a fitted log prior of -inf and is never predicted
(:func:`check_class_counts` says so); an empty document scores ``b`` alone, i.e. the prior.
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

from jaxml.parallel import DATA_AXIS, data_mesh

KINDS = ("multinomial", "bernoulli", "complement")


def _float_dtype():
    return jax.dtypes.canonicalize_dtype(jnp.float64)     # float32 unless x64 is enabled


# ------------------------------------------------------------------------------------------------
# Counting


@functools.partial(jax.jit, static_argnames=("num_classes", "vocab_size"))
def count_tokens(token_ids, token_labels, doc_labels, *, num_classes: int, vocab_size: int):
    """Integer counts from a token stream: one segment-sum over fused (class, token) ids.

    token_ids: i32[T] term ids; token_labels: i32[T] the class of each token's document (-1 =
    padding, not counted); doc_labels: i32[D] one per document (-1 = padding).
    Returns ``{"feature_count": i32[C, V], "class_count": i32[C]}``.
    """
    valid = token_labels >= 0
    fused = jnp.where(valid, token_labels * vocab_size + token_ids, 0)
    feature = jax.ops.segment_sum(valid.astype(jnp.int32), fused,
                                  num_segments=num_classes * vocab_size)
    docs = doc_labels >= 0
    classes = jax.ops.segment_sum(docs.astype(jnp.int32), jnp.where(docs, doc_labels, 0),
                                  num_segments=num_classes)
    return {"feature_count": feature.reshape(num_classes, vocab_size), "class_count": classes}


@functools.partial(jax.jit, static_argnames=("num_classes", "binary"))
def count_matrix(x, y, *, num_classes: int, binary: bool = False):
    """Counts from a dense ``x: int[N, V]`` count matrix and labels ``y: i32[N]`` (exact integers).

    ``binary=True`` counts presence (``x > 0``), the statistics of Bernoulli naive Bayes.
    """
    x = (x > 0) if binary else x
    x = x.astype(jnp.int32)
    return {"feature_count": jax.ops.segment_sum(x, y, num_segments=num_classes),
            "class_count": jax.ops.segment_sum(jnp.ones_like(y, jnp.int32), y,
                                               num_segments=num_classes)}


def add_counts(a, b):
    """``partial_fit``: counts of two disjoint batches add exactly to the counts of their union."""
    return jax.tree.map(jnp.add, a, b)


def partial_fit(counts, token_ids, token_labels, doc_labels, *, num_classes: int, vocab_size: int):
    """Streaming fit: ``counts`` (None for the first batch) plus the counts of one more batch.

    Exact: any split of the documents into batches gives the counts of one fit over all of them.
    The vocabulary is fixed up front (build it on the first batch or on a sample).
    """
    new = count_tokens(token_ids, token_labels, doc_labels, num_classes=num_classes,
                       vocab_size=vocab_size)
    return new if counts is None else add_counts(counts, new)


def _pad_to(x: np.ndarray, multiple: int, fill) -> np.ndarray:
    pad = (-len(x)) % multiple
    return np.concatenate([x, np.full(pad, fill, x.dtype)]) if pad else x


def count_tokens_sharded(token_ids, token_labels, doc_labels, *, num_classes: int, vocab_size: int,
                         mesh: jax.sharding.Mesh | None = None):
    """:func:`count_tokens` with tokens and documents split over the ``data`` mesh axis.

    Each device counts its shard, one ``lax.psum`` adds the ``[C, V]`` integer counts, so the
    result is identical (bit for bit) to the single-device count for any number of devices.
    """
    mesh = data_mesh() if mesh is None else mesh
    n = mesh.shape[DATA_AXIS]
    ids = _pad_to(np.asarray(token_ids, np.int32), n, 0)
    tlab = _pad_to(np.asarray(token_labels, np.int32), n, -1)
    dlab = _pad_to(np.asarray(doc_labels, np.int32), n, -1)
    return _sharded_counter(mesh, num_classes, vocab_size)(ids, tlab, dlab)


@functools.lru_cache(maxsize=32)
def _sharded_counter(mesh, num_classes: int, vocab_size: int):
    """One jitted shard_map per (mesh, C, V), so repeated fits do not re-trace."""
    def local(ids, tlab, dlab):
        counts = count_tokens(ids, tlab, dlab, num_classes=num_classes, vocab_size=vocab_size)
        return jax.tree.map(lambda c: lax.psum(c, DATA_AXIS), counts)

    return jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P(DATA_AXIS),) * 3, out_specs=P()))


def check_class_counts(class_count, class_names: Sequence[str] | None = None) -> None:
    """Warn about classes without training documents (their fitted prior is -inf)."""
    counts = np.asarray(class_count)
    for c in np.flatnonzero(counts == 0):
        name = class_names[c] if class_names is not None else str(c)
        warnings.warn(f"class {name!r} (index {c}) has no training documents: its fitted log prior "
                      f"is -inf and it will never be predicted", RuntimeWarning, stacklevel=2)


# ------------------------------------------------------------------------------------------------
# Parameters from counts


def class_log_prior(class_count, *, fit_prior: bool = True, class_prior=None, dtype=None):
    """``log(class_count / N)`` (fitted), ``-log C`` (uniform) or ``log(class_prior)`` (given)."""
    dtype = dtype or _float_dtype()
    c = class_count.shape[0]
    if class_prior is not None:
        prior = jnp.asarray(class_prior, dtype)
        if prior.shape != (c,):
            raise ValueError(f"class_prior has shape {prior.shape}, expected ({c},)")
        return jnp.log(prior)
    if not fit_prior:
        return jnp.full((c,), -jnp.log(c), dtype)
    counts = class_count.astype(dtype)
    return jnp.log(counts) - jnp.log(counts.sum())


def _check_alpha(alpha):
    if isinstance(alpha, (int, float)) and not alpha > 0:
        raise ValueError(f"alpha must be > 0 (additive smoothing), got {alpha}")


@functools.partial(jax.jit, static_argnames=("fit_prior",))
def _multinomial(counts, alpha, class_prior, fit_prior):
    dtype = _float_dtype()
    smoothed = counts["feature_count"].astype(dtype) + alpha
    flp = jnp.log(smoothed) - jnp.log(smoothed.sum(axis=1, keepdims=True))   # word count, not docs
    prior = class_log_prior(counts["class_count"], fit_prior=fit_prior, class_prior=class_prior)
    return {"feature_log_prob": flp, "class_log_prior": prior, "weight": flp, "bias": prior}


@functools.partial(jax.jit, static_argnames=("fit_prior",))
def _bernoulli(counts, alpha, class_prior, fit_prior):
    dtype = _float_dtype()
    flp = (jnp.log(counts["feature_count"].astype(dtype) + alpha)
           - jnp.log(counts["class_count"].astype(dtype) + 2 * alpha)[:, None])
    neg = jnp.log1p(-jnp.exp(flp))
    prior = class_log_prior(counts["class_count"], fit_prior=fit_prior, class_prior=class_prior)
    return {"feature_log_prob": flp, "class_log_prior": prior, "weight": flp - neg,
            "bias": prior + neg.sum(axis=1)}


@functools.partial(jax.jit, static_argnames=("fit_prior", "norm"))
def _complement(counts, alpha, class_prior, fit_prior, norm):
    dtype = _float_dtype()
    fc = counts["feature_count"].astype(dtype)
    comp = fc.sum(axis=0, keepdims=True) + alpha - fc
    logged = jnp.log(comp) - jnp.log(comp.sum(axis=1, keepdims=True))
    flp = logged / logged.sum(axis=1, keepdims=True) if norm else -logged
    prior = class_log_prior(counts["class_count"], fit_prior=fit_prior, class_prior=class_prior)
    bias = prior if fc.shape[0] == 1 else jnp.zeros_like(prior)
    return {"feature_log_prob": flp, "class_log_prior": prior, "weight": flp, "bias": bias}


def fit_params(counts, kind: str = "multinomial", *, alpha: float = 1.0, fit_prior: bool = True,
               class_prior=None, norm: bool = False):
    """Log-space parameters ``{"feature_log_prob", "class_log_prior", "weight", "bias"}`` of a
    discrete naive Bayes from its counts. ``kind``: multinomial | bernoulli | complement."""
    _check_alpha(alpha)
    if kind == "multinomial":
        return _multinomial(counts, alpha, class_prior, fit_prior)
    if kind == "bernoulli":
        return _bernoulli(counts, alpha, class_prior, fit_prior)
    if kind == "complement":
        return _complement(counts, alpha, class_prior, fit_prior, norm)
    raise ValueError(f"unknown naive Bayes kind {kind!r}; expected one of {KINDS}")


# ------------------------------------------------------------------------------------------------
# Prediction


@jax.jit
def joint_log_likelihood(params, x):
    """Scores ``s: f[N, C] = x @ W.T + b`` for a dense ``x: [N, V]`` (Bernoulli: ``x`` in {0, 1})."""
    w = params["weight"]
    return jnp.asarray(x, w.dtype) @ w.T + params["bias"]


@functools.partial(jax.jit, static_argnames=("num_docs",))
def token_joint_log_likelihood(params, token_ids, doc_ids, *, num_docs: int):
    """Scores ``f[D, C]`` from a token stream: ``b + segment_sum_d W[:, token]`` (Bernoulli: each
    term at most once per document, see ``EncodedCorpus.binarize``). Empty documents get ``b``."""
    per_token = params["weight"].T[token_ids]                       # [T, C]
    return jax.ops.segment_sum(per_token, doc_ids, num_segments=num_docs) + params["bias"]


@jax.jit
def log_proba_from_scores(scores):
    """``log p(c | d) = s[d, c] - logsumexp_c s[d, c]``."""
    return scores - jax.nn.logsumexp(scores, axis=1, keepdims=True)


def predict_log_proba(params, x):
    """Class log-posteriors ``f[N, C]`` for a dense matrix ``x``."""
    return log_proba_from_scores(joint_log_likelihood(params, x))


def predict(params, x):
    """Most probable class ``i32[N]`` for a dense matrix ``x``."""
    return jnp.argmax(joint_log_likelihood(params, x), axis=1)


# ------------------------------------------------------------------------------------------------
# Gaussian naive Bayes


@functools.partial(jax.jit, static_argnames=("num_classes",))
def gaussian_stats(x, y, *, num_classes: int):
    """Per-class ``{"count": f[C], "mean": f[C, F], "m2": f[C, F]}`` (m2 = sum of squared
    deviations from the class mean) of ``x: f[N, F]`` with labels ``y: i32[N]``."""
    dtype = _float_dtype()
    x = jnp.asarray(x, dtype)
    count = jax.ops.segment_sum(jnp.ones(x.shape[0], dtype), y, num_segments=num_classes)
    mean = jax.ops.segment_sum(x, y, num_segments=num_classes) / jnp.maximum(count, 1)[:, None]
    m2 = jax.ops.segment_sum((x - mean[y]) ** 2, y, num_segments=num_classes)
    return {"count": count, "mean": mean, "m2": m2}


@jax.jit
def merge_gaussian_stats(a, b):
    """Exact pairwise merge (Chan, Golub & LeVeque): the ``partial_fit`` of Gaussian NB."""
    n = a["count"] + b["count"]
    safe = jnp.maximum(n, 1)[:, None]
    delta = b["mean"] - a["mean"]
    mean = a["mean"] + delta * (b["count"][:, None] / safe)
    m2 = a["m2"] + b["m2"] + delta ** 2 * (a["count"] * b["count"])[:, None] / safe
    return {"count": n, "mean": mean, "m2": m2}


def gaussian_params(stats, *, var_smoothing: float = 1e-9, class_prior=None):
    """``{"theta", "var", "class_log_prior"}`` as scikit-learn's GaussianNB: ``var`` gets
    ``var_smoothing * max_f var_total[f]`` added, the total variance of all data seen."""
    return _gaussian_params(stats, var_smoothing, class_prior)


@jax.jit
def _gaussian_params(stats, var_smoothing, class_prior):
    total = functools.reduce(
        merge_gaussian_stats,
        [jax.tree.map(lambda s, i=i: s[i:i + 1], stats) for i in range(stats["count"].shape[0])])
    epsilon = var_smoothing * jnp.max(total["m2"][0] / total["count"][0])
    var = stats["m2"] / jnp.maximum(stats["count"], 1)[:, None] + epsilon
    prior = class_log_prior(stats["count"], class_prior=class_prior)
    return {"theta": stats["mean"], "var": var, "class_log_prior": prior}


@jax.jit
def gaussian_joint_log_likelihood(params, x):
    """Scores ``f[N, C]``: ``log prior - 1/2 sum log(2 pi var) - 1/2 sum (x - mu)^2 / var``."""
    var, theta = params["var"], params["theta"]
    x = jnp.asarray(x, var.dtype)
    norm = -0.5 * jnp.sum(jnp.log(2 * jnp.pi * var), axis=1)
    sq = jnp.sum((x[:, None, :] - theta[None]) ** 2 / var[None], axis=2)
    return params["class_log_prior"] + norm - 0.5 * sq
