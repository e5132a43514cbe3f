"""IMDB sentiment end to end — tokenize + vectorize + fit + predict, 25k train / 25k test reviews:
jaxml (vectorised tokenizer, integer segment-sum counts, multinomial NB) vs scikit-learn
``CountVectorizer`` + ``MultinomialNB``, in one run.

    flock /tmp/jaxml-bench.lock python bench/naive_bayes.py [--quick] [--repeats=3]

Peers:
- ``sklearn``: ``CountVectorizer()`` defaults (its own tokenizer: ``\\b\\w\\w+\\b``, lowercase, no
  stop words) + ``MultinomialNB()``;
- ``sklearn_same_tokens``: ``CountVectorizer`` told to use jaxml's rules (tags stripped, ASCII
  letters, lowercase, the same stop words), so both sides count the same tokens.
jaxml runs the book's pipeline (stop words dropped, unigrams, alpha = 1). Reviews are loaded once
(not timed; sklearn gets Python strings, jaxml the Arrow array the loader returns). Reports the
median seconds of ``--repeats`` interleaved runs, the accuracies, and a jaxml stage breakdown.
Needs ``$JAXML_DATA_DIR/imdb``.
"""
from __future__ import annotations

import re
import time

import numpy as np
from absl import app, flags

import timing
from jaxml import naive_bayes as nb
from jaxml.data import imdb
from jaxml.naive_bayes import fit_text_classifier, text

flags.DEFINE_bool("quick", False, "2,000 train / 2,000 test reviews, one repeat (smoke run).")
flags.DEFINE_integer("repeats", 3, "Timed repeats per implementation (median reported).")
FLAGS = flags.FLAGS
_TAG = re.compile(r"<[^>]*>")


def _strip_and_lower(s: str) -> str:
    return _TAG.sub(" ", s).lower()


def run_jaxml(train, test, accuracies):
    def run():
        model = fit_text_classifier(train.texts, train.labels, num_classes=2, progress=False)
        pred = model.predict(test.texts, progress=False)
        accuracies["jaxml"] = float(np.mean(pred == test.labels))
    return run


def run_sklearn(train_texts, train_labels, test_texts, test_labels, accuracies, name, **cv_kwargs):
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.naive_bayes import MultinomialNB

    def run():
        cv = CountVectorizer(**cv_kwargs)
        x_train = cv.fit_transform(train_texts)
        x_test = cv.transform(test_texts)
        pred = MultinomialNB().fit(x_train, train_labels).predict(x_test)
        accuracies[name] = float(np.mean(pred == test_labels))
    return run


def jaxml_stages(train, test) -> dict[str, float]:
    """Seconds per stage of one jaxml run (after the timed runs: everything is compiled)."""
    out, t = {}, time.perf_counter()
    tok = text.tokenize(train.texts, progress=False)
    tok_test = text.tokenize(test.texts, progress=False)
    out["tokenize (train+test)"], t = time.perf_counter() - t, time.perf_counter()
    vocab = text.build_vocabulary(tok)
    enc, enc_test = vocab.encode(tok), vocab.encode(tok_test)
    out["vocabulary + encode"], t = time.perf_counter() - t, time.perf_counter()
    counts = nb.count_tokens_sharded(enc.token_ids, train.labels[enc.doc_ids()], train.labels,
                                     num_classes=2, vocab_size=len(vocab))
    params = nb.fit_params(counts, "multinomial")
    params = {"weight": params["weight"].block_until_ready(), "bias": params["bias"]}
    out["count + fit"], t = time.perf_counter() - t, time.perf_counter()
    scores = nb.token_joint_log_likelihood(params, enc_test.token_ids, enc_test.doc_ids(),
                                           num_docs=enc_test.num_docs)
    np.asarray(scores).argmax(1)
    out["predict"] = time.perf_counter() - t
    return out


def main(argv):
    del argv
    train, test = imdb.load_imdb_csv("train"), imdb.load_imdb_csv("test")
    if FLAGS.quick:
        train, test = train.take(np.arange(0, 25000, 12)[:2000]), test.take(np.arange(0, 25000, 12)[:2000])
    repeats = 1 if FLAGS.quick else FLAGS.repeats
    train_texts, test_texts = train.texts.to_pylist(), test.texts.to_pylist()
    acc: dict[str, float] = {}
    runs = {
        "jaxml": run_jaxml(train, test, acc),
        "sklearn": run_sklearn(train_texts, train.labels, test_texts, test.labels, acc, "sklearn"),
        "sklearn_same_tokens": run_sklearn(
            train_texts, train.labels, test_texts, test.labels, acc, "sklearn_same_tokens",
            preprocessor=_strip_and_lower, token_pattern=r"[a-z]+",
            stop_words=sorted(text.load_stop_words())),
    }
    medians = timing.interleaved_medians(runs, repeats=repeats, warmup=1)
    stages = jaxml_stages(train, test)
    print(f"IMDB naive Bayes end to end: {len(train)} train / {len(test)} test reviews, "
          f"median of {repeats} (tokenize + vectorize + fit + predict)")
    table = [(k, v, f"accuracy {acc[k]:.4f}") for k, v in medians.items()]
    table += [(f"  jaxml: {k}", v, "one run, after warm-up") for k, v in stages.items()]
    ratios = {f"jaxml/{k}": medians[k] / medians["jaxml"] for k in medians if k != "jaxml"}
    for k in medians:
        if k != "jaxml":
            print(f"accuracy jaxml - {k}: {acc['jaxml'] - acc[k]:+.4f}")
    timing.emit("naive_bayes_imdb", "s", False, medians, ratios, table)


if __name__ == "__main__":
    app.run(main)
