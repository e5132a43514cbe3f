"""One IMDB naive Bayes experiment from a ``configs/imdb_nb.py`` config: load, fit, evaluate, report.

``run(config, workdir)`` prints the corpus sizes, a classification report and ``accuracy: 0.xxxx``, and
writes to ``workdir``: ``metrics.jsonl`` (one record ``{"step": 0, "split": "test"|"eval", "accuracy",
"num_train", "num_eval", "vocab_size", "fit_s", "predict_s"}``), ``confusion_matrix.png`` (+ ``.csv``) and
the fitted model ``model.npz`` with the config it was fitted with, ``model_config.json``, and the SHA-256 of
its training CSV (``model_config.json.data_sha256``). ``run(config, workdir, text="...")`` classifies one text
with that cached model, fitting it first when the cache is missing, damaged, or was fitted with another config
or other training data.
"""
from __future__ import annotations

import hashlib
import os
import sys
import time

import jax
import numpy as np

from jaxml import metrics
from jaxml.data import imdb
from jaxml.data.images import seeded_permutation
from jaxml.naive_bayes import KINDS, TextNBModel, fit_text_classifier, fit_text_nbsvm, nbsvm
from jaxml.naive_bayes.text import tokenize_reference
from jaxml.train.metrics_log import MetricsLog
from jaxml.train.reports import save_confusion_matrix


def validate_config(c) -> None:
    """Fail at once, naming the field, on a config that cannot run."""
    def need(ok, field, msg):
        if not ok:
            section, name = field.split(".")
            raise ValueError(f"config.{field} {msg}, got {c[section][name]!r}")
    need(c.data.source in imdb.SOURCES, "data.source", f"must be one of {imdb.SOURCES}")
    need(c.data.protocol in ("official", "holdout"), "data.protocol", "must be official | holdout")
    need(0 < c.data.holdout_fraction < 1, "data.holdout_fraction", "must lie in (0, 1)")
    need(c.data.seed >= 0, "data.seed", "must be >= 0")
    need(c.data.max_train_docs >= 0, "data.max_train_docs", "must be >= 0 (0 = all)")
    need(c.data.max_eval_docs >= 0, "data.max_eval_docs", "must be >= 0 (0 = all)")
    ng = tuple(c.text.ngram_range)
    need(len(ng) == 2 and 1 <= ng[0] <= ng[1], "text.ngram_range", "must be (lo, hi), 1 <= lo <= hi")
    need(c.text.min_count >= 1, "text.min_count", "must be >= 1")
    need(c.text.max_size >= 0, "text.max_size", "must be >= 0 (0 = unlimited)")
    need(c.model.kind in KINDS + ("nbsvm",), "model.kind", f"must be one of {KINDS + ('nbsvm',)}")
    need(c.model.alpha > 0, "model.alpha", "must be > 0")
    if c.model.kind == "nbsvm":
        need(c.model.loss in nbsvm.LOSSES, "model.loss", f"must be one of {nbsvm.LOSSES}")
        need(c.model.C > 0, "model.C", "must be > 0")
        need(0 <= c.model.beta <= 1, "model.beta", "must lie in [0, 1]")
        need(c.model.tol > 0, "model.tol", "must be > 0")
        need(c.model.max_iter >= 1, "model.max_iter", "must be >= 1")


def _subsample(split: imdb.ImdbSplit, k: int, seed: int) -> imdb.ImdbSplit:
    """A seeded subset of ``k`` reviews in their original order (``k = 0``: all of them)."""
    if not k or k >= len(split):
        return split
    return split.take(np.sort(seeded_permutation(seed, len(split), stream=3)[:k]))


def load_splits(c) -> tuple[imdb.ImdbSplit, imdb.ImdbSplit, str]:
    """(train, eval, eval split name) as the config's protocol says: ``official`` scores the 25k test
    reviews (``"test"``), ``holdout`` a stratified, seeded fraction of the training reviews (``"eval"``)."""
    train = imdb.load_imdb("train", c.data.source, c.data.data_dir)
    if c.data.protocol == "holdout":
        train, evaluation = imdb.holdout_split(train, c.data.holdout_fraction, c.data.seed)
        name = "eval"
    else:
        evaluation, name = imdb.load_imdb("test", c.data.source, c.data.data_dir), "test"
    return (_subsample(train, c.data.max_train_docs, c.data.seed),
            _subsample(evaluation, c.data.max_eval_docs, c.data.seed + 1), name)


