"""Naive Bayes vs NBSVM / NB-LR vs scikit-learn's LogisticRegression on IMDB: accuracy, train and predict time.

    python -m jaxml.tasks.imdb_nb.compare [--config=configs/imdb_nb.py] [--quick]

For the two feature sets of ``configs/imdb_nb.py`` (``:nbsvm_bigram`` and ``:nbsvm``: presence of the n-grams
seen at least ``min_count`` times, stop words kept), every model is fitted on the 25k train reviews and scored
on the official 25k test reviews:
- multinomial and Bernoulli naive Bayes, alpha picked from {0.1, 0.25, 0.5, 1} on the 20 % holdout of the
  train reviews (vocabulary built on the 80 %);
- jaxml's NBSVM / NB-LR with the config's hyperparameters (chosen on the same holdout by ``select_nbsvm``),
  and the same at beta = 1 (no interpolation), predicting with ``nbsvm.predict``;
- scikit-learn ``LogisticRegression(C, solver="liblinear", dual=True)`` on the same ratio-scaled presence
  features (the same r, C; its coefficients interpolated with the same beta, and at beta = 1).
Train time: from the encoded corpus to a fitted model (counts / ratio / features / optimizer); predict time:
scoring the encoded test corpus. Tokenizing and encoding (shared by all rows) is printed apart. Times are
medians of ``--repeats`` runs after a warm-up (compilation excluded), one CPU device. Needs ``$JAXML_DATA_DIR``.
"""
from __future__ import annotations

import statistics
import sys
import time

import jax
import numpy as np
from absl import app, flags

from jaxml import naive_bayes as nb
from jaxml.cli.common import load_config
from jaxml.data import imdb
from jaxml.naive_bayes import text
from jaxml.parallel import data_mesh

flags.DEFINE_string("config", "configs/imdb_nb.py", "The config file holding the chosen NBSVM hyperparameters.")
flags.DEFINE_bool("quick", False, "5,000 / 5,000 reviews, one repeat (smoke run).")
flags.DEFINE_integer("repeats", 3, "Timed repeats per model (median reported).")
FLAGS = flags.FLAGS
NB_ALPHAS = (0.1, 0.25, 0.5, 1.0)


def timed(fit, predict, repeats):
    """(accuracy, median train s, median predict s) of ``predict(fit())`` after one warm-up."""
    predict(fit())
    train_s, predict_s = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        model = fit()
        t1 = time.perf_counter()
        accuracy = predict(model)
        predict_s.append(time.perf_counter() - t1)
        train_s.append(t1 - t)
    return accuracy, statistics.median(train_s), statistics.median(predict_s)


def accuracy_of(scores, labels) -> float:
    return float(np.mean(np.asarray(scores).argmax(axis=1) == labels))


def nb_models(enc, labels, mesh):
    """kind -> fit(alpha) -> the classifier params, from one sharded count."""
    def fit(kind, alpha):
        counts = nb.count_tokens_sharded(enc.token_ids, labels[enc.doc_ids()], labels, num_classes=2,
                                         vocab_size=enc.vocab_size, mesh=mesh)
        p = nb.fit_params(counts, kind, alpha=alpha)
        return {"weight": p["weight"], "bias": p["bias"]}
    return fit


def nb_scorer(enc_test, labels):
    def predict(params):
        return accuracy_of(nb.token_joint_log_likelihood(params, enc_test.token_ids, enc_test.doc_ids(),
                                                          num_docs=enc_test.num_docs), labels)
    return predict


def sklearn_lr(enc, labels, alpha, c):
    """A fit of LogisticRegression (liblinear) on the ratio-scaled presence features: (r, coef, intercept)."""
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression

    pos = (labels == 1)[enc.doc_ids()]
    p = alpha + np.bincount(enc.token_ids[pos], minlength=enc.vocab_size)
    q = alpha + np.bincount(enc.token_ids[~pos], minlength=enc.vocab_size)
    r = np.log(p / p.sum()) - np.log(q / q.sum())
    x = sp.csr_matrix((r[enc.token_ids], enc.token_ids, enc.offsets), shape=(enc.num_docs, enc.vocab_size))
    lr = LogisticRegression(C=c, solver="liblinear", dual=True).fit(x, labels)
    return r, lr.coef_[0], lr.intercept_[0]


def sklearn_scorer(enc_test, labels, beta):
    import scipy.sparse as sp

    def predict(model):
        r, coef, intercept = model
        coef = (1 - beta) * np.abs(coef).mean() + beta * coef
        x = sp.csr_matrix((r[enc_test.token_ids], enc_test.token_ids, enc_test.offsets),
                          shape=(enc_test.num_docs, enc_test.vocab_size))
        return float(np.mean(((x @ coef + intercept) > 0) == labels))
    return predict


