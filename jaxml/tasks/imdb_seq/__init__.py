"""IMDB sentiment with sequence models (the text GRU and the Transformer, jaxml/models/): importing this package
registers the ``imdb_tokens`` dataset (jaxml/data/imdb_tokens.py); ``configs/imdb_{gru,transformer}.py`` train
on it through the one loop. Results and commands: README.md beside this file."""
from __future__ import annotations

from jaxml import data
from jaxml.data import imdb, imdb_tokens, pipeline
from jaxml.tasks.images.tfds_builder import limit_train

__all__ = ["build_imdb_tokens"]


def build_imdb_tokens(config) -> pipeline.Splits:
    """Fields of config.data: source (csv | tfds), data_dir, cache_dir, vocab_size, min_count, max_length,
    buckets (training batch widths), validation_fraction / split_seed (a stratified holdout of train),
    train_limit (> 0: first N training reviews and a quarter as many of each eval split, for smoke runs)."""
    d = config.data
    arrays = imdb_tokens.load(source=d.get("source", "csv"), data_dir=d.get("data_dir") or None,
                              vocab_size=int(d.vocab_size), min_count=int(d.get("min_count", 2)),
                              max_length=int(d.max_length), validation_fraction=float(d.get("validation_fraction", 0)),
                              split_seed=int(d.get("split_seed", 0)), cache_dir=d.get("cache_dir") or None)
    words = arrays.pop("words")
    train, evals = limit_train(arrays.pop("train"), arrays, int(d.get("train_limit", 0)), d.eval_batch_size)
    source = imdb_tokens.BucketSource(train, d.batch_size, seed=config.seed, buckets=tuple(d.get("buckets", ())))
    return pipeline.Splits(train=source, eval=evals, input_shape=(int(d.max_length),),
                           info={"class_names": list(imdb.CLASS_NAMES), "vocab_words": len(words)})


data.register("imdb_tokens", build_imdb_tokens)
