"""Naive Bayes inputs (``jaxml.naive_bayes``): what scikit-learn rejects is rejected with the function, argument
and first bad index; checks leave a caller's jit and valid results alone."""
import jax
import numpy as np
import pytest
from sklearn.naive_bayes import GaussianNB, MultinomialNB

from jaxml import naive_bayes as nb


def _counts(seed=0, n=60, v=8, c=3):
    rng = np.random.default_rng(seed)
    return rng.poisson(1.0, (n, v)), rng.integers(0, c, n)


def _with(x, index, value):
    x = np.array(x, dtype=np.float64)
    x[index] = value
    return x


@pytest.mark.parametrize("make,match", [
    (lambda x, y: nb.count_matrix(_with(x, (7, 2), -1), y, num_classes=3),
     r"count_matrix: x has 1 negative values \(first at row 7, column 2: -1.0\)"),
    (lambda x, y: nb.count_matrix(_with(x, (4, 0), 2.5), y, num_classes=3),
     r"count_matrix: x has 1 fractional values \(counts must be whole numbers\) \(first at row 4, column 0: 2.5\)"),
    (lambda x, y: nb.count_matrix(_with(x, (1, 1), np.nan), y, num_classes=3),
     r"count_matrix: x has 1 NaN or inf values \(first at row 1, column 1"),
    (lambda x, y: nb.count_matrix(x, np.where(np.arange(len(y)) == 9, 3, y), num_classes=3),
     r"count_matrix: y has 1 values outside \[0, 3\) \(first at index 9: 3\)"),
    (lambda x, y: nb.count_matrix(x, np.where(np.arange(len(y)) == 2, 0.5, y), num_classes=3),
     r"count_matrix: y has 1 fractional values"),
    (lambda x, y: nb.count_matrix(x, y[:-1], num_classes=3), r"count_matrix: y has 59 labels for 60 rows"),
    (lambda x, y: nb.count_matrix(x[0], y, num_classes=3), r"count_matrix: x must be a 2-D array"),
    (lambda x, y: nb.fit_params({"feature_count": -np.ones((3, 8)), "class_count": np.ones(3)}),
     r"fit_params: counts\['feature_count'\] has 24 negative values"),
    (lambda x, y: nb.fit_params({"feature_count": np.ones((3, 8)), "class_count": np.ones(2)}),
     r"fit_params: counts\['class_count'\] has 2 classes but counts\['feature_count'\] has 3 rows"),
    (lambda x, y: nb.fit_params(nb.count_matrix(x, y, num_classes=3), class_prior=[0.5, 0.3, 0.3]),
     r"fit_params: class_prior must sum to 1"),
    (lambda x, y: nb.fit_params(nb.count_matrix(x, y, num_classes=3), class_prior=[1.2, -0.1, -0.1]),
     r"fit_params: class_prior must be finite and >= 0"),
    (lambda x, y: nb.fit_params(nb.count_matrix(x, y, num_classes=3), alpha=np.float64(-1.0)),
     r"fit_params: alpha must be > 0"),
])
def test_naive_bayes_fit_rejects_what_sklearn_rejects(make, match):
    x, y = _counts()
    with pytest.raises(ValueError, match=match):
        make(x, y)


def test_naive_bayes_rejects_negative_counts_as_sklearn_does_and_presence_takes_fractions():
    x, y = _counts()
    bad = _with(x, (0, 0), -3)
    with pytest.raises(ValueError, match="Negative values"):
        MultinomialNB().fit(bad, y)
    with pytest.raises(ValueError, match="negative values"):
        nb.count_matrix(bad, y, num_classes=3)
    # binary=True counts presence: fractional values are fine there (as BernoulliNB's binarize), negatives not.
    fractional = x * 0.5
    presence = nb.count_matrix(fractional, y, num_classes=3, binary=True)
    np.testing.assert_array_equal(presence["feature_count"],
                                  np.stack([(x[y == c] > 0).sum(0) for c in range(3)]))


@pytest.mark.parametrize("make,match", [
    (lambda p, x: nb.predict(p, x[:, :5]), r"predict: x has 5 columns but the model has 8 features"),
    (lambda p, x: nb.predict_log_proba(p, _with(x, (3, 3), np.inf)), r"predict_log_proba: x has 1 NaN or inf"),
    (lambda p, x: nb.joint_log_likelihood(p, _with(x, (2, 1), -1)), r"joint_log_likelihood: x has 1 negative"),
    (lambda p, x: nb.token_joint_log_likelihood(p, np.array([0, 8]), np.array([0, 0]), num_docs=1),
     r"token_joint_log_likelihood: token_ids has 1 values outside \[0, 8\) \(first at index 1: 8\)"),
    (lambda p, x: nb.token_joint_log_likelihood(p, np.array([0, 1]), np.array([0, 2]), num_docs=2),
     r"token_joint_log_likelihood: doc_ids has 1 values outside \[0, 2\)"),
])
def test_naive_bayes_predict_checks_its_input(make, match):
    x, y = _counts()
    params = nb.fit_params(nb.count_matrix(x, y, num_classes=3))
    with pytest.raises(ValueError, match=match):
        make(params, x)


