"""The config family of ``configs/imdb_{gru,transformer}.py``: IMDB reviews as token ids (``imdb_tokens``),
20,000-word vocabulary from the training reviews, the first 400 tokens of each review, training batches trimmed
to widths 64 / 128 / 256 / 400, 10 % of train held out (stratified) as the validation split on which settings are
judged (never test). ``arg`` (``--config=configs/x.py:ARG``): ``quick`` = a 4-step smoke run on 64 reviews with
a 500-word vocabulary and 64 tokens."""
from __future__ import annotations

import os

import ml_collections

from jaxml.tasks import imdb_seq  # noqa: F401  (registers the imdb_tokens dataset)
from jaxml.train.config import base_config, config_args


def imdb_config(model: dict, arg: str | None):
    quick = "quick" in config_args(arg, ("quick",))
    c = base_config()
    c.seed = 0
    c.objective = "softmax_xent"
    c.data.name = "imdb_tokens"
    c.data.source = "csv"
    c.data.data_dir = os.environ.get("JAXML_DATA_DIR", "")       # parent of imdb/aclImdb_{train,test}.csv.gz
    c.data.cache_dir = ""                                          # "": $JAXML_CACHE_DIR/datasets or ~/.cache/jaxml
    c.data.vocab_size = 500 if quick else 20000
    c.data.min_count = 1 if quick else 2
    c.data.max_length = 64 if quick else 400
    c.data.buckets = (16, 32) if quick else (64, 128, 256)
    c.data.validation_fraction = 0.1
    c.data.split_seed = 0
    c.data.train_limit = 64 if quick else 0
    c.data.batch_size = 16 if quick else 64
    c.data.eval_batch_size = 16 if quick else 500
    c.model = ml_collections.ConfigDict({**model, "vocab_size": c.data.vocab_size, "num_outputs": 2})
    c.optimizer.grad_clip = 1.0
    c.train.log_every = 2 if quick else 100
    c.train.checkpoint_every = 1000
    c.reports = ("curves", "confusion_matrix")
    if quick:
        c.train.num_steps = 4
    return c, quick