def feature_rows(name, c, train, test, fit_part, holdout, toks, mesh, repeats):
    ng, mc, m = tuple(c.text.ngram_range), c.text.min_count, c.model
    t = time.perf_counter()
    vocab = text.build_vocabulary(toks["train"], ngram_range=ng, min_count=mc)
    enc, enc_test = vocab.encode(toks["train"]).binarize(), vocab.encode(toks["test"]).binarize()
    encode_s = time.perf_counter() - t
    hold_vocab = text.build_vocabulary(toks["fit"], ngram_range=ng, min_count=mc)
    enc_fit, enc_hold = hold_vocab.encode(toks["fit"]).binarize(), hold_vocab.encode(toks["holdout"]).binarize()
    features = f"{ng[0]}–{ng[1]}-grams, min count {mc} ({len(vocab):,} terms)"
    rows = []
    for kind in ("multinomial", "bernoulli"):
        hold_fit, hold_score = nb_models(enc_fit, fit_part.labels, mesh), nb_scorer(enc_hold, holdout.labels)
        alpha = max(NB_ALPHAS, key=lambda a: (hold_score(hold_fit(kind, a)), -a))
        nb_fit = nb_models(enc, train.labels, mesh)
        acc, tr, pr = timed(lambda: nb_fit(kind, alpha), nb_scorer(enc_test, test.labels), repeats)
        rows.append((features, f"{kind} NB (jaxml)", f"alpha {alpha:g}", acc, tr, pr))
    betas = [m.beta] + ([1.0] if m.beta != 1.0 else [])
    for beta in betas:
        def fit_nbsvm():
            return nb.fit_nbsvm(enc, train.labels, num_classes=2, alpha=m.alpha, C=m.C, loss=m.loss, tol=m.tol,
                                max_iter=m.max_iter, mesh=mesh)

        def predict_nbsvm(f, beta=beta):
            return float(np.mean(nb.nbsvm.predict(f["w"], f["b"], f["r"], beta, enc_test) == test.labels))
        acc, tr, pr = timed(fit_nbsvm, predict_nbsvm, repeats)
        label = "NB-LR (jaxml, logistic)" if m.loss == "logistic" else "NBSVM (jaxml, squared hinge)"
        rows.append((features, label, f"alpha {m.alpha:g}, C {m.C:g}, beta {beta:g}, tol {m.tol:g}", acc, tr, pr))
    for beta in betas:
        acc, tr, pr = timed(lambda: sklearn_lr(enc, train.labels, m.alpha, m.C),
                            sklearn_scorer(enc_test, test.labels, beta), repeats)
        rows.append((features, "scikit-learn LogisticRegression (liblinear)", f"alpha {m.alpha:g}, C {m.C:g}, "
                     f"beta {beta:g}, tol 1e-4", acc, tr, pr))
    print(f"  {name}: encoded in {encode_s:.1f}s", file=sys.stderr, flush=True)
    return rows, encode_s


def main(argv):
    del argv
    configs = {arg: load_config(f"{FLAGS.config}:{arg}") for arg in ("nbsvm_bigram", "nbsvm")}
    train, test = imdb.load_imdb_csv("train"), imdb.load_imdb_csv("test")
    repeats = FLAGS.repeats
    if FLAGS.quick:
        train, test, repeats = train.take(np.arange(0, 25000, 5)), test.take(np.arange(0, 25000, 5)), 1
    fit_part, holdout = imdb.holdout_split(train, 0.2, seed=0)
    t = time.perf_counter()
    toks = {k: text.tokenize(s.texts, stop_words=False, progress=False)
            for k, s in (("train", train), ("test", test), ("fit", fit_part), ("holdout", holdout))}
    tokenize_s = time.perf_counter() - t
    mesh = data_mesh(jax.devices()[:1])
    rows, encode = [], {}
    for name, c in configs.items():
        r, encode[name] = feature_rows(name, c, train, test, fit_part, holdout, toks, mesh, repeats)
        rows += r
    print(f"IMDB: {len(train)} train / {len(test)} official test reviews, presence features, stop words kept. "
          "Hyperparameters chosen on the 20 % holdout of the train reviews (NB: alpha here; NBSVM / NB-LR: "
          f"`select_nbsvm`); the test reviews chose nothing. Times: median of {repeats} (one CPU device).\n")
    print("| features | model | hyperparameters | test accuracy | train s | predict s |")
    print("|---|---|---|---|---|---|")
    for features, model, hyper, acc, tr, pr in rows:
        print(f"| {features} | {model} | {hyper} | {acc:.4f} | {tr:.2f} | {pr:.2f} |")
    print(f"\ntokenize train + test + holdout parts: {tokenize_s:.1f}s; vocabulary + encode train + test: "
          + ", ".join(f"{k} {v:.1f}s" for k, v in encode.items()))


if __name__ == "__main__":
    app.run(main)
