"""Naive Bayes inputs and the cached model, checked (issue #32, poor cases).

A bare str was fitted one character per document, an int among the texts failed in Arrow, NBSVM string labels
failed in ``int()`` and float labels were truncated; a damaged model.npz raised ``BadZipFile`` without its path,
an edited one was used, and the IMDB task reused its cached model after the training data changed.
"""
import gzip
import os

import numpy as np
import pytest

from jaxml import naive_bayes as nb
from jaxml.cli.common import load_config
from jaxml.tasks.imdb_nb import experiment

TEXTS = ["a good film", "a bad film", "good acting and a good plot", "bad plot, bad acting", "good", "bad bad"]
LABELS = [1, 0, 1, 0, 1, 0]
FITS = {"nb": lambda t, y, **kw: nb.fit_text_classifier(t, y, num_classes=2, stop_words=False, progress=False, **kw),
        "nbsvm": lambda t, y, **kw: nb.fit_text_nbsvm(t, y, num_classes=2, progress=False, **kw)}
WHO = {"nb": "fit_text_classifier", "nbsvm": "fit_text_nbsvm"}


@pytest.mark.parametrize("kind", FITS)
def test_a_bare_str_is_refused(kind):
    with pytest.raises(ValueError, match=rf"{WHO[kind]}: texts is a single str; pass a sequence of documents"):
        FITS[kind]("a good film", [1] * 11)


@pytest.mark.parametrize("kind", FITS)
def test_a_non_str_among_the_texts_is_named_by_index(kind):
    with pytest.raises(ValueError, match=rf"{WHO[kind]}: texts\[2\] is int 7, not a str"):
        FITS[kind](TEXTS[:2] + [7] + TEXTS[3:], LABELS)


@pytest.mark.parametrize("kind", FITS)
def test_string_labels_map_through_class_names_or_are_refused(kind):
    names = ("neg", "pos")
    by_name = FITS[kind](TEXTS, [names[v] for v in LABELS], class_names=names)
    by_index = FITS[kind](TEXTS, LABELS, class_names=names)
    np.testing.assert_array_equal(by_name.params["weight"], by_index.params["weight"])
    with pytest.raises(ValueError, match=rf"{WHO[kind]}: labels are strings \(text 0: 'pos'\); pass class_names"):
        FITS[kind](TEXTS, [names[v] for v in LABELS])
    with pytest.raises(ValueError, match=r"labels\[3\] = 'neutral' is not one of class_names \('neg', 'pos'\)"):
        FITS[kind](TEXTS, ["pos", "neg", "pos", "neutral", "pos", "neg"], class_names=names)


@pytest.mark.parametrize("kind", FITS)
def test_float_labels_are_whole_or_refused(kind):
    whole = FITS[kind](TEXTS, np.asarray(LABELS, np.float64))
    np.testing.assert_array_equal(whole.params["weight"], FITS[kind](TEXTS, LABELS).params["weight"])
    with pytest.raises(ValueError, match=rf"{WHO[kind]}: labels has 1 fractional values .*first at index 1: 0.5"):
        FITS[kind](TEXTS, [1, 0.5, 1, 0, 1, 0])


def test_predict_refuses_a_bare_str():
    model = FITS["nb"](TEXTS, LABELS)
    with pytest.raises(ValueError, match="TextNBModel: texts is a single str"):
        model.predict("good")
    assert model.predict(["good film", "bad plot"]).tolist() == [1, 0]


def test_a_damaged_or_edited_model_npz_is_named(tmp_path):
    model = FITS["nb"](TEXTS, LABELS)
    path = tmp_path / "model.npz"
    model.save(path)
    again = nb.TextNBModel.load(path)
    np.testing.assert_array_equal(again.params["weight"], model.params["weight"])
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["bias"] = arrays["bias"] + 1.0                              # edited: still a valid .npz
    np.savez(tmp_path / "edited.npz", **arrays)
    with pytest.raises(ValueError, match=r"edited.npz' does not match its digest .*fit and save it again"):
        nb.TextNBModel.load(tmp_path / "edited.npz")
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cannot read the naive Bayes model '.*cut.npz' \(BadZipFile"):
        nb.TextNBModel.load(tmp_path / "cut.npz")


def test_the_cached_model_is_not_reused_after_the_data_changes(tmp_path, capsys):
    c = load_config("configs/imdb_nb.py:quick")
    c.data.data_dir = str(tmp_path / "data")
    os.makedirs(tmp_path / "data" / "imdb")
    csv = tmp_path / "data" / "imdb" / "aclImdb_train.csv.gz"
    csv.write_bytes(gzip.compress(b"path,id,rating,label,sentiment,review\n"))
    workdir = tmp_path / "run"
    workdir.mkdir()
    model_path, config_path = str(workdir / "model.npz"), str(workdir / "model_config.json")
    FITS["nb"](TEXTS, LABELS).save(model_path)
    with open(config_path, "w") as f:
        f.write(c.to_json(sort_keys=True))
    with open(config_path + ".data_sha256", "w") as f:
        f.write(experiment.data_sha256(c))
    assert experiment._cached_model(c, model_path, config_path) is not None
    csv.write_bytes(gzip.compress(b"path,id,rating,label,sentiment,review\nx,1,9,pos,1,great\n"))
    assert experiment._cached_model(c, model_path, config_path) is None
    assert "the training data changed since the cached model was fitted" in capsys.readouterr().err
    with open(model_path, "wb") as f:
        f.write(b"garbage")
    with open(config_path + ".data_sha256", "w") as f:
        f.write(experiment.data_sha256(c))
    assert experiment._cached_model(c, model_path, config_path) is None
    assert "cannot read the naive Bayes model" in capsys.readouterr().err
