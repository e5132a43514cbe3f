"""IMDB NBSVM / NB-LR train + predict, 25k train / 25k test reviews, on the same presence features: jaxml
(sharded counts, log-count ratio, chunked sparse scores, L-BFGS) vs scikit-learn ``LogisticRegression``
(liblinear), in one run.

    flock /tmp/jaxml-bench.lock python bench/nbsvm.py [--quick] [--repeats=5] [--devices=0]

Both sides start from the same ``EncodedCorpus`` (the n-grams and minimum count of ``configs/imdb_nb.py:nbsvm``,
presence, tokenized and encoded once, not timed) and the same hyperparameters (C, alpha, tol of that config):
- ``jaxml``: ``fit_nbsvm`` (chunk layout; one program: counts, ratio, L-BFGS to ``|grad| <= tol |grad(0)|``),
  then ``nbsvm.predict`` on the test corpus; on every core as fake CPU devices (``--devices``, 0 =
  os.cpu_count()); ``jaxml-1dev`` on one;
- ``sklearn``: the ratio from NumPy counts, the ratio-scaled CSR matrices (``data = r[indices]``),
  ``LogisticRegression(C, solver="liblinear", dual=True)`` at its default tol (1e-4) and ``predict``;
  liblinear runs on one core.
Reports interleaved medians of ``--repeats`` runs after one warm-up (compilation excluded; jaxml's compile
time is printed apart), the test accuracies, and a jaxml stage breakdown. Needs ``$JAXML_DATA_DIR/imdb``.
"""
from __future__ import annotations

import os
import pathlib
import time

import jax
import numpy as np
from absl import app, flags

import timing
from jaxml import naive_bayes as nb
from jaxml.cli.common import load_config
from jaxml.data import imdb
from jaxml.naive_bayes import nbsvm, text
from jaxml.parallel import data_mesh

flags.DEFINE_bool("quick", False, "5,000 train / 5,000 test reviews, 3 repeats (smoke run).")
flags.DEFINE_integer("repeats", 5, "Timed repeats per implementation (median reported).")
flags.DEFINE_integer("devices", 0, "Fake CPU devices for the sharded run (0 = os.cpu_count()).")
FLAGS = flags.FLAGS
CONFIG = pathlib.Path(__file__).resolve().parents[1] / "configs" / "imdb_nb.py"


def run_jaxml(enc, labels, enc_test, test_labels, model, mesh, accuracies, name):
    def run():
        fit = nb.fit_nbsvm(enc, labels, num_classes=2, alpha=model.alpha, C=model.C, loss=model.loss,
                           tol=model.tol, max_iter=model.max_iter, mesh=mesh)
        pred = nbsvm.predict(fit["w"], fit["b"], fit["r"], model.beta, enc_test)
        accuracies[name] = float(np.mean(pred == test_labels))
        accuracies[name + " iterations"] = fit["num_iter"]
    return run


def run_sklearn(enc, labels, enc_test, test_labels, model, accuracies):
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression

    def scaled(e, r):
        return sp.csr_matrix((r[e.token_ids], e.token_ids, e.offsets), shape=(e.num_docs, e.vocab_size))

    def run():
        pos = (labels == 1)[enc.doc_ids()]
        p = model.alpha + np.bincount(enc.token_ids[pos], minlength=enc.vocab_size)
        q = model.alpha + np.bincount(enc.token_ids[~pos], minlength=enc.vocab_size)
        r = np.log(p / p.sum()) - np.log(q / q.sum())
        lr = LogisticRegression(C=model.C, solver="liblinear", dual=True).fit(scaled(enc, r), labels)
        coef = (1 - model.beta) * np.abs(lr.coef_).mean() + model.beta * lr.coef_
        pred = (scaled(enc_test, r) @ coef[0] + lr.intercept_[0]) > 0
        accuracies["sklearn"] = float(np.mean(pred == test_labels))
        accuracies["sklearn iterations"] = int(lr.n_iter_[0])
    return run


