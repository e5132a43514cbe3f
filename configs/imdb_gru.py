"""IMDB sentiment with a bidirectional GRU: 20,000-word embedding (64), one GRU layer of 64 units per
direction reading each review's first 800 tokens (nearly all of every review; padding skipped: ``lengths``),
mean of the states over the review, dropout 0.5 on embeddings and pooled states, dense(2). Adam 1e-3 with cosine
decay, gradient clipping 1.0, batch 64, 3 epochs — the recurrent IMDB baseline (e.g. the Keras bidirectional-RNN
example) halved in width for 2 CPU cores, regularised after a first run overfitted (jaxml/tasks/imdb_seq/README.md);
10 % of train held out (stratified) for judging changes, never test.

Command:  python launch/train.py --config=configs/imdb_gru.py --workdir=runs/imdb_gru
          (``:quick``: a 4-step smoke run; data from $JAXML_DATA_DIR/imdb, token arrays cached on first use)
Expected: test accuracy 0.8809, validation 0.8900 (seed 0; goal >= 0.88; multinomial NB 0.8839, NB-LR 0.9161).
Runtime:  1,053 steps, 513 s on 2 CPU cores.
"""
from jaxml.tasks.imdb_seq.config import imdb_config


def get_config(arg=None):
    c, quick = imdb_config({"name": "text_gru", "embed_dim": 64, "hidden": (64,), "bidirectional": True,
                            "pool": "mean", "dropout": 0.5}, arg)
    if quick:
        c.model.embed_dim, c.model.hidden = 16, (16,)
    c.optimizer.name = "adam"
    c.optimizer.lr = 1e-3
    c.optimizer.schedule = "cosine"
    c.train.num_epochs = 3
    if not quick:
        c.data.max_length, c.data.buckets = 800, (64, 128, 256, 512)
    return c
