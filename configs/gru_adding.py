"""The adding problem: sequences of (value, marker) pairs, T = 100; the target is the sum of the two
marked values. A GRU (hidden 128, reset_after) reads the sequence and a dense head predicts the sum;
Adam 2e-3 with cosine decay, gradient clipping 1.0, batch 64, 4,000 steps. Predicting the mean scores MSE ~= 0.167.

Command:  python launch/train.py --config=configs/gru_adding.py --workdir=runs/adding
          (``:quick`` is a CPU smoke run: T = 20, 300 steps)
Expected: eval MSE 0.00061 after 4,000 steps (goal < 0.01).
Runtime:  ~25 min on 2 shared CPU cores.
"""
from jaxml.tasks import toy  # noqa: F401  (registers the toy datasets and the zhou_predictions report)
from jaxml.train.config import base_config, config_args


def get_config(arg=None):
    args = config_args(arg, ("quick",))
    c = base_config()
    c.seed = 0
    c.objective = "mse"
    c.model.name = "gru"
    c.model.hidden = (128,)
    c.model.num_outputs = 1
    c.model.reset_after = True
    c.data.name = "adding"
    c.data.length = 100
    c.data.batch_size = 64
    c.data.eval_batch_size = 1000
    c.data.eval_size = 2000
    c.data.steps_per_epoch = 500
    c.optimizer.name = "adam"
    c.optimizer.lr = 2e-3
    c.optimizer.schedule = "cosine"
    c.optimizer.grad_clip = 1.0
    c.train.num_steps = 4000
    c.train.log_every = 100
    c.train.eval_every = 500
    c.train.checkpoint_every = 500
    c.reports = ("curves",)
    if "quick" in args:
        c.data.length = 20
        c.train.num_steps = 300
        c.train.eval_every = 100
    return c
