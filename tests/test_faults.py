"""Fault injection: the bad inputs a new user would try, each failing loudly or handled correctly.

Every test here failed (or passed silently with a wrong answer) before its fix, and checks values against an
independent reference (scikit-learn, NumPy float64) where the input is valid. Sections, one per area:

- K-means inputs and precision (``jaxml.kmeans``)
- naive Bayes inputs (``jaxml.naive_bayes``)
- IMDB CSV loader (``jaxml.data.imdb``)
- K-means launcher (``launch/kmeans.py``, ``jaxml.cli.kmeans``)
- the training loop's workdir: checkpoints that are never bad (no non-finite state saved; a damaged step named,
  moved aside, the run falling back to the one before), the stored config, the lock, a torn metrics line

Add new areas as new sections below.
"""
import csv
import gzip
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.naive_bayes import GaussianNB, MultinomialNB

from jaxml import naive_bayes as nb
from jaxml.data import imdb
from jaxml.kmeans import init_centers, kmeans, kmeans_auto_k
from jaxml.kmeans import palette as pal
from jaxml.tasks import toy  # noqa: F401  (registers the blobs dataset)
from jaxml.train import config as config_lib
from jaxml.train import train_and_evaluate
from jaxml.train.workdir import WorkdirBusyError, WorkdirLock

ROOT = pathlib.Path(__file__).resolve().parents[1]


# =============================================================================================
# K-means inputs and precision


def _blobs(n=1500, d=2, k=4, std=2.0, box=(-20, 20), seed=0):
    return make_blobs(n, d, centers=k, cluster_std=std, center_box=box, random_state=seed)[0]


def _sklearn(x, init, w=None):
    return KMeans(len(init), init=init, n_init=1, max_iter=300, tol=1e-4, algorithm="lloyd").fit(x, sample_weight=w)


def _first_rows(x, k, seed=0):
    return x[np.random.default_rng(seed).choice(len(x), k, replace=False)]


def test_kmeans_float64_far_from_origin_gives_sklearns_inertia():
    """A 1e8 offset in float64 rounded to float32's spacing (8) before centring: a wrong inertia, of rounded data."""
    x = _blobs() + 1e8
    init = _first_rows(x, 4)
    ours, ref = kmeans(x, 4, init=init), _sklearn(x, init)
    assert float(ours.inertia) == pytest.approx(ref.inertia_, rel=1e-6)
    np.testing.assert_array_equal(np.asarray(ours.labels), ref.labels_)
    centers = np.asarray(ours.centers)
    assert centers.dtype == np.float64
    np.testing.assert_allclose(centers, ref.cluster_centers_, rtol=0, atol=1e-6)  # float64 means of the members
    # The reported inertia is that of the user's points and the returned centres (NumPy float64).
    labels = np.asarray(ours.labels)
    true = ((x - centers[labels]) ** 2).sum()
    assert float(ours.inertia) == pytest.approx(true, rel=1e-12)
    total = ((x - x.mean(0)) ** 2).sum()
    assert float(ours.total_ss) == pytest.approx(total, rel=1e-9)
    assert float(ours.between_ss) == pytest.approx(total - ref.inertia_, rel=1e-6)
    np.testing.assert_array_equal(np.asarray(ours.sizes), np.bincount(ref.labels_, minlength=4))


def test_kmeans_float64_centres_are_polished_only_when_they_are_their_members_mean():
    """One Lloyd step does not converge: the centres are that step's means (scikit-learn's), not the means of the
    final labels, which the float64 polish must leave alone."""
    x = _blobs(std=4.0, seed=4) + 1e8
    init = _first_rows(x, 4, seed=2)
    ours = kmeans(x, 4, init=init, max_iter=1)
    ref = KMeans(4, init=init, n_init=1, max_iter=1, algorithm="lloyd").fit(x)
    labels = np.asarray(ours.labels)
    np.testing.assert_array_equal(labels, ref.labels_)
    means = np.stack([x[labels == j].mean(0) for j in range(4)])
    assert np.abs(means - ref.cluster_centers_).max() > 1e-2          # the final labels' means are elsewhere
    np.testing.assert_allclose(np.asarray(ours.centers), ref.cluster_centers_, rtol=0, atol=1e-5)
    assert float(ours.inertia) == pytest.approx(ref.inertia_, rel=1e-6)


