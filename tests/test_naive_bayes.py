"""Naive Bayes kernels: scikit-learn parity, exact counting (partial_fit, 1 vs 4 devices), the
textbook's worked examples, and defined behaviour on odd input."""
import math
import warnings

import jax
import numpy as np
import pytest
from sklearn.naive_bayes import BernoulliNB, ComplementNB, GaussianNB, MultinomialNB

from jaxml import naive_bayes as nb
from jaxml.naive_bayes import fit_text_classifier, text
from jaxml.parallel import data_mesh

SKLEARN = {"multinomial": MultinomialNB, "bernoulli": BernoulliNB, "complement": ComplementNB}


def _count_data(seed=0, n=400, v=60, c=3):
    rng = np.random.default_rng(seed)
    x = rng.poisson(rng.uniform(0.05, 2.0, size=(1, v)), size=(n, v))
    return x, rng.integers(0, c, n)


def _fit_ours(x, y, kind, c=3, **kw):
    counts = nb.count_matrix(x, y, num_classes=c, binary=kind == "bernoulli")
    params = nb.fit_params(counts, kind, **kw)
    xin = (x > 0).astype(x.dtype) if kind == "bernoulli" else x
    return counts, params, xin


@pytest.mark.parametrize("kind,alpha,fit_prior,norm", [
    (k, a, f, False) for k in SKLEARN for a, f in [(1.0, True), (0.3, False)]] + [("complement", 0.7, True, True)])
def test_discrete_variants_match_sklearn_float64(kind, alpha, fit_prior, norm):
    x, y = _count_data()
    kw = {"norm": norm} if kind == "complement" else {}
    sk = SKLEARN[kind](alpha=alpha, fit_prior=fit_prior, **kw).fit(x, y)
    with jax.enable_x64(True):
        counts, params, xin = _fit_ours(x, y, kind, alpha=alpha, fit_prior=fit_prior, norm=norm)
        np.testing.assert_array_equal(counts["feature_count"], sk.feature_count_)
        np.testing.assert_array_equal(counts["class_count"], sk.class_count_)
        np.testing.assert_allclose(params["feature_log_prob"], sk.feature_log_prob_, rtol=0, atol=1e-10)
        np.testing.assert_allclose(params["class_log_prior"], sk.class_log_prior_, rtol=0, atol=1e-12)
        np.testing.assert_allclose(nb.predict_log_proba(params, xin), sk.predict_log_proba(x),
                                   rtol=0, atol=1e-5)
        np.testing.assert_allclose(nb.joint_log_likelihood(params, xin),
                                   sk._joint_log_likelihood(x > 0 if kind == "bernoulli" else x),
                                   rtol=1e-12, atol=1e-8)
        np.testing.assert_array_equal(nb.predict(params, xin), sk.predict(x))


@pytest.mark.parametrize("kind", ["multinomial", "bernoulli", "complement"])
def test_discrete_variants_match_sklearn_float32(kind):
    x, y = _count_data(seed=1)
    sk = SKLEARN[kind](alpha=0.5).fit(x, y)
    _, params, xin = _fit_ours(x, y, kind, alpha=0.5)
    assert params["weight"].dtype == np.float32
    np.testing.assert_allclose(params["feature_log_prob"], sk.feature_log_prob_, rtol=0, atol=2e-6)
    # float32 sums of ~60 terms of size ~5: agreement to 2e-4 (float64 mode above: 1e-5 and better)
    np.testing.assert_allclose(nb.predict_log_proba(params, xin), sk.predict_log_proba(x), atol=2e-4)
    np.testing.assert_array_equal(nb.predict(params, xin), sk.predict(x))


