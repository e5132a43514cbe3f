"""Gaussian naive Bayes for numeric features, as scikit-learn's GaussianNB.

Per-class count, mean and sum of squared deviations ``m2``, merged exactly in the pairwise form of
Chan, Golub & LeVeque (so ``partial_fit`` and sharded fits equal one fit over all rows); the variance
gets ``var_smoothing * max_f var_total[f]`` added. For ``x: f[N, F]`` the scores are::

    s[d, c] = log prior[c] - 1/2 sum_f log(2 pi var[c, f]) - 1/2 sum_f (x[d, f] - mu[c, f])^2 / var[c, f]

and ``log p(c | d) = s - logsumexp_c s`` (``classifier.log_proba_from_scores``).

Inputs are checked first (``validate``): a NaN or inf feature would make every fitted mean and variance of
its class NaN, and so every prediction; labels must lie in 0..C-1 (``segment_sum`` would drop others).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.naive_bayes import validate
from jaxml.naive_bayes.classifier import class_log_prior, float_dtype

STATS = ("count", "mean", "m2")


def gaussian_stats(x, y, *, num_classes: int):
    """Per-class ``{"count": f[C], "mean": f[C, F], "m2": f[C, F]}`` (m2 = sum of squared
    deviations from the class mean) of ``x: f[N, F]`` (finite) with labels ``y: i32[N]`` in [0, C)."""
    if not validate.traced(x, y):
        who = "gaussian_stats"
        num_classes = validate.positive_int(num_classes, "num_classes", who)
        x = validate.array(x, "x", who, ndim=2)
        validate.finite(x, "x", who)
        y = validate.labels(y, num_classes, x.shape[0], who)
        y = y.astype(jnp.int32) if isinstance(y, jax.Array) else np.asarray(y, np.int32)
    return _gaussian_stats(x, y, num_classes=num_classes)


def _check_stats(stats, who: str, name: str = "stats"):
    if not isinstance(stats, dict) or not set(STATS) <= set(stats):
        raise ValueError(f"{who}: {name} must be a dict with {STATS} (from gaussian_stats)")
    if len(np.shape(stats["mean"])) != 2:
        raise ValueError(f"{who}: {name}['mean'] must be [classes, features], got shape {np.shape(stats['mean'])}")
    c, f = np.shape(stats["mean"])
    for key, shape in (("count", (c,)), ("m2", (c, f))):
        if np.shape(stats[key]) != shape:
            raise ValueError(f"{who}: {name}['{key}'] has shape {np.shape(stats[key])}, expected {shape}")
    if validate.traced(*stats.values()):
        return
    for key in STATS:
        validate.finite(stats[key], f"{name}['{key}']", who)
    validate.non_negative(stats["count"], f"{name}['count']", who)
    validate.non_negative(stats["m2"], f"{name}['m2']", who)


@functools.partial(jax.jit, static_argnames=("num_classes",))
def _gaussian_stats(x, y, *, num_classes: int):
    dtype = float_dtype()
    x = jnp.asarray(x, dtype)
    count = jax.ops.segment_sum(jnp.ones(x.shape[0], dtype), y, num_segments=num_classes)
    mean = jax.ops.segment_sum(x, y, num_segments=num_classes) / jnp.maximum(count, 1)[:, None]
    m2 = jax.ops.segment_sum((x - mean[y]) ** 2, y, num_segments=num_classes)
    return {"count": count, "mean": mean, "m2": m2}


def merge_gaussian_stats(a, b):
    """Exact pairwise merge (Chan, Golub & LeVeque): the ``partial_fit`` of Gaussian NB."""
    _check_stats(a, "merge_gaussian_stats", "a")
    _check_stats(b, "merge_gaussian_stats", "b")
    if np.shape(a["mean"]) != np.shape(b["mean"]):
        raise ValueError(f"merge_gaussian_stats: a has classes x features {np.shape(a['mean'])}, b has "
                         f"{np.shape(b['mean'])}")
    return _merge_gaussian_stats(a, b)


@jax.jit
def _merge_gaussian_stats(a, b):
    n = a["count"] + b["count"]
    safe = jnp.maximum(n, 1)[:, None]
    delta = b["mean"] - a["mean"]
    mean = a["mean"] + delta * (b["count"][:, None] / safe)
    m2 = a["m2"] + b["m2"] + delta ** 2 * (a["count"] * b["count"])[:, None] / safe
    return {"count": n, "mean": mean, "m2": m2}


def gaussian_params(stats, *, var_smoothing: float = 1e-9, class_prior=None):
    """``{"theta", "var", "class_log_prior"}`` as scikit-learn's GaussianNB: ``var`` gets
    ``var_smoothing * max_f var_total[f]`` added, the total variance of all data seen.
    A variance of 0 (every feature constant, or ``var_smoothing=0`` with a constant feature in a class)
    fails here: its scores would be NaN or inf."""
    who = "gaussian_params"
    _check_stats(stats, who)
    if isinstance(var_smoothing, bool) or not (np.isfinite(var_smoothing) and var_smoothing >= 0):
        raise ValueError(f"{who}: var_smoothing must be finite and >= 0, got {var_smoothing!r}")
    validate.class_prior(class_prior, np.shape(stats["count"])[0], who)
    if not validate.traced(stats["count"]) and not float(np.sum(np.asarray(stats["count"]))) > 0:
        raise ValueError(f"{who}: stats hold no rows (every class count is 0)")
    params = _gaussian_params(stats, var_smoothing, class_prior)
    var = params["var"]
    if not validate.traced(var) and not bool(jnp.all(var > 0)):
        c, f = np.argwhere(np.asarray(var) <= 0)[0]
        raise ValueError(f"{who}: the variance of feature {f} in class {c} is 0 after smoothing (every feature "
                         f"constant, or var_smoothing={var_smoothing}): its scores would be NaN or inf")
    return params


@jax.jit
def _gaussian_params(stats, var_smoothing, class_prior):
    total = functools.reduce(
        _merge_gaussian_stats,
        [jax.tree.map(lambda s, i=i: s[i:i + 1], stats) for i in range(stats["count"].shape[0])])
    epsilon = var_smoothing * jnp.max(total["m2"][0] / total["count"][0])
    var = stats["m2"] / jnp.maximum(stats["count"], 1)[:, None] + epsilon
    prior = class_log_prior(stats["count"], class_prior=class_prior)
    return {"theta": stats["mean"], "var": var, "class_log_prior": prior}


def gaussian_joint_log_likelihood(params, x):
    """Scores ``f[N, C]``: ``log prior - 1/2 sum log(2 pi var) - 1/2 sum (x - mu)^2 / var``; x: f[N, F], finite."""
    if not validate.traced(x):
        who = "gaussian_joint_log_likelihood"
        x = validate.array(x, "x", who, ndim=2)
        validate.finite(x, "x", who)
        f = np.shape(params["theta"])[1]
        if x.shape[1] != f:
            raise ValueError(f"{who}: x has {x.shape[1]} columns but the model has {f} features")
    return _gaussian_joint_log_likelihood(params, x)


@jax.jit
def _gaussian_joint_log_likelihood(params, x):
    var, theta = params["var"], params["theta"]
    x = jnp.asarray(x, var.dtype)
    norm = -0.5 * jnp.sum(jnp.log(2 * jnp.pi * var), axis=1)
    sq = jnp.sum((x[:, None, :] - theta[None]) ** 2 / var[None], axis=2)
    return params["class_log_prior"] + norm - 0.5 * sq
