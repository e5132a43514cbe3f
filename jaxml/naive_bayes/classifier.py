"""Discrete naive Bayes from its counts: multinomial, Bernoulli and complement, all linear in log space.

Every variant predicts with a linear score ``s[d, c] = sum_v x[d, v] W[c, v] + b[c]`` (log space
throughout) and ``log p(c | d) = s[d, c] - logsumexp_c s[d, c]``, from the counts of ``counts.py``
(``feature_count: i32[C, V]``, ``class_count: i32[C]``):

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

Priors: fitted ``log(class_count / N)``, uniform (``fit_prior=False``) or given (``class_prior``).
A class absent from training has a fitted log prior of -inf and is never predicted
(``counts.check_class_counts`` says so); an empty document scores ``b`` alone, i.e. the prior.

Inputs are checked as scikit-learn's (``validate``): counts finite and >= 0, ``alpha`` > 0, a given prior of
shape (C,) summing to 1, and at prediction a finite, non-negative ``x`` with the model's V columns and
token ids in [0, V).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxml import buckets
from jaxml.naive_bayes import validate

KINDS = ("multinomial", "bernoulli", "complement")


def float_dtype():
    """The dtype of fitted parameters: float64 when x64 is enabled, else float32."""
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def class_log_prior(class_count, *, fit_prior: bool = True, class_prior=None, dtype=None):
    """``log(class_count / N)`` (fitted), ``-log C`` (uniform) or ``log(class_prior)`` (given)."""
    dtype = dtype or float_dtype()
    c = class_count.shape[0]
    if class_prior is not None:
        validate.class_prior(class_prior, c, "class_log_prior")
        prior = jnp.asarray(class_prior, dtype)
        if prior.shape != (c,):
            raise ValueError(f"class_prior has shape {prior.shape}, expected ({c},)")
        return jnp.log(prior)
    if not fit_prior:
        return jnp.full((c,), -jnp.log(c), dtype)
    counts = class_count.astype(dtype)
    return jnp.log(counts) - jnp.log(counts.sum())


@functools.partial(jax.jit, static_argnames=("fit_prior",))
def _multinomial(counts, alpha, class_prior, fit_prior):
    dtype = float_dtype()
    smoothed = counts["feature_count"].astype(dtype) + alpha
    flp = jnp.log(smoothed) - jnp.log(smoothed.sum(axis=1, keepdims=True))   # word count, not docs
    prior = class_log_prior(counts["class_count"], fit_prior=fit_prior, class_prior=class_prior)
    return {"feature_log_prob": flp, "class_log_prior": prior, "weight": flp, "bias": prior}


@functools.partial(jax.jit, static_argnames=("fit_prior",))
def _bernoulli(counts, alpha, class_prior, fit_prior):
    dtype = float_dtype()
    flp = (jnp.log(counts["feature_count"].astype(dtype) + alpha)
           - jnp.log(counts["class_count"].astype(dtype) + 2 * alpha)[:, None])
    neg = jnp.log1p(-jnp.exp(flp))
    prior = class_log_prior(counts["class_count"], fit_prior=fit_prior, class_prior=class_prior)
    return {"feature_log_prob": flp, "class_log_prior": prior, "weight": flp - neg,
            "bias": prior + neg.sum(axis=1)}


@functools.partial(jax.jit, static_argnames=("fit_prior", "norm"))
def _complement(counts, alpha, class_prior, fit_prior, norm):
    dtype = float_dtype()
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
    discrete naive Bayes from its counts. ``kind``: multinomial | bernoulli | complement.

    counts: ``{"feature_count": [C, V], "class_count": [C]}``, finite and >= 0 (fractional sums allowed, as
    scikit-learn's fit of non-integer x); alpha: > 0; class_prior: (C,), >= 0, summing to 1."""
    who = "fit_params"
    fc, _ = validate.counts_dict(counts, who)
    validate.positive_scalar_or_array(alpha, "alpha", who)
    validate.class_prior(class_prior, fc.shape[0], who)
    if kind == "multinomial":
        return _multinomial(counts, alpha, class_prior, fit_prior)
    if kind == "bernoulli":
        return _bernoulli(counts, alpha, class_prior, fit_prior)
    if kind == "complement":
        return _complement(counts, alpha, class_prior, fit_prior, norm)
    raise ValueError(f"unknown naive Bayes kind {kind!r}; expected one of {KINDS}")