def test_gaussian_matches_sklearn_and_partial_fit_merges_exactly():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal([170, 70], [7, 9], (60, 2)), rng.normal([160, 55], [6, 7], (50, 2))])
    y = np.repeat([0, 1], [60, 50])
    sk = GaussianNB().fit(x, y)
    with jax.enable_x64(True):
        stats = nb.gaussian_stats(x, y, num_classes=2)
        params = nb.gaussian_params(stats)
        np.testing.assert_allclose(params["theta"], sk.theta_, rtol=1e-12)
        np.testing.assert_allclose(params["var"], sk.var_, rtol=1e-10)
        scores = nb.gaussian_joint_log_likelihood(params, x)
        np.testing.assert_allclose(nb.log_proba_from_scores(scores), sk.predict_log_proba(x), atol=1e-9)
        np.testing.assert_array_equal(np.argmax(scores, 1), sk.predict(x))
        order = np.random.default_rng(3).permutation(len(y))
        parts = [nb.gaussian_stats(x[i], y[i], num_classes=2) for i in np.array_split(order, 4)]
        merged = parts[0]
        for p in parts[1:]:
            merged = nb.merge_gaussian_stats(merged, p)
        for k in ("count", "mean", "m2"):
            np.testing.assert_allclose(merged[k], stats[k], rtol=1e-10)
    sk32 = nb.gaussian_params(nb.gaussian_stats(x, y, num_classes=2))
    np.testing.assert_array_equal(np.argmax(nb.gaussian_joint_log_likelihood(sk32, x), 1), sk.predict(x))


def _token_stream(seed=0, docs=257, vocab=50, classes=3):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 30, docs)
    ids = rng.integers(0, vocab, lengths.sum()).astype(np.int32)
    labels = rng.integers(0, classes, docs).astype(np.int32)
    doc = np.repeat(np.arange(docs), lengths)
    return ids, doc, labels


def test_count_tokens_equals_dense_count_matrix():
    ids, doc, labels = _token_stream()
    counts = nb.count_tokens(ids, labels[doc], labels, num_classes=3, vocab_size=50)
    dense = np.zeros((len(labels), 50), np.int64)
    np.add.at(dense, (doc, ids), 1)
    ref = nb.count_matrix(dense, labels, num_classes=3)
    np.testing.assert_array_equal(counts["feature_count"], ref["feature_count"])
    np.testing.assert_array_equal(counts["class_count"], np.bincount(labels, minlength=3))
    assert counts["feature_count"].dtype == np.int32


def test_partial_fit_over_chunks_equals_one_fit():
    ids, doc, labels = _token_stream(seed=1)
    whole = nb.count_tokens(ids, labels[doc], labels, num_classes=3, vocab_size=50)
    total = None
    for chunk in np.array_split(np.arange(len(labels)), 5):          # 5 batches of documents
        sel = np.isin(doc, chunk)
        total = nb.partial_fit(total, ids[sel], labels[doc[sel]], labels[chunk], num_classes=3,
                               vocab_size=50)
    for k in whole:
        np.testing.assert_array_equal(total[k], whole[k])
    p1, p2 = nb.fit_params(whole, "multinomial"), nb.fit_params(total, "multinomial")
    np.testing.assert_array_equal(p1["weight"], p2["weight"])
    # ... and equal to scikit-learn's own partial_fit
    dense = np.zeros((len(labels), 50), np.int64)
    np.add.at(dense, (doc, ids), 1)
    sk = MultinomialNB()
    for chunk in np.array_split(np.arange(len(labels)), 5):
        sk.partial_fit(dense[chunk], labels[chunk], classes=[0, 1, 2])
    np.testing.assert_array_equal(total["feature_count"], sk.feature_count_)


def test_sharded_counts_identical_on_1_and_4_devices():
    assert len(jax.devices()) >= 4, "conftest should provide 4 fake CPU devices"
    ids, doc, labels = _token_stream(seed=2, docs=1001)              # lengths not divisible by 4
    one = nb.count_tokens_sharded(ids, labels[doc], labels, num_classes=3, vocab_size=50,
                                  mesh=data_mesh(jax.devices()[:1]))
    four = nb.count_tokens_sharded(ids, labels[doc], labels, num_classes=3, vocab_size=50,
                                   mesh=data_mesh(jax.devices()[:4]))
    plain = nb.count_tokens(ids, labels[doc], labels, num_classes=3, vocab_size=50)
    for k in plain:
        np.testing.assert_array_equal(one[k], plain[k])
        np.testing.assert_array_equal(four[k], plain[k])
    assert int(four["feature_count"].sum()) == len(ids)
    assert int(four["class_count"].sum()) == len(labels)