def fit(c, train: imdb.ImdbSplit) -> TextNBModel:
    """The text classifier of the config's ``text`` and ``model`` sections, fitted on ``train``."""
    if c.model.kind == "nbsvm":
        return fit_text_nbsvm(
            train.texts, train.labels, num_classes=len(imdb.CLASS_NAMES), class_names=imdb.CLASS_NAMES,
            alpha=c.model.alpha, beta=c.model.beta, C=c.model.C, loss=c.model.loss, tol=c.model.tol,
            max_iter=c.model.max_iter, stop_words=c.text.stop_words, strip_html=c.text.strip_html,
            ngram_range=tuple(c.text.ngram_range), min_count=c.text.min_count, max_size=c.text.max_size or None,
            progress=c.progress)
    return fit_text_classifier(
        train.texts, train.labels, num_classes=len(imdb.CLASS_NAMES), class_names=imdb.CLASS_NAMES,
        kind=c.model.kind, alpha=c.model.alpha, fit_prior=c.model.fit_prior, norm=c.model.norm,
        binary=c.text.binary, stop_words=c.text.stop_words, strip_html=c.text.strip_html,
        ngram_range=tuple(c.text.ngram_range), min_count=c.text.min_count,
        max_size=c.text.max_size or None, progress=c.progress)


def classification_report(y_true, y_pred, names) -> str:
    """Precision, recall, F1 and support per class, then accuracy and macro / weighted averages."""
    rows, lines = [], [f"{'':>14}{'precision':>10}{'recall':>10}{'f1-score':>10}{'support':>10}"]
    for k, name in enumerate(names):
        tp = np.sum((y_pred == k) & (y_true == k))
        p = tp / max(np.sum(y_pred == k), 1)
        r = tp / max(np.sum(y_true == k), 1)
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        rows.append((p, r, f1, int(np.sum(y_true == k))))
        lines.append(f"{name:>14}{p:10.4f}{r:10.4f}{f1:10.4f}{rows[-1][3]:10d}")
    arr, n = np.array(rows), len(y_true)
    lines.append(f"{'accuracy':>14}{'':>20}{np.mean(y_true == y_pred):10.4f}{n:10d}")
    lines.append(f"{'macro avg':>14}" + "".join(f"{v:10.4f}" for v in arr[:, :3].mean(0)) + f"{n:10d}")
    w = arr[:, 3] / max(n, 1)
    lines.append(f"{'weighted avg':>14}" + "".join(f"{v:10.4f}" for v in w @ arr[:, :3]) + f"{n:10d}")
    return "\n".join(lines)


def classify_text(model: TextNBModel, text: str) -> str:
    """``prediction: <class> (neg=0.xxxx, pos=0.xxxx)``, after a note when the prediction is the class
    prior (no word left after tokenization, or none in the vocabulary)."""
    tokens = tokenize_reference(text, stop_words=model.stop_words, strip_html=model.strip_html)
    enc = model.encode([text], progress=False)
    scores = model.scores_encoded(enc)[0]
    proba = np.exp(scores - np.logaddexp.reduce(scores))
    k = int(np.argmax(scores))
    lines = []
    if not tokens:
        lines.append("note: the text has no words left after tokenization; the prediction is the class prior")
    elif len(enc.token_ids) == 0:
        lines.append(f"note: all {len(tokens)} words are unknown to the vocabulary; "
                     "the prediction is the class prior")
    shown = ", ".join(f"{n}={p:.4f}" for n, p in zip(model.class_names, proba))
    lines.append(f"prediction: {model.class_names[k]} ({shown})")
    return "\n".join(lines)


