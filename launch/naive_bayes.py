"""Naive Bayes on IMDB: ``python launch/naive_bayes.py --config=configs/imdb_nb.py[:arg] --workdir=DIR``.

Fits, evaluates and prints ``accuracy: 0.xxxx`` and a classification report; writes
``metrics.jsonl`` (``{"step": 0, "split": "test"|"eval", "accuracy": ...}``), ``confusion.png``
and the fitted model ``model.npz`` (+ ``model_config.json``) to --workdir.
``--text="..."`` classifies that text with the model cached in --workdir (fitting it first when the
cache is missing or was fitted with another config).
"""
from __future__ import annotations

import json
import os
import sys
import time

from absl import flags
from absl import logging as absl_logging
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_flags  # noqa: E402  (--num_cpu_devices, --coordinator_address, ... shared by the launchers)

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/imdb_nb.py[:arg]", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for metrics.jsonl, confusion.png, model.npz.")
_TEXT = flags.DEFINE_string("text", None, "Classify this text with the (cached) model and exit.")
flags.mark_flags_as_required(["config", "workdir"])


def validate_config(c) -> None:
    """Fail at once, naming the field, on a config that cannot run."""
    from jaxml import naive_bayes as nb
    from jaxml.data import imdb

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
    need(c.model.kind in nb.KINDS, "model.kind", f"must be one of {nb.KINDS}")
    need(c.model.alpha > 0, "model.alpha", "must be > 0")


def _subsample(split, k: int, seed: int):
    import numpy as np
    from jaxml.data.images import seeded_permutation
    if not k or k >= len(split):
        return split
    return split.take(np.sort(seeded_permutation(seed, len(split), stream=3)[:k]))


def load_splits(c):
    """(train, eval, eval split name) as the config's protocol says."""
    from jaxml.data import imdb
    train = imdb.load_imdb("train", c.data.source, c.data.data_dir)
    if c.data.protocol == "holdout":
        train, evaluation = imdb.holdout_split(train, c.data.holdout_fraction, c.data.seed)
        name = "eval"
    else:
        evaluation, name = imdb.load_imdb("test", c.data.source, c.data.data_dir), "test"
    return (_subsample(train, c.data.max_train_docs, c.data.seed),
            _subsample(evaluation, c.data.max_eval_docs, c.data.seed + 1), name)


def fit(c, train):
    from jaxml.data import imdb
    from jaxml.text_classifier import fit_text_classifier
    return fit_text_classifier(
        train.texts, train.labels, num_classes=len(imdb.CLASS_NAMES), class_names=imdb.CLASS_NAMES,
        kind=c.model.kind, alpha=c.model.alpha, fit_prior=c.model.fit_prior, norm=c.model.norm,
        binary=c.text.binary, stop_words=c.text.stop_words, strip_html=c.text.strip_html,
        ngram_range=tuple(c.text.ngram_range), min_count=c.text.min_count,
        max_size=c.text.max_size or None, progress=c.progress)


def classification_report(y_true, y_pred, names) -> str:
    """Precision, recall, F1 and support per class, then accuracy and macro / weighted averages."""
    import numpy as np
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


def save_confusion_png(y_true, y_pred, names, path, title) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    k = len(names)
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    fig, ax = plt.subplots(figsize=(4, 3.6))
    ax.imshow(cm, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks(range(k), names)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def classify_text(model, sentence: str) -> None:
    import numpy as np
    from jaxml import text as text_lib
    tokens = text_lib.tokenize_reference(sentence, stop_words=model.stop_words,
                                         strip_html=model.strip_html)
    enc = model.encode([sentence], progress=False)
    scores = model.scores_encoded(enc)[0]
    proba = np.exp(scores - np.logaddexp.reduce(scores))
    k = int(np.argmax(scores))
    if not tokens:
        print("note: the text has no words left after tokenization; the prediction is the class prior")
    elif len(enc.token_ids) == 0:
        print(f"note: all {len(tokens)} words are unknown to the vocabulary; "
              "the prediction is the class prior")
    shown = ", ".join(f"{n}={p:.4f}" for n, p in zip(model.class_names, proba))
    print(f"prediction: {model.class_names[k]} ({shown})")


def main(argv):
    del argv
    import jax
    import numpy as np
    from jaxml.text_classifier import TextNBModel

    if not flags.FLAGS["verbosity"].present:
        absl_logging.set_verbosity(absl_logging.WARNING)
    cluster_flags.setup()
    c = _CONFIG.value
    validate_config(c)
    workdir = _WORKDIR.value
    writer = jax.process_index() == 0
    os.makedirs(workdir, exist_ok=True)
    model_path = os.path.join(workdir, "model.npz")
    config_path = os.path.join(workdir, "model_config.json")
    if _TEXT.value is not None and os.path.exists(model_path) and os.path.exists(config_path):
        with open(config_path, encoding="utf-8") as f:
            if f.read() == c.to_json(sort_keys=True):
                classify_text(TextNBModel.load(model_path), _TEXT.value)
                return
        print("note: the cached model was fitted with another config; fitting again", file=sys.stderr)

    t0 = time.perf_counter()
    train, evaluation, split = load_splits(c)
    t1 = time.perf_counter()
    model = fit(c, train)
    t2 = time.perf_counter()
    enc = model.encode(evaluation.texts, progress=c.progress)
    y_pred = model.scores_encoded(enc).argmax(axis=1)
    t3 = time.perf_counter()
    y_true = evaluation.labels
    accuracy = float(np.mean(y_pred == y_true))
    empty = len(enc.empty_docs())
    print(f"{len(train)} train / {len(evaluation)} {split} reviews, {len(model.vocab)} terms, "
          f"kind={model.kind}, binary={model.binary}, ngram_range={tuple(c.text.ngram_range)}, "
          f"alpha={c.model.alpha}; load {t1 - t0:.1f}s, fit {t2 - t1:.1f}s, predict {t3 - t2:.1f}s")
    if empty:
        print(f"note: {empty} {split} reviews have no known term and were predicted from the prior")
    print(classification_report(y_true, y_pred, model.class_names))
    print(f"accuracy: {accuracy:.4f}")
    if writer:
        model.save(model_path)
        with open(config_path, "w", encoding="utf-8") as f:
            f.write(c.to_json(sort_keys=True))
        with open(os.path.join(workdir, "metrics.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": 0, "split": split, "accuracy": accuracy,
                                "num_train": len(train), "num_eval": len(evaluation),
                                "vocab_size": len(model.vocab), "fit_s": t2 - t1,
                                "predict_s": t3 - t2}) + "\n")
        save_confusion_png(y_true, y_pred, model.class_names, os.path.join(workdir, "confusion.png"),
                           f"IMDB {split}: accuracy {accuracy:.4f}")
    if _TEXT.value is not None:
        classify_text(model, _TEXT.value)


if __name__ == "__main__":
    import entry
    entry.run(main)
