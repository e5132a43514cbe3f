"""IMDB sentiment with a small Transformer encoder: 20,000-word embedding (64) + learned positions, 2 pre-LN
blocks (4 heads, MLP 128, exact GELU), dropout 0.1, padding masked in attention and in the mean pooling over each
review's first 400 tokens, dense(2). AdamW (lr 1e-3, weight decay 0.01) with 200 warm-up steps then cosine decay,
gradient clipping 1.0, batch 64, 3 epochs — the small text-classification Transformer of the Keras example,
pre-LN, sized for 2 CPU cores; 10 % of train held out (stratified) for judging changes, never test.

Command:  python launch/train.py --config=configs/imdb_transformer.py --workdir=runs/imdb_transformer
          (``:quick``: a 4-step smoke run; data from $JAXML_DATA_DIR/imdb, token arrays cached on first use)
Expected: test accuracy 0.8735, validation 0.8900 (seed 0; goal >= 0.87; multinomial NB 0.8839, NB-LR 0.9161).
Runtime:  1,053 steps, ~2,850 s on 2 shared CPU cores (jaxml/tasks/imdb_seq/README.md).
"""
from jaxml.tasks.imdb_seq.config import imdb_config


def get_config(arg=None):
    c, quick = imdb_config({"name": "transformer", "input": "tokens", "dim": 64, "depth": 2, "heads": 4,
                            "mlp_dim": 128, "pool": "mean", "dropout": 0.1}, arg)
    if quick:
        c.model.dim, c.model.depth, c.model.mlp_dim = 16, 1, 32
    c.optimizer.name = "adamw"
    c.optimizer.lr = 1e-3
    c.optimizer.weight_decay = 0.01
    c.optimizer.schedule = "warmup_cosine"
    c.optimizer.warmup_steps = 2 if quick else 200
    c.train.num_epochs = 3
    return c