def test_token_scores_equal_dense_scores_and_empty_doc_scores_prior():
    ids, doc, labels = _token_stream(seed=3)
    counts = nb.count_tokens(ids, labels[doc], labels, num_classes=3, vocab_size=50)
    params = nb.fit_params(counts, "multinomial")
    dense = np.zeros((len(labels), 50), np.float32)
    np.add.at(dense, (doc, ids), 1)
    s_tok = nb.token_joint_log_likelihood(params, ids, doc, num_docs=len(labels))
    np.testing.assert_allclose(s_tok, nb.joint_log_likelihood(params, dense), rtol=1e-5)
    empty = np.flatnonzero(dense.sum(1) == 0)
    assert len(empty) > 0
    np.testing.assert_allclose(np.asarray(s_tok)[empty], np.broadcast_to(params["class_log_prior"],
                               (len(empty), 3)), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# The textbook's worked examples (Manning, Raghavan & Schuetze, Introduction to Information
# Retrieval, ch. 13: Table 13.1 and Examples 13.1 / 13.2) — the same formulas the from-scratch
# book writes by hand, with the word-count denominator.

IIR_TRAIN = ["Chinese Beijing Chinese", "Chinese Chinese Shanghai", "Chinese Macao", "Tokyo Japan Chinese"]
IIR_LABELS = [1, 1, 1, 0]                       # 1 = class "China", 0 = not
IIR_TEST = "Chinese Chinese Chinese Tokyo Japan"


def _iir_model(kind):
    return fit_text_classifier(IIR_TRAIN, IIR_LABELS, num_classes=2, kind=kind, alpha=1.0,
                               stop_words=False, progress=False)


def test_iir_multinomial_worked_example():
    model = _iir_model("multinomial")
    terms = model.vocab.terms()
    theta = np.exp(np.asarray(model.params["weight"], np.float64))
    expect_c = {"chinese": 6 / 14, "tokyo": 1 / 14, "japan": 1 / 14}       # (count + 1) / (8 + 6)
    expect_not = {"chinese": 2 / 9, "tokyo": 2 / 9, "japan": 2 / 9}        # (count + 1) / (3 + 6)
    for w in expect_c:
        np.testing.assert_allclose(theta[1, terms.index(w)], expect_c[w], rtol=1e-6)
        np.testing.assert_allclose(theta[0, terms.index(w)], expect_not[w], rtol=1e-6)
    np.testing.assert_allclose(theta.sum(axis=1), 1.0, rtol=1e-6)       # a distribution over words
    scores = model.scores([IIR_TEST])[0]
    np.testing.assert_allclose(np.exp(scores[1]), 3 / 4 * (3 / 7) ** 3 * (1 / 14) ** 2, rtol=1e-5)  # 3.0121e-4
    np.testing.assert_allclose(np.exp(scores[0]), 1 / 4 * (2 / 9) ** 5, rtol=1e-5)                  # 1.3548e-4
    assert model.predict([IIR_TEST])[0] == 1


def test_iir_bernoulli_worked_example():
    model = _iir_model("bernoulli")
    scores = model.scores([IIR_TEST])[0]
    # P(c|d) ~ 3/4 * 4/5 * 1/5 * 1/5 * (1-2/5)^3 = 0.005184 ; P(not|d) ~ 1/4 * (2/3)^3 * (1-1/3)^3 = 0.02195
    np.testing.assert_allclose(np.exp(scores[1]), 0.75 * 0.8 * 0.2 * 0.2 * 0.6 ** 3, rtol=1e-5)
    np.testing.assert_allclose(np.exp(scores[0]), 0.25 * (2 / 3) ** 3 * (2 / 3) ** 3, rtol=1e-5)
    assert model.predict([IIR_TEST])[0] == 0


def test_book_pipeline_on_toy_corpus_equals_plain_python_counting():
    """The book's algorithm written out with dicts: strip HTML, letters only, lowercase, drop stop
    words, count words per class, Laplace smoothing over (word count + |V|), log priors, argmax."""
    train = ["A great, great movie!<br />Loved it.", "Great acting; loved the story.",
             "Terrible plot. Boring<br /><br />and bad.", "Bad, bad acting: a boring waste."]
    labels = [1, 1, 0, 0]
    tests = ["great story, loved it", "boring and bad", "great but boring plot", ""]
    model = fit_text_classifier(train, labels, num_classes=2, progress=False)
    docs = [text.tokenize_reference(t) for t in train]
    vocab = sorted({w for d in docs for w in d})
    counts = {c: {w: 0 for w in vocab} for c in (0, 1)}
    for d, c in zip(docs, labels):
        for w in d:
            counts[c][w] += 1
    logp = {c: {w: math.log((counts[c][w] + 1) / (sum(counts[c].values()) + len(vocab))) for w in vocab}
            for c in (0, 1)}
    prior = {c: math.log(labels.count(c) / len(labels)) for c in (0, 1)}
    for t, ours in zip(tests, model.scores(tests)):
        ref = [prior[c] + sum(logp[c][w] for w in text.tokenize_reference(t) if w in logp[c]) for c in (0, 1)]
        np.testing.assert_allclose(ours, ref, rtol=1e-6)
    assert list(model.predict(tests[:2])) == [1, 0]


# ---------------------------------------------------------------------------------------------
# Defined behaviour on odd input


def test_class_absent_from_training_warns_and_is_never_predicted():
    with pytest.warns(RuntimeWarning, match=r"class 'neutral' \(index 2\) has no training documents"):
        model = fit_text_classifier(["good fun", "bad dull"], [1, 0], num_classes=3,
                                    class_names=("neg", "pos", "neutral"), progress=False)
    scores = model.scores(["good", "bad", "unknownword", ""])
    assert np.all(np.isneginf(scores[:, 2]))
    assert list(scores.argmax(1)[:2]) == [1, 0]


def test_empty_and_all_unknown_documents_fall_back_to_prior():
    model = fit_text_classifier(["good fun", "good good", "bad dull"], [1, 1, 0], num_classes=2,
                                progress=False)
    enc = model.encode(["", "<br />123 !!", "zzz qqq", "good"])
    assert list(enc.empty_docs()) == [0, 1, 2]
    scores = model.scores_encoded(enc)
    np.testing.assert_allclose(scores[:3], np.tile(np.log([1 / 3, 2 / 3]), (3, 1)), rtol=1e-6)


def test_bad_arguments_raise_clear_errors():
    counts = nb.count_matrix(np.ones((2, 3), np.int32), np.array([0, 1]), num_classes=2)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        nb.fit_params(counts, "multinomial", alpha=0.0)
    with pytest.raises(ValueError, match="unknown naive Bayes kind 'poisson'"):
        nb.fit_params(counts, "poisson")
    with pytest.raises(ValueError, match=r"class_prior has shape \(3,\), expected \(2,\)"):
        nb.fit_params(counts, "multinomial", class_prior=[0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        fit_text_classifier(["a b", "c d"], [0, 2], num_classes=2, progress=False)
    with pytest.raises(ValueError, match="empty vocabulary"):
        fit_text_classifier(["the a", "123"], [0, 1], num_classes=2, progress=False)


def test_given_prior_and_uniform_prior():
    x, y = _count_data(seed=4, c=2)
    prior = [0.9, 0.1]
    ours = nb.fit_params(nb.count_matrix(x, y, num_classes=2), "multinomial", class_prior=prior)
    sk = MultinomialNB(class_prior=prior).fit(x, y)
    np.testing.assert_allclose(ours["class_log_prior"], sk.class_log_prior_, rtol=1e-6)
    uni = nb.fit_params(nb.count_matrix(x, y, num_classes=2), "multinomial", fit_prior=False)
    np.testing.assert_allclose(uni["class_log_prior"], np.log([0.5, 0.5]), rtol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nb.check_class_counts(np.array([3, 4]))                   # no warning when all present