def data_sha256(c) -> str | None:
    """SHA-256 of the training CSV the config fits on (None when it is not there, or the source is tfds)."""
    if c.data.source != "csv":
        return None
    try:
        path = imdb.csv_path("train", c.data.data_dir)
    except FileNotFoundError:
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _cached_model(c, model_path: str, config_path: str) -> TextNBModel | None:
    """The model in the workdir if it was fitted with exactly this config on the same training data (when that
    data is at hand to compare), else None; a damaged or edited model.npz is named and fitted again."""
    if not (os.path.exists(model_path) and os.path.exists(config_path)):
        return None
    with open(config_path, encoding="utf-8") as f:
        if f.read() != c.to_json(sort_keys=True):
            print("note: the cached model was fitted with another config; fitting again", file=sys.stderr)
            return None
    digest, stored = data_sha256(c), _read(config_path + ".data_sha256")
    if digest is not None and digest != stored:
        print("note: the training data changed since the cached model was fitted; fitting again", file=sys.stderr)
        return None
    try:
        return TextNBModel.load(model_path)
    except ValueError as e:
        print(f"note: {e}; fitting again", file=sys.stderr)
        return None


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return None


def run(c, workdir: str, *, text: str | None = None) -> dict:
    """Fit and evaluate as ``c`` says, print the report, write the workdir files (process 0 only).

    Returns the ``metrics.jsonl`` record; with ``text`` the result also holds ``"classification"``, the
    lines printed for it (and only that when the cached model answered without fitting).
    """
    validate_config(c)
    model_path = os.path.join(workdir, "model.npz")
    config_path = os.path.join(workdir, "model_config.json")
    if text is not None:
        cached = _cached_model(c, model_path, config_path)
        if cached is not None:
            answer = classify_text(cached, text)
            print(answer)
            return {"classification": answer}

    t0 = time.perf_counter()
    train, evaluation, split = load_splits(c)
    os.makedirs(workdir, exist_ok=True)   # after the data loaded: a missing dataset leaves no empty workdir
    t1 = time.perf_counter()
    model = fit(c, train)
    t2 = time.perf_counter()
    enc = model.encode(evaluation.texts, progress=c.progress)
    y_pred = model.scores_encoded(enc).argmax(axis=1)
    t3 = time.perf_counter()
    y_true = evaluation.labels
    accuracy = float(np.mean(y_pred == y_true))
    empty = len(enc.empty_docs())
    hyper = (f", loss={c.model.loss}, C={c.model.C:g}, beta={c.model.beta:g}, tol={c.model.tol:g}"
             if model.kind == "nbsvm" else "")
    print(f"{len(train)} train / {len(evaluation)} {split} reviews, {len(model.vocab)} terms, "
          f"kind={model.kind}, binary={model.binary}, ngram_range={tuple(c.text.ngram_range)}, "
          f"alpha={c.model.alpha}{hyper}; {jax.device_count()} device{'s' * (jax.device_count() > 1)}; "
          f"load {t1 - t0:.1f}s, fit {t2 - t1:.1f}s, "
          f"predict {t3 - t2:.1f}s")
    if empty:
        print(f"note: {empty} {split} reviews have no known term and were predicted from the prior")
    print(classification_report(y_true, y_pred, model.class_names))
    print(f"accuracy: {accuracy:.4f}")
    record = MetricsLog(workdir, tensorboard=False).write(0, split, {
        "accuracy": accuracy, "num_train": len(train), "num_eval": len(evaluation),
        "vocab_size": len(model.vocab), "fit_s": t2 - t1, "predict_s": t3 - t2})
    if jax.process_index() == 0:
        model.save(model_path)
        with open(config_path, "w", encoding="utf-8") as f:
            f.write(c.to_json(sort_keys=True))
        with open(config_path + ".data_sha256", "w", encoding="utf-8") as f:
            f.write(data_sha256(c) or "")
        cm = metrics.confusion_matrix(y_true, y_pred, len(model.class_names))
        save_confusion_matrix(cm, model.class_names, os.path.join(workdir, "confusion_matrix.png"),
                              f"IMDB {split}: accuracy {accuracy:.4f}")
    if text is not None:
        record["classification"] = classify_text(model, text)
        print(record["classification"])
    return record
