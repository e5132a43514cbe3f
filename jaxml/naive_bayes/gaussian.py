"""Gaussian naive Bayes for numeric features, as scikit-learn's GaussianNB.

Per-class count, mean and sum of squared deviations ``m2``, merged exactly in the pairwise form of
Chan, Golub & LeVeque (so ``partial_fit`` and sharded fits equal one fit over all rows); the variance
gets ``var_smoothing * max_f var_total[f]`` added. For ``x: f[N, F]`` the scores are::

    s[d, c] = log prior[c] - 1/2 sum_f log(2 pi var[c, f]) - 1/2 sum_f (x[d, f] - mu[c, f])^2 / var[c, f]

and ``log p(c | d) = s - logsumexp_c s`` (``classifier.log_proba_from_scores``).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxml.naive_bayes.classifier import class_log_prior, float_dtype


@functools.partial(jax.jit, static_argnames=("num_classes",))
def gaussian_stats(x, y, *, num_classes: int):
    """Per-class ``{"count": f[C], "mean": f[C, F], "m2": f[C, F]}`` (m2 = sum of squared
    deviations from the class mean) of ``x: f[N, F]`` with labels ``y: i32[N]``."""
    dtype = float_dtype()
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