def test_kmeans_unix_timestamps_as_int64_and_weights():
    """Unix timestamps (~1.7e9 s, int64): float32 rounds them to a 128 s grid."""
    rng = np.random.default_rng(1)
    hours = rng.choice([3, 9, 14, 20], 800)
    t = (1_700_000_000 + hours * 3600 + rng.normal(0, 600, 800)).astype(np.int64)[:, None]
    w = rng.uniform(0.5, 2.0, 800)
    init = t[[0, 1, 2, 5]].astype(np.float64)
    ours = kmeans(t, 4, init=init, sample_weight=w, tol=0.0)
    ref = KMeans(4, init=init, n_init=1, tol=0.0, algorithm="lloyd").fit(t.astype(np.float64), sample_weight=w)
    assert float(ours.inertia) == pytest.approx(ref.inertia_, rel=1e-6)
    np.testing.assert_array_equal(np.asarray(ours.labels), ref.labels_)
    np.testing.assert_allclose(np.asarray(ours.centers), ref.cluster_centers_, rtol=0, atol=0.05)


@pytest.mark.slow
def test_kmeans_auto_k_and_init_centers_on_float64_offsets():
    x = _blobs(n=600, k=3, std=0.5) + 1e9
    found = kmeans_auto_k(x, k_max=6, n_init=2)
    assert found.k == 3
    assert float(found.result.inertia) == pytest.approx(
        ((x - np.asarray(found.result.centers)[np.asarray(found.result.labels)]) ** 2).sum(), rel=1e-12)
    starts = init_centers(x, 3, n_init=2, seed=3)
    assert starts.dtype == np.float64
    for c in starts:  # the user's rows themselves, not float32 roundings of them
        assert all((x == ci).all(1).any() for ci in c)


@pytest.mark.parametrize("scale,dtype", [(1e18, np.float64), (1e18, np.float32), (1e36, np.float64),
                                         (1e-20, np.float64), (1e-20, np.float32)])
def test_kmeans_values_beyond_float32_squares_are_rescaled(scale, dtype):
    """~1e18 values: squared distances overflow float32 (inf inertia, wrong clusters); 1e36 is not even a finite
    float32 square; 1e-20: squares underflow to 0. The data are rescaled by a power of two, so the answer is
    scikit-learn's (float64) on the same points."""
    x = (_blobs(n=3000, std=3.0, seed=2) * scale).astype(dtype)
    init = _first_rows(x, 4, seed=1)
    ours = kmeans(x, 4, init=init)
    ref = _sklearn(x.astype(np.float64), init.astype(np.float64))
    np.testing.assert_array_equal(np.asarray(ours.labels), ref.labels_)
    assert np.isfinite(float(ours.inertia))
    assert float(ours.inertia) == pytest.approx(ref.inertia_, rel=1e-5)
    np.testing.assert_allclose(np.asarray(ours.centers, np.float64), ref.cluster_centers_, rtol=1e-5,
                               atol=1e-5 * scale)


def test_kmeans_rescaled_float32_matches_the_unscaled_run_bit_for_bit():
    """A power-of-two rescale is exact: the labels and iteration count of x * 2^70 equal those of x."""
    x = _blobs(n=2000, std=3.0, seed=3).astype(np.float32)
    init = _first_rows(x, 4)
    base = kmeans(x, 4, init=init)
    big = kmeans(x * np.float32(2.0 ** 70), 4, init=init * np.float32(2.0 ** 70))
    np.testing.assert_array_equal(np.asarray(big.labels), np.asarray(base.labels))
    assert int(big.n_iter) == int(base.n_iter)
    np.testing.assert_allclose(np.asarray(big.centers) / 2.0 ** 70, np.asarray(base.centers), rtol=0, atol=1e-5)
    labels = np.asarray(base.labels)                       # the rescaled run's centres: the float64 member means
    means = np.stack([x[labels == j].astype(np.float64).mean(0) for j in range(4)])
    np.testing.assert_allclose(np.asarray(big.centers) / 2.0 ** 70, means, rtol=1e-12)


