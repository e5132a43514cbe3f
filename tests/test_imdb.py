"""IMDB data: CSV reader (values, malformed rows), TFDS source (mocked), the book's seed protocol on
the real reviews, and the launcher end to end."""
import csv
import gzip
import io
import json
import pathlib

import numpy as np
import pytest

from jaxml.data import imdb
from tests.nb_launcher import launch

ROOT = pathlib.Path(__file__).resolve().parents[1]
HEADER = ["path", "id", "rating", "label", "sentiment", "review"]
ROWS = [["train/pos/0_9.txt", "0", "9", "pos", "1", "Great film, <br />loved it"],
        ["train/pos/1_7.txt", "1", "7", "pos", "1", 'A "quoted", comma, review'],
        ["train/neg/0_2.txt", "0", "2", "neg", "0", "Dull."],
        ["train/neg/1_1.txt", "1", "1", "neg", "0", ""]]


def _write_csv(root, rows, split="train", header=HEADER, raw_lines=None):
    folder = pathlib.Path(root) / "imdb"
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    data = buf.getvalue() + "".join(raw_lines or [])
    with gzip.open(folder / f"aclImdb_{split}.csv.gz", "wt", encoding="utf-8", newline="") as f:
        f.write(data)
    return root


def test_csv_reader_values(tmp_path):
    split = imdb.load_imdb_csv("train", _write_csv(tmp_path, ROWS))
    assert split.texts.to_pylist() == [r[5] for r in ROWS]
    np.testing.assert_array_equal(split.labels, [1, 1, 0, 0])
    np.testing.assert_array_equal(split.ids, [0, 1, 0, 1])
    assert split.labels.dtype == np.int32


@pytest.mark.parametrize("bad_line,message", [
    ("train/neg/2_3.txt,2,3,neg\n", r"line 6 \(data row 5\): expected 6 fields"),
    ("train/neg/2_3.txt,two,3,neg,0,text\n", r"line 6 \(data row 5\): column 'id' must be an integer"),
    ("train/neg/2_3.txt,2,3,neg,1,text\n", r"line 6 \(data row 5\): label 'neg' disagrees with sentiment 1"),
    ("train/neg/2_3.txt,2,3,neg,7,text\n", r"line 6 \(data row 5\): column 'sentiment' must be 0 or 1"),
])
def test_malformed_row_names_file_and_line(tmp_path, bad_line, message):
    root = _write_csv(tmp_path, ROWS, raw_lines=[bad_line, "train/neg/3_1.txt,3,1,neg,0,fine\n"])
    with pytest.raises(ValueError, match=message) as err:
        imdb.load_imdb_csv("train", root)
    assert "aclImdb_train.csv.gz" in str(err.value)


def test_wrong_header_and_missing_files(tmp_path, monkeypatch):
    root = _write_csv(tmp_path, [r[:5] for r in ROWS], header=HEADER[:5])
    with pytest.raises(ValueError, match="aclImdb_train.csv.gz"):
        imdb.load_imdb_csv("train", root)
    with pytest.raises(FileNotFoundError, match=r"aclImdb_test.csv.gz not found: put aclImdb_test.csv.gz"):
        imdb.load_imdb_csv("test", root)
    monkeypatch.delenv("JAXML_DATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match=r"set \$JAXML_DATA_DIR"):
        imdb.load_imdb_csv("train")
    with pytest.raises(ValueError, match="IMDB split 'validation' unknown"):
        imdb.csv_path("validation", root)
    with pytest.raises(ValueError, match="IMDB source 'kaggle' unknown"):
        imdb.load_imdb("train", "kaggle", root)


def test_holdout_split_is_stratified_disjoint_and_seeded():
    labels = np.repeat([0, 1], [60, 40]).astype(np.int32)
    data = imdb.ImdbSplit(imdb.pa.array([str(i) for i in range(100)]), labels, np.arange(100))
    train, val = imdb.holdout_split(data, 0.2, seed=0)
    assert len(val) == 20 and len(train) == 80
    np.testing.assert_array_equal(np.bincount(val.labels), [12, 8])
    assert not set(train.ids) & set(val.ids)
    assert [int(t) for t in val.texts.to_pylist()] == list(val.ids)
    again, _ = imdb.holdout_split(data, 0.2, seed=0)
    other, _ = imdb.holdout_split(data, 0.2, seed=1)
    np.testing.assert_array_equal(again.ids, train.ids)
    assert not np.array_equal(other.ids, train.ids)


def test_tfds_source_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=7):
        split = imdb.load_imdb("train", source="tfds")
        expected = tfds.data_source("imdb_reviews", split="train")
        want = [expected[i] for i in range(len(expected))]
    assert len(split) == 7
    assert split.texts.to_pylist() == [w["text"].decode() if isinstance(w["text"], bytes) else w["text"]
                                       for w in want]
    np.testing.assert_array_equal(split.labels, [int(w["label"]) for w in want])
    assert set(split.labels) <= {0, 1}


