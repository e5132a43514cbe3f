"""IMDB as token sequences (jaxml/data/imdb_tokens.py, dataset ``imdb_tokens``) on small CSV files written here:
ids == the tokenizer's words through the training vocabulary, unknown words, truncation, the cache, length
buckets; and the ``:quick`` configs of the IMDB GRU and Transformer train through the loop."""
import importlib.util
import pathlib

import numpy as np
import pytest

from jaxml import data
from jaxml.data import imdb_tokens
from jaxml.naive_bayes import text
from jaxml.train import train_and_evaluate
from tests.test_imdb import _write_csv

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORDS = "good bad great awful film plot acting the a not boring superb".split()


def _rows(split, n, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = i % 2
        review = " ".join(rng.choice(WORDS, rng.integers(3, 40))) + (" superb great" if label else " awful boring")
        rows.append([f"{split}/{'pos' if label else 'neg'}/{i}_5.txt", str(i), "7" if label else "2",
                     "pos" if label else "neg", str(label), review + ("<br />Zyzzyva!" if i == 3 else "")])
    return rows


@pytest.fixture()
def csv_root(tmp_path):
    _write_csv(tmp_path, _rows("train", 80, 0), "train")
    _write_csv(tmp_path, _rows("test", 40, 1), "test")
    return tmp_path


def test_ids_are_the_tokenizers_words_through_the_training_vocabulary(csv_root, tmp_path):
    out = imdb_tokens.load(data_dir=csv_root, vocab_size=10, min_count=1, max_length=30, validation_fraction=0.25,
                           cache_dir=str(tmp_path / "cache"))
    words = list(out["words"])
    assert len(words) == 8 and "zyzzyva" not in words                  # vocab_size - 2 most frequent words
    assert set(out) == {"train", "validation", "test", "words"} and len(out["validation"]["y"]) == 20
    test_rows = _rows("test", 40, 1)
    for i in (0, 3, 7):
        tokens = text.tokenize([test_rows[i][5]], stop_words=False).document(0)
        want = [2 + words.index(w) if w in words else imdb_tokens.UNK for w in tokens][:30]
        x, n = out["test"]["x"][i], out["test"]["lengths"][i]
        assert n == len(want) and list(x[:n]) == want and not x[n:].any()
    assert out["test"]["lengths"].max() == 30                           # long reviews are truncated
    np.testing.assert_array_equal(out["test"]["y"], [r[4] == "1" for r in test_rows])
    # The cache key names the CSV files (path, size, mtime): with them gone nothing stale is served.
    for f in (csv_root / "imdb").iterdir():
        f.rename(f.with_suffix(".moved"))
    with pytest.raises(FileNotFoundError):
        imdb_tokens.load(data_dir=csv_root, vocab_size=10, cache_dir=str(tmp_path / "cache"))


def test_cache_is_reused(csv_root, tmp_path):
    kw = {"data_dir": csv_root, "vocab_size": 10, "min_count": 1, "max_length": 30, "cache_dir": str(tmp_path / "c")}
    first = imdb_tokens.load(**kw)
    files = list((tmp_path / "c").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"
    mtime = files[0].stat().st_mtime_ns
    second = imdb_tokens.load(**kw)
    assert files[0].stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(second["train"]["x"], first["train"]["x"])
    with pytest.raises(ValueError, match="config.data.vocab_size must be >= 3"):
        imdb_tokens.vocabulary(["a b"], 2, 1)


def test_bucket_source_batches():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 41, 100).astype(np.int32)
    x = np.where(np.arange(40)[None] < lengths[:, None], 5, 0).astype(np.int32)
    src = imdb_tokens.BucketSource({"x": x, "lengths": lengths, "y": np.arange(100)}, 8, seed=3, buckets=(8, 16),
                                   pool=4)
    assert src.buckets == (8, 16, 40) and src.steps_per_epoch == 12
    seen = []
    for step in range(12):
        b = src.batch(step)
        assert b["x"].shape[1] == next(w for w in src.buckets if w >= b["lengths"].max())
        np.testing.assert_array_equal(b["x"], x[b["y"], :b["x"].shape[1]])
        seen.extend(b["y"])
        halves = [src.batch(step, shard=(i, 2)) for i in range(2)]
        np.testing.assert_array_equal(np.concatenate([h["x"] for h in halves]), b["x"])
    assert len(set(seen)) == 96                                          # an epoch: each example at most once
    assert {src.batch(s)["x"].shape[1] for s in range(12)} != {40}       # pools of similar lengths: narrower batches
    fresh = imdb_tokens.BucketSource(src.arrays, 8, seed=3, buckets=(8, 16), pool=4)
    np.testing.assert_array_equal(fresh.batch(17)["y"], src.batch(17)["y"])  # a function of (seed, step)


def _config(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "configs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config("quick")


@pytest.mark.parametrize("name", ["imdb_gru", "imdb_transformer"])
def test_quick_config_trains(csv_root, tmp_path, name):
    c = _config(name)
    c.data.data_dir = str(csv_root)
    c.data.cache_dir = str(tmp_path / "cache")
    c.train.progress_bar = False
    splits = data.build(c)
    assert splits.input_shape == (64,) and set(splits.eval) == {"validation", "test"}
    final = train_and_evaluate(c, str(tmp_path / "run")).final
    assert 0.0 <= final["test"]["accuracy"] <= 1.0 and np.isfinite(final["test"]["loss"])
