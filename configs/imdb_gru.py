"""IMDB sentiment with a bidirectional GRU: 20,000-word embedding (64), one GRU layer of 64 units per
direction reading each review's first 400 tokens (padding skipped: ``lengths``), mean of the states over the
review, dropout 0.3 on embeddings and pooled states, dense(2). Adam 1e-3 with cosine decay, gradient clipping 1.0,
batch 64, 4 epochs — the recurrent IMDB baseline (e.g. the Keras bidirectional-RNN example) halved in width for 2
CPU cores (jaxml/tasks/imdb_seq/README.md); 10 % of train held out (stratified) for judging
changes, never test.

Command:  python launch/train.py --config=configs/imdb_gru.py --workdir=runs/imdb_gru
          (``:quick``: a 4-step smoke run; data from $JAXML_DATA_DIR/imdb, token arrays cached on first use)
Expected: goal test accuracy >= 0.88 (issue #31; multinomial NB 0.8839, NB-LR 0.9161) — full run pending
          (jaxml/tasks/imdb_seq/README.md).
Runtime:  1,404 steps at ~1 s/step on 2 shared CPU cores at nice 19 (~25 min); quiet: pending.
"""
from jaxml.tasks.imdb_seq.config import imdb_config


def get_config(arg=None):
    c, quick = imdb_config({"name": "text_gru", "embed_dim": 64, "hidden": (64,), "bidirectional": True,
                            "pool": "mean", "dropout": 0.3}, arg)
    if quick:
        c.model.embed_dim, c.model.hidden = 16, (16,)
    c.optimizer.name = "adam"
    c.optimizer.lr = 1e-3
    c.optimizer.schedule = "cosine"
    c.train.num_epochs = 4
    return c
