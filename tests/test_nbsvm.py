"""NBSVM / NB-LR: the log-count ratio against NumPy float64, sparse chunk scores against a dense matmul, the fit
against scikit-learn's LogisticRegression and a dense SciPy minimisation, a separable toy corpus, 1 == 2 == 4
devices bit for bit, and (slow, real data) IMDB at >= 0.91 with the config's holdout-chosen hyperparameters."""
import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from sklearn.linear_model import LogisticRegression

from jaxml import naive_bayes as nb
from jaxml.naive_bayes import nbsvm, sparse, text
from jaxml.parallel import data_mesh
from tests.helpers import traces_of
from tests.nb_launcher import launch

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _corpus(seed=0, docs=120, vocab=40, classes=2, max_len=25, empty=(3,)):
    """A presence-encoded corpus (sorted distinct ids per document) and its dense 0/1 matrix."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, docs).astype(np.int32)
    lens = rng.integers(1, max_len, docs)
    lens[list(empty)] = 0
    # class-dependent term preferences, so that the problem is learnable but not separable
    pref = rng.dirichlet(np.full(vocab, 0.3), size=classes)
    rows = [np.sort(rng.choice(vocab, min(n, vocab), replace=False, p=pref[y])) for n, y in zip(lens, labels)]
    offsets = np.zeros(docs + 1, np.int64)
    np.cumsum([len(r) for r in rows], out=offsets[1:])
    ids = np.concatenate(rows).astype(np.int32)
    x = np.zeros((docs, vocab))
    x[np.repeat(np.arange(docs), np.diff(offsets)), ids] = 1.0
    return text.EncodedCorpus(ids, offsets, vocab), x, labels


def _ratio_reference(x, labels, classes, alpha):
    """r[c] = log(p/|p|_1) - log(q/|q|_1), one-vs-rest, in float64 from the dense presence matrix."""
    out = []
    for c in range(classes):
        p = alpha + x[labels == c].sum(0)
        q = alpha + x[labels != c].sum(0)
        out.append(np.log(p / p.sum()) - np.log(q / q.sum()))
    return np.array(out)


@pytest.mark.parametrize("classes,alpha", [(2, 1.0), (2, 0.3), (3, 0.5)])
def test_log_count_ratio_equals_numpy_float64(classes, alpha):
    enc, x, labels = _corpus(classes=classes)
    with jax.enable_x64(True):
        counts = nb.count_tokens(enc.token_ids, labels[enc.doc_ids()], labels, num_classes=classes,
                                 vocab_size=enc.vocab_size)
        r = np.asarray(nb.log_count_ratio(counts["feature_count"], alpha=alpha))
    assert r.dtype == np.float64
    np.testing.assert_allclose(r, _ratio_reference(x, labels, classes, alpha), rtol=0, atol=1e-12)
    if classes == 2:
        np.testing.assert_allclose(r[1], -r[0], atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("groups,chunk", [(1, 1), (1, 4), (2, 7), (4, 64)])
@pytest.mark.slow
def test_chunk_scores_and_gradient_equal_dense_matmul(groups, chunk):
    enc, x, _ = _corpus(seed=1, docs=37)
    rng = np.random.default_rng(2)
    v = rng.normal(size=(2, enc.vocab_size)).astype(np.float32)
    dc = sparse.chunk_documents(enc.token_ids, enc.offsets, vocab_size=enc.vocab_size, num_groups=groups,
                                chunk=chunk)
    assert dc.ids.shape[:1] == (groups,) and np.all(np.diff(dc.chunk_doc, axis=1) >= 0)
    assert sorted(dc.doc_index[dc.doc_index >= 0]) == list(range(enc.num_docs))
    scores = np.asarray(sparse.chunk_scores(jnp.asarray(v), dc.ids, dc.chunk_doc, dc.docs_per_group))
    dense = np.zeros((2, enc.num_docs))
    for k in range(groups):
        keep = dc.doc_index[k] >= 0
        dense[:, dc.doc_index[k][keep]] = scores[k][:, keep]
    np.testing.assert_allclose(dense, v.astype(np.float64) @ x.T, rtol=1e-5, atol=1e-5)
    g = rng.normal(size=(groups, 2, dc.docs_per_group)).astype(np.float32)
    g[np.broadcast_to(dc.doc_index[:, None, :] < 0, g.shape)] = 0.0
    bins = sparse.gradient_bins(dc.ids, enc.vocab_size, groups)
    dv = np.asarray(sparse.chunk_gradient(jnp.asarray(g), bins, dc.chunk_doc, enc.vocab_size))
    for k in range(groups):                        # each group's partial: X_k^T g_k
        keep = dc.doc_index[k] >= 0
        ref = g[k][:, keep].astype(np.float64) @ x[dc.doc_index[k][keep]]
        np.testing.assert_allclose(dv[k], ref, rtol=1e-5, atol=1e-5)
    with jax.enable_x64(True):                     # the gradient is the transpose of the scores
        vjp = jax.vjp(lambda v: sparse.chunk_scores(v, dc.ids, dc.chunk_doc, dc.docs_per_group),
                      jnp.asarray(v, jnp.float64))[1](jnp.asarray(g, jnp.float64))[0]
        np.testing.assert_allclose(dv.sum(0), vjp, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_fit_equals_sklearn_logistic_regression_float64():
    enc, x, labels = _corpus(seed=3, docs=200, vocab=60)
    with jax.enable_x64(True):
        fit = nb.fit_nbsvm(enc, labels, num_classes=2, alpha=0.5, C=0.7, tol=1e-9, max_iter=500)
        r = np.asarray(fit["r"])[0]
        sk = LogisticRegression(C=0.7, tol=1e-12, max_iter=10_000).fit(x * r, labels)
        np.testing.assert_allclose(r, _ratio_reference(x, labels, 2, 0.5)[1], atol=1e-12)
        np.testing.assert_allclose(np.asarray(fit["w"])[0], sk.coef_[0], rtol=0, atol=2e-5)
        np.testing.assert_allclose(np.asarray(fit["b"]), sk.intercept_, rtol=0, atol=2e-5)
        assert fit["grad_ratio"] <= 1e-9


def test_squared_hinge_fit_equals_dense_scipy_minimum():
    enc, x, labels = _corpus(seed=4, docs=150, vocab=30)
    c = 0.3
    with jax.enable_x64(True):
        fit = nb.fit_nbsvm(enc, labels, num_classes=2, C=c, loss="squared_hinge", tol=1e-9, max_iter=1000)
    r = np.asarray(fit["r"])[0]
    f, y = x * r, 2.0 * labels - 1

    def objective(theta):                          # 1/2 |w|^2 + C sum max(0, 1 - y (f w + b))^2, dense
        w, b = theta[:-1], theta[-1]
        slack = np.maximum(0.0, 1.0 - y * (f @ w + b))
        grad_s = -2.0 * c * slack * y
        return 0.5 * w @ w + c * slack @ slack, np.append(w + f.T @ grad_s, grad_s.sum())
    ref = scipy.optimize.minimize(objective, np.zeros(31), jac=True, method="L-BFGS-B",
                                  options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10_000}).x
    np.testing.assert_allclose(np.asarray(fit["w"])[0], ref[:-1], atol=1e-5)
    np.testing.assert_allclose(float(fit["b"][0]), ref[-1], atol=1e-5)


@pytest.mark.slow
def test_one_vs_rest_equals_one_sklearn_problem_per_class():
    enc, x, labels = _corpus(seed=5, docs=240, vocab=50, classes=3)
    r = _ratio_reference(x, labels, 3, 1.0)
    with jax.enable_x64(True):
        fit = nb.fit_nbsvm(enc, labels, num_classes=3, C=0.5, tol=1e-9, max_iter=500)
        params = nb.classifier_params(fit["w"], fit["b"], fit["r"], beta=1.0)
        scores = nb.token_joint_log_likelihood(params, enc.token_ids, enc.doc_ids(), num_docs=enc.num_docs)
        decision = nbsvm.decision_function(fit["w"], fit["b"], r, 1.0, enc)
        predicted = nbsvm.predict(fit["w"], fit["b"], r, 1.0, enc)
    assert fit["w"].shape == (3, 50)
    for k in range(3):
        sk = LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000).fit(x * r[k], labels == k)
        np.testing.assert_allclose(np.asarray(fit["w"])[k], sk.coef_[0], atol=5e-5)
        np.testing.assert_allclose(float(fit["b"][k]), sk.intercept_[0], atol=5e-5)
    dense = (x[:, None, :] * r[None] * np.asarray(fit["w"])[None]).sum(-1) + np.asarray(fit["b"])
    np.testing.assert_allclose(scores, dense, atol=1e-9)
    np.testing.assert_allclose(decision, dense.T, atol=1e-9)
    np.testing.assert_array_equal(predicted, dense.argmax(1))


def test_interpolation_and_binary_classifier_params():
    rng = np.random.default_rng(6)
    w, r, b = rng.normal(size=(1, 20)), rng.normal(size=(1, 20)), np.array([0.4])
    for beta in (0.0, 0.25, 1.0):
        ref = (1 - beta) * np.abs(w).mean() + beta * w
        np.testing.assert_allclose(nbsvm.interpolate(w, beta), ref, rtol=1e-6)
        p = nb.classifier_params(w, b, r, beta)
        np.testing.assert_allclose(p["weight"], np.concatenate([-ref * r / 2, ref * r / 2]), rtol=1e-6)
        np.testing.assert_allclose(p["bias"], [-0.2, 0.2], rtol=1e-6)
    x = (rng.random((5, 20)) < 0.3).astype(np.float64)
    s = x @ (w * r)[0] + b[0]
    scores = np.asarray(nb.joint_log_likelihood(nb.classifier_params(w, b, r, 1.0), x))
    proba = np.exp(nb.log_proba_from_scores(scores))
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-s)), rtol=1e-5)
    ids = np.flatnonzero(x)
    enc = text.EncodedCorpus((ids % 20).astype(np.int32), np.searchsorted(ids // 20, np.arange(6)), 20)
    np.testing.assert_allclose(nbsvm.decision_function(w, b, r, 1.0, enc)[0], s, rtol=1e-5)
    np.testing.assert_array_equal(nbsvm.predict(w, b, r, 1.0, enc), s > 0)


def _toy_texts(seed, n):
    """Reviews of neutral filler words plus one sentiment word each: 'great'/'superb' vs 'awful'/'dull'."""
    rng = np.random.default_rng(seed)
    filler = ["film", "plot", "actor", "scene", "story", "movie", "music", "ending"]
    labels = rng.integers(0, 2, n)
    texts = []
    for y in labels:
        words = list(rng.choice(filler, 6)) + [rng.choice(["great", "superb"] if y else ["awful", "dull"])]
        rng.shuffle(words)
        texts.append(" ".join(words))
    return texts, labels


@pytest.mark.slow
@pytest.mark.parametrize("loss,beta", [("logistic", 1.0), ("squared_hinge", 0.25)])
def test_separable_toy_corpus_is_learned_to_100_percent(loss, beta):
    texts, labels = _toy_texts(7, 200)
    model = nb.fit_text_nbsvm(texts, labels, num_classes=2, class_names=("neg", "pos"), loss=loss, C=1.0,
                              beta=beta, ngram_range=(1, 1))
    assert model.kind == "nbsvm" and model.binary
    assert np.mean(model.predict(texts) == labels) == 1.0
    test_texts, test_labels = _toy_texts(8, 100)
    assert np.mean(model.predict(test_texts) == test_labels) == 1.0


@pytest.mark.slow
def test_text_model_saves_and_loads(tmp_path):
    texts, labels = _toy_texts(9, 80)
    model = nb.fit_text_nbsvm(texts, labels, num_classes=2, ngram_range=(1, 2))
    model.save(tmp_path / "m.npz")
    again = nb.TextNBModel.load(tmp_path / "m.npz")
    assert again.kind == "nbsvm"
    np.testing.assert_array_equal(again.scores(texts), model.scores(texts))


@pytest.mark.parametrize("loss,devices", [("logistic", (1, 2, 4)),
                                          pytest.param("squared_hinge", (1, 4), marks=pytest.mark.slow)])
def test_1_2_and_4_devices_give_the_same_weights_bit_for_bit(loss, devices):
    assert jax.device_count() >= 4, "tests/conftest.py sets 4 fake CPU devices"
    enc, _, labels = _corpus(seed=10, docs=301, vocab=80)
    fits = [nb.fit_nbsvm(enc, labels, num_classes=2, C=0.5, loss=loss, tol=1e-6,
                         mesh=data_mesh(jax.devices()[:n])) for n in devices]
    for other in fits[1:]:
        np.testing.assert_array_equal(other["w"], fits[0]["w"])
        np.testing.assert_array_equal(other["b"], fits[0]["b"])
        assert other["num_iter"] == fits[0]["num_iter"]
    assert fits[0]["num_iter"] > 3


@pytest.mark.slow
def test_new_C_and_tol_do_not_recompile():
    """C and tol are run-time arguments of the trainer: a fit with new values traces nothing."""
    enc, _, labels = _corpus(seed=11)
    _, first = traces_of("train", lambda: nb.fit_nbsvm(enc, labels, num_classes=2, C=0.5, tol=1e-2))
    _, again = traces_of("train", lambda: nb.fit_nbsvm(enc, labels, num_classes=2, C=2.0, tol=1e-4))
    assert first <= 1 and again == 0


def test_bad_arguments_raise_clear_errors():
    enc, _, labels = _corpus(seed=12)
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        nb.fit_nbsvm(enc, labels, num_classes=2, loss="hinge")
    with pytest.raises(ValueError, match="C must be > 0, got 0"):
        nb.fit_nbsvm(enc, labels, num_classes=2, C=0)
    with pytest.raises(ValueError, match=r"labels must be int\[120\]"):
        nb.fit_nbsvm(enc, labels[:-1], num_classes=2)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        nb.fit_nbsvm(enc, labels + 1, num_classes=2)
    with pytest.raises(ValueError, match="num_groups must be a power of two and a multiple of the 4 devices"):
        nb.fit_nbsvm(enc, labels, num_classes=2, num_groups=2)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        nb.log_count_ratio(np.ones((2, 3)), alpha=0)
    with pytest.raises(ValueError, match="beta must lie in"):
        nb.fit_text_nbsvm(["good film", "bad film"], [1, 0], num_classes=2, beta=1.5)


# ------------------------------------------------------------------------------- real data and launcher


@pytest.mark.slow
def test_imdb_official_test_accuracy_and_devices(data_dir):
    """The config's holdout-chosen NBSVM: >= 0.91 on the official test reviews, same weights on 1 and 4 devices."""
    from jaxml.cli.common import load_config
    from jaxml.data import imdb

    c = load_config(str(ROOT / "configs" / "imdb_nb.py") + ":nbsvm")
    train, test = imdb.load_imdb_csv("train", data_dir), imdb.load_imdb_csv("test", data_dir)
    tok, tok_test = text.tokenize(train.texts, stop_words=False), text.tokenize(test.texts, stop_words=False)
    vocab = text.build_vocabulary(tok, ngram_range=tuple(c.text.ngram_range), min_count=c.text.min_count)
    enc, enc_test = vocab.encode(tok).binarize(), vocab.encode(tok_test).binarize()
    fits = [nb.fit_nbsvm(enc, train.labels, num_classes=2, alpha=c.model.alpha, C=c.model.C, loss=c.model.loss,
                         tol=c.model.tol, mesh=data_mesh(jax.devices()[:n])) for n in (1, 4)]
    np.testing.assert_array_equal(fits[1]["w"], fits[0]["w"])
    params = nb.classifier_params(fits[0]["w"], fits[0]["b"], fits[0]["r"], c.model.beta)
    scores = nb.token_joint_log_likelihood(params, enc_test.token_ids, enc_test.doc_ids(), num_docs=enc_test.num_docs)
    accuracy = float(np.mean(np.asarray(scores).argmax(1) == test.labels))
    assert accuracy >= 0.91, accuracy