@pytest.mark.parametrize("make,match", [
    (lambda ids, tl, dl: nb.count_tokens(np.append(ids, 50), np.append(tl, 0), dl, num_classes=3, vocab_size=50),
     r"count_tokens: token_ids has 1 values outside \[0, 50\)"),
    (lambda ids, tl, dl: nb.count_tokens(ids, np.where(np.arange(len(tl)) == 6, 3, tl), dl, num_classes=3,
                                         vocab_size=50), r"count_tokens: token_labels has 1 values outside \[-1, 3\)"),
    (lambda ids, tl, dl: nb.count_tokens(ids, tl[:-1], dl, num_classes=3, vocab_size=50),
     r"count_tokens: token_ids has \d+ entries but token_labels has \d+"),
    (lambda ids, tl, dl: nb.count_tokens_sharded(ids, tl, np.append(dl, -2), num_classes=3, vocab_size=50),
     r"count_tokens_sharded: doc_labels has 1 values outside \[-1, 3\)"),
    (lambda ids, tl, dl: nb.partial_fit(nb.count_tokens(ids, tl, dl, num_classes=3, vocab_size=50), ids, tl, dl,
                                        num_classes=3, vocab_size=60),
     r"partial_fit: counts\['feature_count'\] has shape \(3, 50\), expected"),
    (lambda ids, tl, dl: nb.count_tokens(ids, tl, dl, num_classes=0, vocab_size=50),
     r"count_tokens: num_classes must be an integer >= 1"),
])
def test_naive_bayes_token_counting_checks_ids_and_labels(make, match):
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 10, 40)
    ids = rng.integers(0, 50, lengths.sum())
    dl = rng.integers(0, 3, 40)
    tl = dl[np.repeat(np.arange(40), lengths)]
    with pytest.raises(ValueError, match=match):
        make(ids, tl, dl)


def test_gaussian_nb_nan_feature_and_bad_labels():
    """A NaN feature (which would make every class mean and variance NaN) and out-of-range labels are refused,
    naming the row, column or index, as scikit-learn refuses them."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 3))
    y = np.repeat([0, 1], 25)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        GaussianNB().fit(_with(x, (10, 2), np.nan), y)
    with pytest.raises(ValueError, match=r"gaussian_stats: x has 1 NaN or inf values \(first at row 10, column 2"):
        nb.gaussian_stats(_with(x, (10, 2), np.nan), y, num_classes=2)
    with pytest.raises(ValueError, match=r"gaussian_stats: y has 1 values outside \[0, 2\) \(first at index 3: 2\)"):
        nb.gaussian_stats(x, np.where(np.arange(50) == 3, 2, y), num_classes=2)
    params = nb.gaussian_params(nb.gaussian_stats(x, y, num_classes=2))
    with pytest.raises(ValueError, match=r"gaussian_joint_log_likelihood: x has 1 NaN or inf values"):
        nb.gaussian_joint_log_likelihood(params, _with(x, (0, 0), np.nan))
    with pytest.raises(ValueError, match=r"gaussian_joint_log_likelihood: x has 2 columns but the model has 3"):
        nb.gaussian_joint_log_likelihood(params, x[:, :2])
    with pytest.raises(ValueError, match=r"gaussian_params: the variance of feature 0 in class 0 is 0"):
        nb.gaussian_params(nb.gaussian_stats(np.zeros((6, 2)), np.repeat([0, 1], 3), num_classes=2))
    with pytest.raises(ValueError, match=r"gaussian_params: var_smoothing must be finite and >= 0"):
        nb.gaussian_params(nb.gaussian_stats(x, y, num_classes=2), var_smoothing=-1.0)


def test_text_classifier_rejects_fractional_labels_and_class_names_mismatch():
    texts = ["good fun film", "bad dull plot", "great acting", "boring waste"]
    with pytest.raises(ValueError, match=r"fit_text_classifier: labels has 1 fractional values .* 1.5"):
        nb.fit_text_classifier(texts, [1, 0, 1.5, 0], num_classes=2, progress=False)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\).*first outside: text 3: -1"):
        nb.fit_text_classifier(texts, [1, 0, 1, -1], num_classes=2, progress=False)
    with pytest.raises(ValueError, match="fit_text_classifier: class_names has 3 names for num_classes=2"):
        nb.fit_text_classifier(texts, [1, 0, 1, 0], num_classes=2, class_names=("a", "b", "c"), progress=False)


def test_naive_bayes_checks_leave_jit_and_valid_results_alone():
    """Inside a caller's jit nothing can be checked on values: the kernels still run (same answer)."""
    x, y = _counts(seed=5)
    params = nb.fit_params(nb.count_matrix(x, y, num_classes=3))
    traced = jax.jit(lambda p, a: nb.joint_log_likelihood(p, a))(params, x.astype(np.float32))
    ref = MultinomialNB().fit(x, y)
    np.testing.assert_allclose(np.asarray(traced), ref._joint_log_likelihood(x), rtol=1e-5)