@pytest.mark.parametrize("call,match", [
    (lambda x: kmeans(np.where(np.arange(len(x))[:, None] == 17, np.nan, x), 3),
     r"kmeans: x has 1 rows with NaN or inf \(first: row 17, column 0: nan; 2 non-finite values in all\)"),
    (lambda x: kmeans_auto_k(np.where(np.arange(len(x))[:, None] == 4, np.inf, x), 3),
     r"kmeans_auto_k: x has 1 rows with NaN or inf \(first: row 4"),
    (lambda x: init_centers(np.where(np.arange(len(x))[:, None] == 2, -np.inf, x), 3),
     r"init_centers: x has 1 rows with NaN or inf \(first: row 2"),
    (lambda x: kmeans(x, 3, sample_weight=np.where(np.arange(len(x)) == 5, np.nan, 1.0)),
     r"kmeans: sample_weight has NaN or inf \(first: index 5"),
    (lambda x: kmeans(x, 3, sample_weight=np.full(len(x), 1e38)), "kmeans: sample_weight sums to"),
    (lambda x: kmeans(x.astype(complex), 3), "kmeans: x must be real"),
    (lambda x: kmeans(x, 3, init=np.full((3, 2), np.nan)), "kmeans: init centres contain NaN or inf"),
    (lambda x: kmeans_auto_k(x, 0), "kmeans_auto_k: k_max must be an integer >= 1"),
    (lambda x: kmeans(x, 3, tol=float("nan")), "kmeans: tol must be finite"),
])
def test_kmeans_bad_input_names_the_function_and_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call(_blobs(n=300))


def test_palette_skips_transparent_pixels_and_checks_values():
    """RGBA: fully transparent pixels (RGB often black) were counted as a palette colour."""
    rgba = np.zeros((40, 50, 4), np.uint8)
    rgba[:10] = (200, 30, 30, 255)
    rgba[10:20] = (20, 120, 220, 128)  # half transparent: still a visible colour, counted in full
    rgba[20:] = (0, 0, 0, 0)           # transparent: skipped
    p = pal.palette(rgba, k=2, n_init=1)
    assert sorted(p.lines()) == ["#1478dc  0.5000", "#c81e1e  0.5000"]   # equal shares: either order
    assert int(np.asarray(p.fit.sizes).sum()) == 1000
    with pytest.raises(ValueError, match="every pixel is fully transparent"):
        pal.palette(np.zeros((4, 4, 4), np.uint8), k=1)
    with pytest.raises(ValueError, match=r"palette: pixels has 1 pixels with values outside \[0, 255\] or NaN "
                                         r"\(first: pixel 3: \[300.0, 0.0, 0.0\]\)"):
        pal.palette(np.where(np.arange(12)[:, None] == 3, [300.0, 0, 0], [10.0, 20, 30]), k=1)


def test_load_pixels_keeps_alpha_of_transparent_images(tmp_path):
    from PIL import Image
    img = np.zeros((10, 10, 4), np.uint8)
    img[:5] = (10, 200, 30, 255)
    Image.fromarray(img, "RGBA").save(tmp_path / "t.png")
    px = pal.load_pixels(str(tmp_path / "t.png"))
    assert px.shape == (10, 10, 4)
    np.testing.assert_array_equal(px[..., 3].sum(), 50 * 255)
    Image.fromarray(img[..., :3]).save(tmp_path / "o.png")
    assert pal.load_pixels(str(tmp_path / "o.png")).shape == (10, 10, 3)


# =============================================================================================
# Naive Bayes inputs


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


def test_naive_bayes_negative_counts_were_all_nan_and_sklearn_rejects_them_too():
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
    """One NaN made every class mean / variance NaN, so every prediction; out-of-range labels were dropped."""
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


# =============================================================================================
# IMDB CSV loader


def _write_imdb(root, body: bytes):
    folder = pathlib.Path(root) / "imdb"
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / "aclImdb_train.csv.gz", "wb") as f:
        f.write(b"path,id,rating,label,sentiment,review\n" + body)
    return root


def test_imdb_non_utf8_byte_names_file_and_line(tmp_path):
    body = (b"train/pos/0_9.txt,0,9,pos,1,Great\n"
            b"train/neg/0_2.txt,0,2,neg,0,\"Dull,\n and caf\xe9 bad\"\n")   # Latin-1 e-acute inside a quoted review
    root = _write_imdb(tmp_path, body)
    with pytest.raises(ValueError, match=r"aclImdb_train\.csv\.gz: line 4: not valid UTF-8 \(byte 0xe9"):
        imdb.load_imdb_csv("train", root)


