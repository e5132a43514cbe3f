"""NBSVM and NB-LR (Wang & Manning 2012): a linear model over naive-Bayes-scaled presence features.

With presence features ``x[d, t] in {0, 1}`` and the log-count ratio ``r`` (``ratio.py``), each of ``P``
binary problems (``P = 1`` for two classes: class 1 against class 0; one-vs-rest ``P = C`` otherwise;
``y[p, d] = +1`` when document ``d`` is of class ``p``, else ``-1``) scores

    s[p, d] = b[p] + sum_{t in d} w[p, t] r[p, t]

and ``(w, b)`` minimise liblinear's objective (the intercept is not penalised)

    f(w, b) = 1/2 |w|^2 + C sum_d loss(y[p, d] s[p, d]),   loss(m) = log(1 + e^-m)  (logistic, NB-LR)
                                                                  or max(0, 1 - m)^2 (squared hinge, NBSVM)

by L-BFGS (``optax.lbfgs`` with its zoom line search) from ``w = 0``, until ``|grad f| <= tol |grad f(0)|``
or ``max_iter`` iterations; ``r`` is counted (``counts.count_tokens``) in the same program. Every evaluation
of ``f`` is one map-reduce over the ``data`` mesh axis: each
device scores its shard of documents and takes the gradient of its part (``sparse.py``: gathers and segment-sums,
never a dense ``[D, V]`` matrix), and one collective adds the per-device values and gradients. That collective
sums an all-gather pairwise in a fixed order (``tree_sum``), not a ``psum`` (whose float32 order depends on the
layout, rounding L-BFGS amplifies), so every device count gives the same weights bit for bit. Afterwards Wang &
Manning's interpolation

    w' = (1 - beta) mean_t |w[p, t]| + beta w[p, t]

moves from the (scaled) naive Bayes model (``beta = 0``) to the trained one (``beta = 1``); the classifier
weights are ``W = w' * r``, the form ``classifier.token_joint_log_likelihood`` scores
(for two classes ``W = [-v / 2, v / 2]``, so that the softmax of the scores is ``sigmoid(s)``);
``decision_function`` / ``predict`` score ``s`` directly.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import PartitionSpec as P

from jaxml import compile_cache
from jaxml.naive_bayes import text, validate
from jaxml.naive_bayes.classifier import float_dtype
from jaxml.naive_bayes.counts import check_class_counts, count_tokens
from jaxml.naive_bayes.model import TextNBModel
from jaxml.naive_bayes.ratio import log_count_ratio
from jaxml.naive_bayes.sparse import chunk_documents, chunk_gradient, chunk_scores, gradient_bins
from jaxml.parallel import DATA_AXIS, data_mesh

LOSSES = ("logistic", "squared_hinge")


def margin_loss(loss: str, m):
    """``log(1 + e^-m)`` (logistic) or ``max(0, 1 - m)^2`` (squared hinge) of the margins ``m = y s``."""
    if loss == "logistic":
        return jax.nn.softplus(-m)
    if loss == "squared_hinge":
        return jnp.square(jnp.maximum(0.0, 1.0 - m))
    raise ValueError(f"unknown loss {loss!r}; expected one of {LOSSES}")


def interpolate(w, beta: float):
    """Wang & Manning's ``w' = (1 - beta) mean_t |w[p, t]| + beta w[p, t]`` for ``w: f[P, V]``."""
    w = jnp.asarray(w)
    return (1.0 - beta) * jnp.mean(jnp.abs(w), axis=1, keepdims=True) + beta * w


def classifier_params(w, b, r, beta: float) -> dict:
    """``{"weight": f[C, V], "bias": f[C]}`` for ``classifier.token_joint_log_likelihood`` from ``w, r: f[P, V]``
    and ``b: f[P]`` (``P = 1``: two classes scored ``-s / 2, s / 2``)."""
    v, b = interpolate(w, beta) * jnp.asarray(r), jnp.asarray(b)
    if v.shape[0] == 1:
        return {"weight": jnp.concatenate([-v / 2, v / 2]), "bias": jnp.concatenate([-b / 2, b / 2])}
    return {"weight": v, "bias": b}


@functools.partial(jax.jit, static_argnames=("num_docs",))
def _flat_scores(v, b, token_ids, doc_ids, num_docs: int):
    return (jax.ops.segment_sum(v.T[token_ids], doc_ids, num_docs, indices_are_sorted=True) + b).T


def decision_function(w, b, r, beta: float, enc: text.EncodedCorpus):
    """``s: f[P, D]``, ``s[p, d] = b[p] + sum_{t in d} w'[p, t] r[p, t]`` (``w'`` interpolated with ``beta``) of a
    presence-encoded corpus: one gather and one sorted segment-sum (for two classes, half the work of
    scoring ``classifier_params`` with ``classifier.token_joint_log_likelihood``)."""
    v = interpolate(w, beta) * jnp.asarray(r)
    return _flat_scores(v, jnp.asarray(b), enc.token_ids, enc.doc_ids(), num_docs=enc.num_docs)


def predict(w, b, r, beta: float, enc: text.EncodedCorpus) -> np.ndarray:
    """Classes ``i32[D]``: ``s > 0`` for two classes (``P = 1``), else ``argmax_p s[p]`` (one-vs-rest)."""
    s = np.asarray(decision_function(w, b, r, beta, enc))
    return (s[0] > 0).astype(np.int32) if s.shape[0] == 1 else s.argmax(axis=0).astype(np.int32)


def _with_gradient(value_and_grad):
    """``f(params)`` whose autodiff gradient is the one ``value_and_grad`` computes with it, so that
    ``jax.value_and_grad(f)`` (what optax's line search calls) runs the map-reduce once."""
    @jax.custom_vjp
    def f(params):
        return value_and_grad(params)[0]

    def fwd(params):
        return value_and_grad(params)

    def bwd(grad, ct):
        return (jax.tree.map(lambda g: ct * g, grad),)

    f.defvjp(fwd, bwd)
    return f


def tree_sum(x):
    """Pairwise sum over the leading axis (a power of two): ``((x0 + x1) + (x2 + x3)) + ...``, the same
    association for the whole axis as for aligned blocks of it summed first, so partial sums per device
    followed by a sum over devices give the one-device result bit for bit."""
    while x.shape[0] > 1:
        x = x[0::2] + x[1::2]
    return x[0]


def _norm(tree):
    return jnp.sqrt(sum(jnp.vdot(x, x) for x in jax.tree.leaves(tree)))


@functools.lru_cache(maxsize=32)
def _trainer(mesh, loss: str, num_classes: int, docs_per_group: int, vocab_size: int, max_iter: int,
             memory_size: int):
    """One jitted program per (mesh, loss, classes, shapes, max_iter, memory) — counts, ratio and the L-BFGS
    fit; alpha, C, tol and the data are traced, so a new hyperparameter does not recompile."""
    import optax  # here, not at the top: the NB-LR fit alone needs it, and ~0.1 s of every NB command's start-up
    data = P(DATA_AXIS)
    devices = mesh.shape[DATA_AXIS]
    classes = jnp.arange(1, 2) if num_classes == 2 else jnp.arange(num_classes)     # the P problems

    def local_counts(ids, chunk_doc, doc_labels):
        """Presence counts of this device's groups with the counting kernel (-1 = padding), one exact psum."""
        slot_labels = jnp.take_along_axis(doc_labels, chunk_doc, axis=1)[:, :, None]
        token_labels = jnp.where(ids < vocab_size, slot_labels, -1)
        counts = count_tokens(ids.reshape(-1), token_labels.reshape(-1), doc_labels.reshape(-1),
                              num_classes=num_classes, vocab_size=vocab_size)
        return jax.tree.map(lambda c: lax.psum(c, DATA_AXIS), counts)

    def local_value_and_grad(params, ids, bins, chunk_doc, y, mask, r, c):
        """This device's groups: ids i32[G_l, N, K], bins i32[G_l, N K], chunk_doc i32[G_l, N], y f[G_l, P, M],
        mask f[G_l, M]."""
        s = chunk_scores(params["w"] * r, ids, chunk_doc, docs_per_group) + params["b"][:, None]
        m = y * s
        per_doc = lambda m: mask[:, None, :] * margin_loss(loss, m)          # noqa: E731
        value = c * jnp.sum(per_doc(m), axis=(1, 2))                          # [G_l]
        g = c * y * jax.grad(lambda m: jnp.sum(per_doc(m)))(m)                # d value / d s: [G_l, P, M]
        dv = chunk_gradient(g, bins, chunk_doc, vocab_size)                   # [G_l, P, V]
        partial = {"value": tree_sum(value), "v": tree_sum(dv), "b": tree_sum(jnp.sum(g, axis=2))}
        # One collective: every device's partial sums, added in a fixed order (not a psum, whose order
        # would depend on the layout), so S devices reproduce one device bit for bit.
        total = jax.tree.map(tree_sum, lax.all_gather(partial, DATA_AXIS))
        return total["value"], {"w": total["v"] * r, "b": total["b"]}

    counter = jax.shard_map(local_counts, mesh=mesh, in_specs=(data, data, data), out_specs=P(), check_vma=False)
    sharded = jax.shard_map(local_value_and_grad, mesh=mesh, in_specs=(P(), data, data, data, data, data, P(), P()),
                            out_specs=P(), check_vma=False)

    def train(ids, chunk_doc, doc_labels, alpha, c, tol):
        counts = counter(ids, chunk_doc, doc_labels)
        r = log_count_ratio(counts["feature_count"], alpha=alpha)[classes]             # [P, V]
        mask = (doc_labels >= 0).astype(r.dtype)
        y = jnp.where(doc_labels[:, None, :] == classes[None, :, None], 1.0, -1.0).astype(r.dtype)
        bins = gradient_bins(ids, vocab_size, ids.shape[0] // devices)

        def value_and_grad(params):
            value, grad = sharded(params, ids, bins, chunk_doc, y, mask, r, c)
            w = params["w"]
            return value + 0.5 * jnp.vdot(w, w), {"w": grad["w"] + w, "b": grad["b"]}

        objective = _with_gradient(value_and_grad)
        opt = optax.lbfgs(memory_size=memory_size)
        from_state = optax.value_and_grad_from_state(objective)

        def body(carry):
            params, state, k, g0 = carry
            value, grad = from_state(params, state=state)
            g0 = jnp.where(k == 0, _norm(grad), g0)
            updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=objective)
            return optax.apply_updates(params, updates), state, k + 1, g0

        def cond(carry):
            _, state, k, g0 = carry
            return (k < max_iter) & ((k == 0) | (_norm(optax.tree.get(state, "grad")) > tol * g0))

        params = {"w": jnp.zeros_like(r), "b": jnp.zeros(r.shape[:1], r.dtype)}
        init = (params, opt.init(params), jnp.zeros((), jnp.int32), jnp.zeros((), r.dtype))
        params, state, k, g0 = lax.while_loop(cond, body, init)
        return params, r, counts, k, _norm(optax.tree.get(state, "grad")) / g0

    return jax.jit(train)


def fit_nbsvm(enc: text.EncodedCorpus, labels, *, num_classes: int, alpha: float = 1.0, C: float = 1.0,
              loss: str = "logistic", tol: float = 1e-2, max_iter: int = 100, memory_size: int = 5,
              chunk: int = 64, num_groups: int | None = None, mesh: jax.sharding.Mesh | None = None) -> dict:
    """Fit the ``P`` problems on a presence-encoded corpus ``enc`` (``EncodedCorpus.binarize()``; a corpus of
    term counts fits the same model over count features) with ``labels: int[D]``.

    Returns ``{"w": f[P, V], "b": f[P], "r": f[P, V], "counts", "num_iter", "grad_ratio"}``
    (``grad_ratio = |grad f| / |grad f(0)|`` at the end); ``classifier_params(w, b, r, beta)`` makes the
    classifier. One jitted program counts (``counts.count_tokens`` on every device's documents, one exact
    integer ``psum``), takes the ratio and trains. The documents are cut into ``num_groups`` groups (default:
    4, or the device count rounded up to a power of two if larger; a power of two, a multiple of the device
    count), each reduced on its own: every device count dividing ``num_groups`` gives the same result bit
    for bit (1, 2 and 4 by default).
    """
    labels = np.asarray(labels, np.int32)
    if labels.shape != (enc.num_docs,):
        raise ValueError(f"labels must be int[{enc.num_docs}] (one per document), got shape {labels.shape}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got [{labels.min()}, {labels.max()}]")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {LOSSES}")
    for name, value in (("alpha", alpha), ("C", C), ("tol", tol)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")
    if max_iter < 1 or memory_size < 1:
        raise ValueError(f"max_iter and memory_size must be >= 1, got {max_iter} and {memory_size}")
    if len(enc.token_ids) and (enc.token_ids.min() < 0 or enc.token_ids.max() >= enc.vocab_size):
        raise ValueError(f"enc.token_ids must lie in [0, {enc.vocab_size}) (the vocabulary size)")
    mesh = data_mesh() if mesh is None else mesh
    devices = mesh.shape[DATA_AXIS]
    num_groups = num_groups or max(4, 1 << (devices - 1).bit_length())
    if num_groups & (num_groups - 1) or num_groups % devices:
        raise ValueError(f"num_groups must be a power of two and a multiple of the {devices} devices, "
                         f"got {num_groups}")
    chunks = chunk_documents(enc.token_ids, enc.offsets, vocab_size=enc.vocab_size, num_groups=num_groups,
                             chunk=chunk)
    dtype = float_dtype()
    train = _trainer(mesh, loss, int(num_classes), chunks.docs_per_group, enc.vocab_size, int(max_iter),
                     int(memory_size))
    params, r, counts, k, ratio = train(chunks.ids, chunks.chunk_doc, chunks.group_values(labels, fill=-1),
                                        jnp.asarray(alpha, dtype), jnp.asarray(C, dtype), jnp.asarray(tol, dtype))
    return {"w": params["w"], "b": params["b"], "r": r, "counts": counts,
            "num_iter": int(k), "grad_ratio": float(ratio)}


def fit_text_nbsvm(texts, labels, *, num_classes: int, class_names=None, alpha: float = 1.0, beta: float = 1.0,
                   C: float = 1.0, loss: str = "logistic", tol: float = 1e-2, max_iter: int = 100,
                   stop_words: bool = False, strip_html: bool = True, ngram_range=(1, 2), min_count: int = 1,
                   max_size: int | None = None, mesh: jax.sharding.Mesh | None = None,
                   progress: bool | None = None) -> TextNBModel:
    """Tokenize -> n-gram vocabulary -> presence -> :func:`fit_nbsvm` -> a ``TextNBModel`` of kind ``nbsvm``
    (same ``encode`` / ``scores`` / ``predict`` / ``save`` as the naive Bayes models). The first call switches on
    the persistent compilation cache (``jaxml.compile_cache``)."""
    compile_cache.enable()
    texts = validate.texts(texts, "fit_text_nbsvm")
    labels = validate.text_labels(labels, len(texts), num_classes, "fit_text_nbsvm", class_names)
    if not 0 <= beta <= 1:
        raise ValueError(f"beta must lie in [0, 1] (0: naive Bayes, 1: the trained weights), got {beta}")
    class_names = tuple(class_names or (str(c) for c in range(num_classes)))
    tok = text.tokenize(texts, stop_words=stop_words, strip_html=strip_html, progress=progress)
    vocab = text.build_vocabulary(tok, ngram_range=tuple(ngram_range), min_count=min_count, max_size=max_size)
    if len(vocab) == 0:
        raise ValueError("the training texts leave an empty vocabulary (all documents empty after "
                         f"tokenization, or min_count={min_count} too high)")
    enc = vocab.encode(tok).binarize()
    fit = fit_nbsvm(enc, labels, num_classes=num_classes, alpha=alpha, C=C, loss=loss, tol=tol,
                    max_iter=max_iter, mesh=mesh)
    check_class_counts(fit["counts"]["class_count"], class_names)
    params = classifier_params(fit["w"], fit["b"], fit["r"], beta)
    return TextNBModel(vocab, params, "nbsvm", True, bool(stop_words), strip_html, class_names, fit["counts"])
