"""The naive Bayes log-count ratio of Wang & Manning (2012), the feature scaling of NBSVM and NB-LR.

From presence counts (``feature_count[c, v]`` = number of class-``c`` documents holding term ``v``, the
counts of a binarised corpus, ``counts.py``) and a smoothing ``alpha > 0``, one-vs-rest for class ``c``::

    p_c = alpha + feature_count[c]                    (documents of class c)
    q_c = alpha + sum_{c' != c} feature_count[c']     (all the others)
    r[c] = log(p_c / |p_c|_1) - log(q_c / |q_c|_1)    f[C, V]

With two classes ``r[1] = -r[0]`` is the usual single ratio of positives over negatives. ``r[c, v]`` is
the weight multinomial naive Bayes over presence features gives term ``v`` for ``c`` against the rest;
NBSVM learns a linear model over the scaled features ``r * x`` instead of using ``r`` as it is.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxml.naive_bayes.classifier import float_dtype


@jax.jit
def _ratio(feature_count, alpha):
    fc = feature_count.astype(float_dtype())
    p = fc + alpha
    q = fc.sum(axis=0, keepdims=True) - fc + alpha
    return (jnp.log(p) - jnp.log(p.sum(axis=1, keepdims=True))) - (jnp.log(q) - jnp.log(q.sum(axis=1, keepdims=True)))


def log_count_ratio(feature_count, *, alpha: float = 1.0):
    """``r: f[C, V]`` from presence counts ``feature_count: int[C, V]`` (C >= 2), smoothing ``alpha > 0`` (checked
    when it is a number; a traced alpha is taken as checked)."""
    if isinstance(alpha, (int, float)) and not alpha > 0:
        raise ValueError(f"alpha must be > 0 (additive smoothing of the log-count ratio), got {alpha}")
    feature_count = jnp.asarray(feature_count)
    if feature_count.ndim != 2 or feature_count.shape[0] < 2:
        raise ValueError(f"feature_count must be [C, V] with C >= 2 classes, got shape {feature_count.shape}")
    return _ratio(feature_count, alpha)