def test_imdb_ten_megabyte_review_loads_and_field_limit_is_restored(tmp_path):
    review = "a wonderful film " * 620_000                               # ~10.5 MB, over csv's 128 KiB limit
    body = (b"train/pos/0_9.txt,0,9,pos,1,Great\n"
            + f'train/pos/1_8.txt,1,8,pos,1,"{review}"\n'.encode()
            + b"train/neg/0_2.txt,0,2,neg,0,Dull\n")
    before = csv.field_size_limit()
    split = imdb.load_imdb_csv("train", _write_imdb(tmp_path, body))
    assert csv.field_size_limit() == before
    assert split.texts.to_pylist() == ["Great", review, "Dull"]
    np.testing.assert_array_equal(split.labels, [1, 1, 0])
    # A bad row after the long one is still found by the slow path, naming its line.
    bad = body + b"train/neg/1_1.txt,1,1,neg,1,Odd\n"
    with pytest.raises(ValueError, match=r"line 5 \(data row 4\): label 'neg' disagrees with sentiment 1"):
        imdb.load_imdb_csv("train", _write_imdb(tmp_path, bad))
    assert csv.field_size_limit() == before


# =============================================================================================
# K-means launcher


@pytest.fixture
def cli():
    from jaxml.cli import kmeans as cli_kmeans
    return cli_kmeans


def test_launcher_csv_header_is_explicit(cli, tmp_path):
    """A ragged CSV's first row was taken for a header and dropped; now headers need --header."""
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("1,2,3\n4,5\n6,7\n")
    with pytest.raises(ValueError, match=r"ragged\.csv.*line 2 has 2 fields, the rows before it 3"):
        cli.load_matrix(str(ragged))
    named = tmp_path / "named.csv"
    named.write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(ValueError, match=r"named\.csv.*line 1 is not numeric \('a,b'\); if it is a header, "
                                         r"pass --header"):
        cli.load_matrix(str(named))
    np.testing.assert_array_equal(cli.load_matrix(str(named), header=True), [[1, 2], [3, 4]])
    word = tmp_path / "word.csv"
    word.write_text("1,2\n3,x\n")
    with pytest.raises(ValueError, match=r"line 2, field 2: 'x' is not a number"):
        cli.load_matrix(str(word))


def test_launcher_output_paths_are_checked_up_front(cli, tmp_path):
    image = tmp_path / "photo.png"
    image.write_bytes(b"not really")
    with pytest.raises(ValueError, match=r"is the input file .*refusing to overwrite it with the swatch"):
        cli.image_output(str(image), str(image))
    with pytest.raises(ValueError, match=r"refusing to overwrite"):
        cli.image_output(str(image), str(tmp_path / "." / "photo.png"))
    with pytest.raises(ValueError, match=r"folder .*nowhere.* does not exist"):
        cli.image_output(str(image), str(tmp_path / "nowhere" / "s.png"))
    with pytest.raises(ValueError, match=r"unknown image extension"):
        cli.image_output(str(image), str(tmp_path / "s.xyz"))
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ValueError, match=r"is a directory"):
        cli.image_output(str(image), str(tmp_path / "folder.png"))
    assert cli.image_output(str(image), None) == str(tmp_path / "photo_palette.png")
    assert cli.data_output(str(tmp_path / "x.csv"), str(tmp_path / "fit")) == str(tmp_path / "fit.npz")
    data = tmp_path / "fit.npz"
    data.write_bytes(b"")
    with pytest.raises(ValueError, match="is the input file"):       # np.savez appends .npz: the real target
        cli.data_output(str(data), str(tmp_path / "fit"))
    if os.geteuid() != 0:                                             # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(ValueError, match="is not writable"):
                cli.image_output(str(image), str(locked / "s.png"))
        finally:
            locked.chmod(0o700)
    assert image.read_bytes() == b"not really"


def _launch(*args):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, str(ROOT / "launch" / "kmeans.py"), *args], capture_output=True,
                          text=True, env=env, timeout=300)


