"""Choose the NBSVM / NB-LR hyperparameters on a holdout of the IMDB training reviews (never on test).

    python -m jaxml.tasks.imdb_nb.select_nbsvm [--quick]

The 25k train reviews are split 80/20 (``jaxml.data.imdb.holdout_split``, stratified, seed 0); every point
of the grid — n-gram range and minimum count, loss, ratio smoothing alpha, C, L-BFGS tolerance, and the
interpolation beta (free: one fit serves every beta) — is fitted on the 80 % and scored on the 20 %.
Stop words are kept (the naive Bayes table found that better). Prints the whole grid as a Markdown table,
the best point of every feature set, and the chosen point (the best holdout accuracy; ties go to the
earlier grid point) as the ``NBSVM`` entries of ``configs/imdb_nb.py``. Needs ``$JAXML_DATA_DIR/imdb``.
"""
from __future__ import annotations

import itertools
import sys
import time

import numpy as np
from absl import app, flags

from jaxml.data import imdb
from jaxml.naive_bayes import classifier, nbsvm, text

flags.DEFINE_bool("quick", False, "3,000 train reviews and a small grid (smoke run).")
FLAGS = flags.FLAGS

FEATURES = (((1, 2), 1), ((1, 2), 2), ((1, 3), 2), ((1, 3), 3))       # (ngram_range, min_count)
LOSSES = nbsvm.LOSSES
ALPHAS = (0.5, 1.0)
CS = (0.03, 0.1, 0.3, 1.0)
TOLS = (1e-2, 1e-3)
BETAS = (0.25, 0.5, 0.75, 1.0)


def holdout_accuracy(fit: dict, enc: text.EncodedCorpus, labels: np.ndarray, beta: float) -> float:
    params = nbsvm.classifier_params(fit["w"], fit["b"], fit["r"], beta)
    scores = classifier.token_joint_log_likelihood(params, enc.token_ids, enc.doc_ids(), num_docs=enc.num_docs)
    return float(np.mean(np.asarray(scores).argmax(axis=1) == labels))


def grid(fit_part, holdout, features, losses, alphas, cs, tols, betas):
    """Rows ``(ngram_range, min_count, loss, alpha, C, tol, iterations, {beta: accuracy}, terms)``."""
    t0 = time.perf_counter()
    tok_fit = text.tokenize(fit_part.texts, stop_words=False, progress=False)
    tok_hold = text.tokenize(holdout.texts, stop_words=False, progress=False)
    rows = []
    for ngram_range, min_count in features:
        vocab = text.build_vocabulary(tok_fit, ngram_range=ngram_range, min_count=min_count)
        enc, enc_hold = vocab.encode(tok_fit).binarize(), vocab.encode(tok_hold).binarize()
        for loss, alpha, c, tol in itertools.product(losses, alphas, cs, tols):
            fit = nbsvm.fit_nbsvm(enc, fit_part.labels, num_classes=2, alpha=alpha, C=c, loss=loss, tol=tol)
            acc = {beta: holdout_accuracy(fit, enc_hold, holdout.labels, beta) for beta in betas}
            rows.append((ngram_range, min_count, loss, alpha, c, tol, fit["num_iter"], acc, len(vocab)))
            best = max(acc, key=acc.get)
            print(f"  {ngram_range} min {min_count} {loss} alpha {alpha:g} C {c:g} tol {tol:g}: "
                  f"{fit['num_iter']} iterations, best beta {best:g} {acc[best]:.4f} "
                  f"({time.perf_counter() - t0:.0f}s)", file=sys.stderr, flush=True)
    return rows


def _best(rows):
    """(row, beta) of the highest holdout accuracy; ties: the earlier row, then the larger beta."""
    return max(((r, b) for r in rows for b in sorted(r[7], reverse=True)), key=lambda rb: rb[0][7][rb[1]])


def _entry(row, beta) -> str:
    ng, mc, loss, alpha, c, tol = row[:6]
    return (f'{{"ngram_range": {ng}, "min_count": {mc}, "loss": "{loss}", "alpha": {alpha}, "C": {c}, '
            f'"beta": {beta}, "tol": {tol}}}')


def main(argv):
    del argv
    t0 = time.perf_counter()
    train = imdb.load_imdb_csv("train")
    features, losses, alphas, cs, tols = FEATURES, LOSSES, ALPHAS, CS, TOLS
    if FLAGS.quick:
        train = train.take(np.arange(0, 25000, 8)[:3000])
        features, losses, alphas, cs, tols = FEATURES[:1], LOSSES[:1], ALPHAS[1:], CS[1:3], TOLS[:1]
    fit_part, holdout = imdb.holdout_split(train, 0.2, seed=0)
    rows = grid(fit_part, holdout, features, losses, alphas, cs, tols, BETAS)
    print(f"NBSVM / NB-LR grid on the IMDB holdout: fitted on {len(fit_part)} train reviews, scored on the "
          f"{len(holdout)} held out (stratified 20 %, seed 0); test reviews never read.\n")
    print("| n-grams | min count | terms | loss | alpha | C | tol | L-BFGS iterations | "
          + " | ".join(f"beta {b:g}" for b in BETAS) + " |")
    print("|---" * (8 + len(BETAS)) + "|")
    for ng, mc, loss, alpha, c, tol, iters, acc, size in rows:
        print(f"| {ng[0]}-{ng[1]} | {mc} | {size:,} | {loss} | {alpha:g} | {c:g} | {tol:g} | {iters} | "
              + " | ".join(f"{acc[b]:.4f}" for b in BETAS) + " |")
    print("\nbest per feature set (holdout accuracy):")
    for ng, mc in features:
        row, beta = _best([r for r in rows if (r[0], r[1]) == (ng, mc)])
        print(f"  {ng[0]}-{ng[1]}-grams, min count {mc}: {row[7][beta]:.4f} with {row[2]}, alpha {row[3]:g}, "
              f"C {row[4]:g}, tol {row[5]:g}, beta {beta:g}")
    row, beta = _best(rows)
    print(f"\nchosen (configs/imdb_nb.py NBSVM['nbsvm']): {_entry(row, beta)}  holdout {row[7][beta]:.4f}")
    bigram = [r for r in rows if r[0][1] <= 2]
    if bigram:
        row, beta = _best(bigram)
        print(f"chosen with at most bigrams (NBSVM['nbsvm_bigram']): {_entry(row, beta)}  "
              f"holdout {row[7][beta]:.4f}")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    app.run(main)