@pytest.mark.slow
def test_launcher_nbsvm_quick_run_then_text_from_cache(data_dir, tmp_path):
    run = launch("--config=configs/imdb_nb.py:nbsvm_quick", f"--workdir={tmp_path}", "--num_cpu_devices=2",
                  env_extra={"JAXML_DATA_DIR": data_dir})
    assert run.returncode == 0, run.stderr[-2000:]
    accuracy = float([ln for ln in run.stdout.splitlines() if ln.startswith("accuracy: ")][0].split()[1])
    assert 0.84 < accuracy < 0.92, accuracy
    assert "kind=nbsvm" in run.stdout and "2 devices" in run.stdout
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["split"] == "test" and abs(record["accuracy"] - accuracy) < 1e-4
    good = launch("--config=configs/imdb_nb.py:nbsvm_quick", f"--workdir={tmp_path}",
                   "--text=A wonderful, moving film with brilliant acting.",
                   env_extra={"JAXML_DATA_DIR": str(tmp_path / "nowhere")})
    assert good.returncode == 0, good.stderr[-2000:]
    assert good.stdout.strip().splitlines()[-1].startswith("prediction: pos")


@pytest.mark.slow
def test_launcher_rejects_bad_nbsvm_config_with_reason(tmp_path):
    run = launch("--config=configs/imdb_nb.py:nbsvm_quick", f"--workdir={tmp_path}", "--config.model.beta=2")
    assert run.returncode != 0
    assert run.stderr.strip().splitlines()[-1] == "error: ValueError: config.model.beta must lie in [0, 1], got 2.0"
    run = launch("--config=configs/imdb_nb.py:nbsvm_quick", f"--workdir={tmp_path}", "--config.model.loss=hinge")
    assert run.returncode != 0 and "config.model.loss must be one of" in run.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_select_nbsvm_quick_prints_the_grid_and_a_choice(data_dir):
    run = subprocess.run([sys.executable, "-m", "jaxml.tasks.imdb_nb.select_nbsvm", "--quick"], capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, "JAXML_DATA_DIR": data_dir}, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "| n-grams | min count |" in run.stdout and "test reviews never read" in run.stdout
    assert 'chosen (configs/imdb_nb.py NBSVM[\'nbsvm\']): {"ngram_range": (1, 2)' in run.stdout