# ------------------------------------------------------------------------------- real data


def test_real_csv_files(data_dir):
    train = imdb.load_imdb_csv("train", data_dir)
    assert len(train) == 25000
    np.testing.assert_array_equal(np.bincount(train.labels), [12500, 12500])
    assert train.texts[0].as_py().startswith("Bromwell High is a cartoon comedy")
    assert train.labels[0] == 1


def test_seed_protocol_reaches_the_books_accuracy(data_dir):
    """The from-scratch book: 80/20 of the 25k train reviews, unigrams, stop words dropped,
    multinomial with Laplace smoothing -> 0.8556. jaxml (word-count denominator): 0.8604."""
    from jaxml.naive_bayes import fit_text_classifier
    train, val = imdb.holdout_split(imdb.load_imdb_csv("train", data_dir), 0.2, seed=0)
    model = fit_text_classifier(train.texts, train.labels, num_classes=2, progress=False)
    accuracy = float(np.mean(model.predict(val.texts) == val.labels))
    assert accuracy >= 0.8556, accuracy
    np.testing.assert_allclose(accuracy, 0.8604, atol=1e-4)


@pytest.mark.slow
def test_launcher_quick_run_then_text_from_cache(data_dir, tmp_path):
    run = launch("--config=configs/imdb_nb.py:quick", f"--workdir={tmp_path}",
                  env_extra={"JAXML_DATA_DIR": data_dir})
    assert run.returncode == 0, run.stderr[-2000:]
    line = [ln for ln in run.stdout.splitlines() if ln.startswith("accuracy: ")]
    accuracy = float(line[0].split()[1])
    assert 0.78 < accuracy < 0.86
    assert "precision" in run.stdout and "recall" in run.stdout and "f1-score" in run.stdout
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["step"] == 0 and record["split"] == "test"
    assert abs(record["accuracy"] - accuracy) < 1e-4
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 1000
    assert (tmp_path / "model.npz").exists()
    # --text reuses the cached model: no data needed any more
    good = launch("--config=configs/imdb_nb.py:quick", f"--workdir={tmp_path}",
                   "--text=A wonderful, moving film with brilliant acting.",
                   env_extra={"JAXML_DATA_DIR": str(tmp_path / "nowhere")})
    assert good.returncode == 0, good.stderr[-2000:]
    assert good.stdout.strip().splitlines()[-1].startswith("prediction: pos")
    unknown = launch("--config=configs/imdb_nb.py:quick", f"--workdir={tmp_path}", "--text=qzxv wqpt")
    assert "all 2 words are unknown to the vocabulary" in unknown.stdout


@pytest.mark.slow
def test_launcher_rejects_bad_config_with_reason(tmp_path):
    run = launch("--config=configs/imdb_nb.py:quick", f"--workdir={tmp_path}", "--config.model.alpha=-1")
    assert run.returncode != 0
    assert run.stderr.strip().splitlines()[-1] == "error: ValueError: config.model.alpha must be > 0, got -1.0"
    run = launch("--config=configs/imdb_nb.py:quick", f"--workdir={tmp_path}", "--config.model.kind=poisson")
    assert run.returncode != 0 and "config.model.kind must be one of" in run.stderr.strip().splitlines()[-1]


def test_tfds_missing_dataset_is_a_clear_error(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(FileNotFoundError, match=r"(?s)TFDS imdb_reviews/train not found .* use source='csv'"):
        imdb.load_imdb_tfds("train", str(tmp_path))
