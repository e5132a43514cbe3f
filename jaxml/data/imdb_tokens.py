"""IMDB reviews as padded token-id sequences for sequence models, built once and cached.

Tokens are the naive Bayes tokenizer's words (jaxml/naive_bayes/text.py: tags dropped, letters lower-cased,
stop words KEPT — "not" matters to a reader of order); the vocabulary is the ``vocab_size - 2`` most frequent
words of the training texts seen at least ``min_count`` times (never of validation or test), ids

    0 = padding,  1 = unknown word,  2 + v = vocabulary word v

Each review keeps its first ``max_length`` tokens: x int32[N, max_length] (zeros after the end), lengths
int32[N], y int32[N]. ``BucketSource`` serves training batches trimmed to the smallest of a few widths that
holds their longest review: each epoch's seeded permutation is cut into pools of ``pool`` batches, sorted by
length within a pool, batched, and the batches shuffled — a pure function of (seed, step), so resumes and
processes see the same batches, and a recurrent model scans ~its batch's length rather than max_length.
The cache is one ``.npz`` per (source files, sizes, split), under ``cache_dir`` (default as tfds_images).
"""
from __future__ import annotations

import hashlib
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jaxml.data import imdb, pipeline
from jaxml.data.tfds_images import default_cache_dir
from jaxml.naive_bayes import text

PAD, UNK = 0, 1


def encode(texts, words: np.ndarray, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """(x int32[N, max_length], lengths int32[N]) of ``texts`` over the vocabulary ``words`` (module ids)."""
    tok = text.tokenize(texts, stop_words=False)
    index = pc.index_in(tok.words, value_set=pa.array(np.asarray(words, dtype=str), pa.large_string()))
    to_id = np.asarray(pc.fill_null(index, UNK - 2), np.int64) + 2                   # unknown words -> UNK
    ids = to_id[tok.word_ids].astype(np.int32) if len(tok.word_ids) else np.zeros(0, np.int32)
    doc = tok.doc_ids()
    pos = np.arange(len(ids)) - tok.offsets[doc]
    keep = pos < max_length
    x = np.zeros((tok.num_docs, max_length), np.int32)
    x[doc[keep], pos[keep]] = ids[keep]
    return x, np.minimum(np.diff(tok.offsets), max_length).astype(np.int32)


def vocabulary(texts, vocab_size: int, min_count: int) -> np.ndarray:
    """str[<= vocab_size - 2]: the most frequent words of ``texts`` (ties: the earlier key) seen >= min_count times."""
    if vocab_size < 3:
        raise ValueError(f"config.data.vocab_size must be >= 3 (padding, unknown and a word), got {vocab_size}")
    vocab = text.build_vocabulary(text.tokenize(texts, stop_words=False), min_count=min_count,
                                  max_size=vocab_size - 2)
    return np.asarray(vocab.words, dtype=str)


def _source_tag(source: str, data_dir) -> str:
    if source != "csv":
        return repr((source, data_dir))
    stats = [os.stat(imdb.csv_path(s, data_dir)) for s in imdb.SPLITS]
    return repr([(str(imdb.csv_path(s, data_dir)), st.st_size, st.st_mtime_ns) for s, st in zip(imdb.SPLITS, stats)])


def load(*, source: str = "csv", data_dir=None, vocab_size: int = 20000, min_count: int = 2, max_length: int = 400,
         validation_fraction: float = 0.0, split_seed: int = 0, cache_dir: str | None = None) -> dict:
    """{"train", ["validation",] "test": {"x", "lengths", "y"}, "words": str[V - 2]}, from the cache when there."""
    if max_length < 1:
        raise ValueError(f"config.data.max_length must be >= 1, got {max_length}")
    cache_dir = cache_dir or default_cache_dir()
    key = repr((_source_tag(source, data_dir), vocab_size, min_count, max_length, validation_fraction, split_seed))
    path = os.path.join(cache_dir, f"imdb_tokens-{hashlib.sha256(key.encode()).hexdigest()[:12]}.npz")
    if os.path.exists(path):
        with np.load(path) as z:
            out = {s: {k: z[f"{s}_{k}"] for k in ("x", "lengths", "y")} for s in z["split_names"]}
            out["words"] = z["words"]
            return out
    raw = {s: imdb.load_imdb(s, source=source, data_dir=data_dir) for s in imdb.SPLITS}
    if validation_fraction > 0:
        raw["train"], raw["validation"] = imdb.holdout_split(raw["train"], validation_fraction, split_seed)
    words = vocabulary(raw["train"].texts, vocab_size, min_count)
    out = {}
    for s, split in raw.items():
        x, lengths = encode(split.texts, words, max_length)
        out[s] = {"x": x, "lengths": lengths, "y": np.asarray(split.labels, np.int32)}
    os.makedirs(cache_dir, exist_ok=True)
    tmp = path + f".tmp{os.getpid()}.npz"
    np.savez(tmp, split_names=np.array(sorted(raw)), words=words,
             **{f"{s}_{k}": v for s in raw for k, v in out[s].items()})
    os.replace(tmp, path)
    out["words"] = words
    return out


class BucketSource:
    """Length-bucketed training batches of token arrays {"x", "lengths", "y", ...} (module docstring)."""

    def __init__(self, arrays: dict, batch_size: int, *, seed: int, buckets, pool: int = 32):
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        self.num_examples = len(self.arrays["x"])
        width = self.arrays["x"].shape[1]
        self.buckets = tuple(sorted({int(b) for b in buckets if 0 < int(b) < width} | {width}))
        if not 0 < batch_size <= self.num_examples:
            raise ValueError(f"config.data.batch_size {batch_size} must be in [1, {self.num_examples}]")
        self.batch_size, self.seed, self.pool = batch_size, int(seed), int(pool)
        self.steps_per_epoch = self.num_examples // batch_size
        self._epoch, self._batches = None, None

    def epoch_batches(self, epoch: int) -> np.ndarray:
        """int[steps_per_epoch, batch_size]: the example indices of every batch of ``epoch``."""
        if self._epoch != epoch:
            n = self.steps_per_epoch * self.batch_size
            order = np.random.default_rng([self.seed, epoch]).permutation(self.num_examples)[:n]
            size = self.pool * self.batch_size
            lengths = self.arrays["lengths"]
            pools = [p[np.argsort(lengths[p], kind="stable")] for p in np.split(order, range(size, n, size))]
            batches = np.concatenate(pools).reshape(self.steps_per_epoch, self.batch_size)
            self._batches = batches[np.random.default_rng([self.seed, epoch, 1]).permutation(len(batches))]
            self._epoch = epoch
        return self._batches

    def width(self, idx: np.ndarray) -> int:
        """The smallest bucket that holds the longest of the examples ``idx``."""
        longest = int(self.arrays["lengths"][idx].max())
        return next(b for b in self.buckets if b >= longest)

    def batch(self, step: int, *, shard: tuple[int, int] = (0, 1)) -> pipeline.Batch:
        epoch, i = divmod(int(step), self.steps_per_epoch)
        idx = self.epoch_batches(epoch)[i]
        width = self.width(idx)
        per = self.batch_size // shard[1]
        if per * shard[1] != self.batch_size:
            raise ValueError(f"global batch size {self.batch_size} is not divisible by the process count {shard[1]}")
        idx = idx[shard[0] * per:(shard[0] + 1) * per]
        out = {k: v[idx] for k, v in self.arrays.items()}
        out["x"] = out["x"][:, :width]
        return out