def jaxml_stages(enc, labels, enc_test, model, mesh) -> dict[str, float]:
    """Seconds per stage of one jaxml run (after the timed runs: everything is compiled)."""
    from jaxml.naive_bayes import sparse

    out, t = {}, time.perf_counter()
    sparse.chunk_documents(enc.token_ids, enc.offsets, vocab_size=enc.vocab_size, num_groups=4)
    out["chunk layout (NumPy)"], t = time.perf_counter() - t, time.perf_counter()
    fit = nb.fit_nbsvm(enc, labels, num_classes=2, alpha=model.alpha, C=model.C, loss=model.loss, tol=model.tol,
                       mesh=mesh)
    out["fit_nbsvm: layout + one program (counts, ratio, L-BFGS)"], t = time.perf_counter() - t, time.perf_counter()
    nbsvm.predict(fit["w"], fit["b"], fit["r"], model.beta, enc_test)
    out["predict"] = time.perf_counter() - t
    return out


def main(argv):
    del argv
    cores = FLAGS.devices or os.cpu_count() or 1
    jax.config.update("jax_num_cpu_devices", cores)   # before JAX first runs
    c = load_config(f"{CONFIG}:nbsvm")
    train, test = imdb.load_imdb_csv("train"), imdb.load_imdb_csv("test")
    if FLAGS.quick:
        train, test = train.take(np.arange(0, 25000, 5)), test.take(np.arange(0, 25000, 5))
    repeats = 3 if FLAGS.quick else FLAGS.repeats
    tok, tok_test = text.tokenize(train.texts, stop_words=False), text.tokenize(test.texts, stop_words=False)
    vocab = text.build_vocabulary(tok, ngram_range=tuple(c.text.ngram_range), min_count=c.text.min_count)
    enc, enc_test = vocab.encode(tok).binarize(), vocab.encode(tok_test).binarize()
    mesh, mesh1 = data_mesh(), data_mesh(jax.devices()[:1])
    acc: dict = {}
    t = time.perf_counter()
    run_jaxml(enc, train.labels, enc_test, test.labels, c.model, mesh1, acc, "jaxml-1dev")()
    compile_s = time.perf_counter() - t
    runs = {
        "jaxml": run_jaxml(enc, train.labels, enc_test, test.labels, c.model, mesh, acc, "jaxml"),
        "jaxml-1dev": run_jaxml(enc, train.labels, enc_test, test.labels, c.model, mesh1, acc, "jaxml-1dev"),
        "sklearn": run_sklearn(enc, train.labels, enc_test, test.labels, c.model, acc),
    }
    medians = timing.interleaved_medians(runs, repeats=repeats, warmup=1)
    stages = jaxml_stages(enc, train.labels, enc_test, c.model, mesh1)
    print(f"IMDB NBSVM train + predict: {len(train)} train / {len(test)} test reviews, {len(vocab):,} terms "
          f"({c.text.ngram_range[0]}-{c.text.ngram_range[1]}-grams, min count {c.text.min_count}), "
          f"{len(enc.token_ids):,} train presences; {c.model.loss}, C {c.model.C:g}, alpha {c.model.alpha:g}, "
          f"beta {c.model.beta:g}, tol {c.model.tol:g}; jaxml on {jax.device_count()} devices and on 1; "
          f"median of {repeats}")
    table = [(k, v, f"accuracy {acc[k]:.4f}, {acc[k + ' iterations']} iterations") for k, v in medians.items()]
    table.append(("  jaxml-1dev: first run (compiles)", compile_s, "not in the medians"))
    table += [(f"  jaxml-1dev: {k}", v, "one run, after warm-up") for k, v in stages.items()]
    ratios = {f"{k}/sklearn": medians["sklearn"] / medians[k] for k in ("jaxml", "jaxml-1dev")}
    timing.emit("nbsvm_imdb", "s", False, medians, ratios, table)


if __name__ == "__main__":
    app.run(main)