def check_features(params, x, who: str):
    """x as a checked [N, V] matrix for params of V features: finite and >= 0."""
    if validate.traced(x):
        return x
    x = validate.counts_matrix(x, who, whole=False)
    v = np.shape(params["weight"])[1]
    if x.shape[1] != v:
        raise ValueError(f"{who}: x has {x.shape[1]} columns but the model has {v} features")
    return x


def joint_log_likelihood(params, x):
    """Scores ``s: f[N, C] = x @ W.T + b`` for a dense ``x: [N, V]`` (Bernoulli: ``x`` in {0, 1}); x finite, >= 0."""
    return _joint_log_likelihood(params, check_features(params, x, "joint_log_likelihood"))


@jax.jit
def _joint_log_likelihood(params, x):
    w = params["weight"]
    return jnp.asarray(x, w.dtype) @ w.T + params["bias"]


def token_joint_log_likelihood(params, token_ids, doc_ids, *, num_docs: int):
    """Scores ``f[D, C]`` from a token stream: ``b + segment_sum_d W[:, token]`` (Bernoulli: each
    term at most once per document, see ``EncodedCorpus.binarize``). Empty documents get ``b``.
    token_ids: [T] in [0, V); doc_ids: [T] in [0, num_docs)."""
    if not validate.traced(token_ids, doc_ids):
        token_ids, doc_ids, num_docs = _check_stream(params, token_ids, doc_ids, num_docs,
                                                     "token_joint_log_likelihood")
    return _token_joint_log_likelihood(params, token_ids, doc_ids, num_docs=num_docs)


def _check_stream(params, token_ids, doc_ids, num_docs, who: str):
    """Host-side checks of a token stream against the model's vocabulary: (token_ids, doc_ids, num_docs)."""
    num_docs = validate.positive_int(num_docs, "num_docs", who, minimum=0)
    v = np.shape(params["weight"])[1]
    token_ids = validate.array(token_ids, "token_ids", who, ndim=1)
    doc_ids = validate.array(doc_ids, "doc_ids", who, ndim=1)
    validate.same_length(token_ids, doc_ids, "token_ids", "doc_ids", who)
    validate.in_range(token_ids, 0, v, "token_ids", who, meaning=f"term ids of the model's {v} terms")
    validate.in_range(doc_ids, 0, num_docs, "doc_ids", who, meaning=f"documents 0..{num_docs - 1}")
    return token_ids, doc_ids, num_docs


def token_scores_bucketed(params, token_ids, doc_ids, *, num_docs: int) -> np.ndarray:
    """``token_joint_log_likelihood`` of host arrays as NumPy f[D, C], computed on streams padded to
    ``buckets.bucket`` sizes (T tokens, D documents) so that corpora of about the same size share one
    compiled program. Padding tokens name document ``D_b`` (out of range: segment_sum drops them), padding
    documents are cut off on the host: the scores are those of the unpadded streams."""
    token_ids, doc_ids, num_docs = _check_stream(params, token_ids, doc_ids, num_docs, "token_scores_bucketed")
    tokens, docs = buckets.bucket(len(token_ids)), buckets.bucket(num_docs)
    ids = np.zeros(tokens, np.int32)
    ids[:len(token_ids)] = token_ids
    owner = np.full(tokens, docs, np.int32)
    owner[:len(doc_ids)] = doc_ids
    return np.asarray(_token_joint_log_likelihood(params, ids, owner, num_docs=docs))[:num_docs]


@functools.partial(jax.jit, static_argnames=("num_docs",))
def _token_joint_log_likelihood(params, token_ids, doc_ids, *, num_docs: int):
    per_token = params["weight"].T[token_ids]                       # [T, C]
    return jax.ops.segment_sum(per_token, doc_ids, num_segments=num_docs) + params["bias"]


@jax.jit
def log_proba_from_scores(scores):
    """``log p(c | d) = s[d, c] - logsumexp_c s[d, c]``."""
    return scores - jax.nn.logsumexp(scores, axis=1, keepdims=True)


def predict_log_proba(params, x):
    """Class log-posteriors ``f[N, C]`` for a dense matrix ``x``."""
    return log_proba_from_scores(_joint_log_likelihood(params, check_features(params, x, "predict_log_proba")))


def predict(params, x):
    """Most probable class ``i32[N]`` for a dense matrix ``x``."""
    return jnp.argmax(_joint_log_likelihood(params, check_features(params, x, "predict")), axis=1)
