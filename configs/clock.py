"""Tell the time: a CNN reads rendered analog clocks (150x150 grayscale, the whole clock rotated at random),
trained on freshly rendered clocks every step (jaxml/tasks/clock/, whose README has the full story and tables).

Command:  python launch/train.py --config=configs/clock.py --workdir=runs/clock
Expected: common-sense error 0.39 min on 3,600 test clocks, 7.0 min on the held-out designs (8 views averaged);
          ``python -m jaxml.tasks.clock.heldout --config=configs/clock.py --workdir=runs/clock --rows=summary``
          prints both.
Runtime:  ~60 min on 2 CPU cores (16,000 steps of 64 clocks).

Arguments (combine them: ``:heads,quick``):
  (none)     ``clock_absolute``: (cos, sin) of both hands and of the 12-o'clock marker as image directions; the
             time is read from the hands' angles to the marker. Inputs pre-blurred by 1.25 px and detrended;
             evaluation averages the 8 rotated/mirrored views.
  periodic   ``clock_periodic``: (cos, sin) of the time on the 720-minute circle and of the minute.
  heads      ``clock_heads``: hour (12) and minute (60) logits, cross-entropy 6:4; 4 views (rotations only).
  sharp      no pre-blur (``data.preblur_sigma`` = 0).
  wide       train on ``styles.WIDE_STYLE`` (upright faces as a common case; the 12 o'clock from a triangle, a
             bar, numeral-like glyphs or, upright, nothing; second hands, clutter, dark and squashed faces) and
             score one view (the upright prior is not invariant under the square's turns).
  quick      a CPU smoke run (60 steps).
  tiny       a ~4x cheaper trunk (8-16-32-32 channels, dense 64) and 100 test clocks: the test suite's learning
             run (tests/test_clock_task.py), not a result.
Overrides of note: ``--config.data.contrast_gamma=1.5`` (the report's contrast curve), ``--config.data.normalize=none``
(raw pixels instead of detrended ones).
"""
import dataclasses

import ml_collections

from jaxml.tasks import clock  # (importing it registers the task)
from jaxml.train.config import base_config, config_args

ARGS = ("heads", "periodic", "sharp", "wide", "quick", "tiny")

# ~18 M multiply-adds per image forward: 150 -> 75 (stride-2 5x5) -> 37 -> 18 -> 9 -> 4.
TRUNK = ("conv:16:5:2", "bn", "act", "maxpool:2",
         "conv:32:3", "bn", "act", "maxpool:2",
         "conv:64:3", "bn", "act", "maxpool:2",
         "conv:64:3", "bn", "act", "maxpool:2",
         "flatten", "dense:256", "bn", "act", "dropout:0.2")
# ~4.6 M multiply-adds: the same shape with a quarter to a half of the channels.
TINY_TRUNK = ("conv:8:5:2", "bn", "act", "maxpool:2",
              "conv:16:3", "bn", "act", "maxpool:2",
              "conv:32:3", "bn", "act", "maxpool:2",
              "conv:32:3", "bn", "act", "maxpool:2",
              "flatten", "dense:64", "bn", "act")


def get_config(arg=None):
    flags = config_args(arg, ARGS)
    c = base_config()
    c.seed = 0
    c.model.name = "cnn"
    c.model.layers = TRUNK
    c.model.conv_padding = "SAME"
    c.model.activation = "relu"
    c.model.test_views = 8           # evaluation averaged over 1, 4 or 8 rotated/mirrored views
    if "heads" in flags and "periodic" in flags:
        raise ValueError("configs/clock.py: ':heads' and ':periodic' are two formulations; choose one")
    if "heads" in flags:
        c.objective = "clock_heads"
        c.model.heads = {"hour": 12, "minute": 60}
        c.model.test_views = 4       # rotations only: a mirrored clock's hour depends on its minute
    elif "periodic" in flags:
        c.objective = "clock_periodic"
        c.model.heads = {"angles": 4}
    else:
        c.objective = "clock_absolute"
        c.model.heads = {"abs_angles": 6}
    c.data.name = "clock"
    c.data.data_seed = 0
    c.data.train_size = 0            # 0: render fresh clocks every step; 14400 = the report's fixed set
    c.data.test_size = 3600
    c.data.preblur_sigma = 0.0 if "sharp" in flags else 1.25  # fixed Gaussian blur (px) before normalising
    c.data.contrast_gamma = 1.0
    c.data.normalize = "detrend"     # per image: brightness plane removed, unit variance ("none": raw)
    c.data.batch_size = 64
    c.data.eval_batch_size = 200
    c.data.steps_per_epoch = 500
    c.optimizer.name = "adam"
    c.optimizer.lr = 1e-3
    c.optimizer.schedule = "warmup_cosine"
    c.optimizer.warmup_steps = 200
    c.train.num_steps = 16000
    c.train.log_every = 100
    c.train.eval_every = 4000
    c.train.eval_splits = ("test", "heldout")
    c.train.checkpoint_every = 1000
    c.reports = ("curves", "clock_predictions")
    if "wide" in flags:
        c.data.train_style = ml_collections.ConfigDict(dataclasses.asdict(clock.WIDE_STYLE))
        c.model.test_views = 1
    if "quick" in flags:
        c.data.test_size = 200
        c.data.batch_size = 32
        c.train.num_steps = 60
        c.train.log_every = 20
        c.train.eval_every = 30
        c.optimizer.warmup_steps = 10
    if "tiny" in flags:
        c.model.layers = TINY_TRUNK
        c.data.test_size = 100
    return c