@pytest.mark.slow
def test_launcher_refuses_to_overwrite_the_image_and_skips_transparent_pixels(tmp_path):
    from PIL import Image
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[:20] = (200, 30, 30, 255)
    rgba[20:30] = (20, 120, 220, 255)   # the rest is transparent black: not a colour of the palette
    photo = tmp_path / "logo.png"
    Image.fromarray(rgba, "RGBA").save(photo)
    original = photo.read_bytes()
    r = _launch(f"--image={photo}", "--k=2", "--n_init=1", f"--out={photo}")
    assert r.returncode == 1
    assert "refusing to overwrite it with the swatch" in r.stderr.strip().splitlines()[-1]
    assert "iterations" not in r.stderr                              # failed before any clustering
    assert photo.read_bytes() == original
    r = _launch(f"--image={photo}", "--k=2", "--n_init=1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["#c81e1e  0.6667", "#1478dc  0.3333"]
    assert "(400 transparent, skipped)" in r.stderr
    assert photo.read_bytes() == original and (tmp_path / "logo_palette.png").is_file()


# =========================================================================== training loop: the workdir


def blobs_config(**train):
    c = config_lib.base_config()
    c.model.name, c.model.widths = "mlp", (8,)
    c.data.name, c.data.batch_size, c.data.eval_batch_size = "blobs", 32, 128
    c.data.train_size, c.data.test_size = 256, 128
    c.optimizer.name, c.optimizer.lr = "sgd", 0.1
    c.train.update(dict(num_steps=40, log_every=10, checkpoint_every=10, keep_checkpoints=3, progress_bar=False))
    c.train.update(train)
    return c


def records(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def final_sha(final):
    return final["test"]["params_sha256"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """sha of the 40-step run and of the same run extended to 60 steps without a fault."""
    root = tmp_path_factory.mktemp("clean")
    sha40 = final_sha(train_and_evaluate(blobs_config(), str(root / "a")))
    sha60 = final_sha(train_and_evaluate(blobs_config(num_steps=60), str(root / "b")))
    return sha40, sha60


def extend(workdir):
    return train_and_evaluate(blobs_config(num_steps=60), str(workdir), allow_config_change=("train.num_steps",))


# --------------------------------------------------------------------------- the NaN guard never saves NaN


@pytest.mark.slow
def test_an_update_that_makes_the_parameters_nan_is_never_saved(tmp_path, uninterrupted):
    """lr = inf: every loss is computed before its update and is finite at the step that breaks the parameters;
    the old guard checked only the loss and saved the broken step, so every resume failed again."""
    train_and_evaluate(blobs_config(num_steps=20), str(tmp_path))
    broken = blobs_config(num_steps=40, checkpoint_every=1)        # a checkpoint right after the breaking update
    broken.optimizer.lr = float("inf")
    with pytest.raises(FloatingPointError, match=r"step 21 is not finite .*last good checkpoint, step 20"):
        train_and_evaluate(broken, str(tmp_path), allow_config_change=("train.num_steps", "optimizer.lr"))
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["10", "20"]
    # Resumed with the good lr, the run continues from step 20 and ends as if nothing happened.
    final = train_and_evaluate(blobs_config(), str(tmp_path), allow_config_change=("optimizer.lr",))
    assert final_sha(final) == uninterrupted[0]


def test_with_no_checkpoint_yet_the_message_says_so(tmp_path):
    c = blobs_config(checkpoint_every=1)
    c.optimizer.lr = float("inf")
    with pytest.raises(FloatingPointError, match="step 1 is not finite.*No checkpoint has been written"):
        train_and_evaluate(c, str(tmp_path))
    assert not os.path.exists(tmp_path / "checkpoints" / "1")


# --------------------------------------------------------------------------- damaged checkpoints


def _data_files(step_dir):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(step_dir) for f in fs
                  if os.path.getsize(os.path.join(d, f)) > 64 and "/d/" in os.path.join(d, f))


def flip_bytes(step_dir, n, seed=0):
    rng = np.random.default_rng(seed)
    for path in _data_files(step_dir)[:1]:
        data = bytearray(open(path, "rb").read())
        for i in rng.choice(len(data), n, replace=False):
            data[i] ^= 1 << int(rng.integers(8))
        open(path, "wb").write(bytes(data))


def truncate(step_dir):
    path = _data_files(step_dir)[0]
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def remove_metadata(step_dir):
    os.remove(os.path.join(step_dir, "_CHECKPOINT_METADATA"))


def empty(step_dir):
    shutil.rmtree(step_dir)
    os.makedirs(step_dir)


@pytest.mark.parametrize("damage", [lambda d: flip_bytes(d, 1),
                                    pytest.param(lambda d: flip_bytes(d, 64, seed=1), marks=pytest.mark.slow),
                                    pytest.param(truncate, marks=pytest.mark.slow),
                                    pytest.param(empty, marks=pytest.mark.slow)],
                         ids=["one_bit", "64_bytes", "truncated", "emptied"])
@pytest.mark.slow
def test_a_damaged_newest_step_is_named_moved_aside_and_the_run_falls_back(tmp_path, uninterrupted, damage,
                                                                            capsys):
    train_and_evaluate(blobs_config(), str(tmp_path))
    damage(str(tmp_path / "checkpoints" / "40"))
    final = extend(tmp_path)                        # resumes from step 30, the newest good one
    assert final_sha(final) == uninterrupted[1]
    err = capsys.readouterr().err
    assert "checkpoint step 40" in err and "moved it aside" in err
    assert os.path.isdir(tmp_path / "checkpoints-damaged" / "40")          # never deleted


@pytest.mark.slow
def test_a_step_without_its_metadata_file_still_verifies_and_resumes(tmp_path, uninterrupted, capsys):
    """Orbax restores a step whose _CHECKPOINT_METADATA is gone; the digest proves its state intact."""
    train_and_evaluate(blobs_config(), str(tmp_path))
    remove_metadata(str(tmp_path / "checkpoints" / "40"))
    assert final_sha(extend(tmp_path)) == uninterrupted[1]
    assert "moved it aside" not in capsys.readouterr().err


@pytest.mark.slow
def test_every_step_damaged_starts_again_from_scratch_saying_so(tmp_path, uninterrupted, capsys):
    train_and_evaluate(blobs_config(), str(tmp_path))
    for step in os.listdir(tmp_path / "checkpoints"):
        empty(str(tmp_path / "checkpoints" / step))
    assert final_sha(extend(tmp_path)) == uninterrupted[1]
    assert capsys.readouterr().err.count("moved it aside") == 3


# --------------------------------------------------------------------------- the workdir: config, lock, log


def test_resuming_with_another_config_is_refused_field_by_field(tmp_path):
    train_and_evaluate(blobs_config(num_steps=20), str(tmp_path))
    changed = blobs_config(num_steps=20)
    changed.optimizer.lr, changed.model.widths = 0.5, (16,)
    with pytest.raises(config_lib.ConfigError, match=r"config.model.widths: \[8\] -> \[16\]\).*new --workdir"):
        train_and_evaluate(changed, str(tmp_path))
    changed.model.widths = (8,)
    with pytest.raises(config_lib.ConfigError, match=r"optimizer.lr: 0.1 -> 0.5.*allow_config_change=optimizer.lr"):
        train_and_evaluate(changed, str(tmp_path))
    with open(tmp_path / "config.json") as f:
        assert json.load(f)["optimizer"]["lr"] == 0.1                      # the stored config is untouched


@pytest.mark.slow
def test_a_finished_run_run_again_writes_nothing(tmp_path, capsys):
    first = train_and_evaluate(blobs_config(), str(tmp_path))
    before = open(tmp_path / "metrics.jsonl").read()
    again = train_and_evaluate(blobs_config(), str(tmp_path))
    assert again == first and open(tmp_path / "metrics.jsonl").read() == before
    assert "already finished at step 40" in capsys.readouterr().out


@pytest.mark.slow
def test_a_torn_last_line_is_dropped_on_resume(tmp_path, uninterrupted, capsys):
    train_and_evaluate(blobs_config(), str(tmp_path))
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 41, "split": "tra')                             # killed while writing
    final = extend(tmp_path)
    assert final_sha(final) == uninterrupted[1]
    assert all(r["step"] <= 60 for r in records(tmp_path))
    assert "dropping a torn last line" in capsys.readouterr().err


def test_a_second_run_in_a_busy_workdir_is_refused_and_a_stale_lock_taken_over(tmp_path, capsys):
    with WorkdirLock(str(tmp_path)):
        with pytest.raises(WorkdirBusyError, match=rf"in use by pid {os.getpid()}"):
            train_and_evaluate(blobs_config(num_steps=10), str(tmp_path))
    assert not (tmp_path / "LOCK").exists()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = child.pid                                   # a pid that no longer runs
    with open(tmp_path / "LOCK", "w") as f:
        json.dump({"pid": dead, "host": socket.gethostname(), "started": "earlier"}, f)
    train_and_evaluate(blobs_config(num_steps=10), str(tmp_path))
    assert f"stale lock {tmp_path}/LOCK of pid {dead}" in capsys.readouterr().err
    assert not (tmp_path / "LOCK").exists()
