"""The learning-rate range test: ``python launch/lr_find.py --config=configs/x.py[:arg] --workdir=DIR``.

One run with the lr growing geometrically from --min_lr to --max_lr over --steps steps (stopping when
the smoothed loss exceeds 4x its best); writes ``lr_find.png`` (loss vs lr, log axis, suggestion
marked) and ``lr_find.json`` in --workdir and prints ``suggested lr: X`` — the lr where the smoothed
loss falls fastest (see jaxml/tune/lr_range.py). Override config fields with ``--config.x=...``.
Example: python launch/lr_find.py --config=configs/mnist_mlp.py:quick --workdir=/tmp/lr_mnist
"""
from __future__ import annotations

import json
import os

import jax
from absl import flags
from ml_collections import config_flags

from jaxml.cli import common
from jaxml.train.workdir import check_output_dir
from jaxml.tune import lr_range

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file (configs/*.py[:arg]).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for lr_find.png and lr_find.json.")
_MIN_LR = flags.DEFINE_float("min_lr", 1e-5, "First learning rate of the sweep.")
_MAX_LR = flags.DEFINE_float("max_lr", 1.0, "Last learning rate of the sweep.")
_STEPS = flags.DEFINE_integer("steps", 200, "Training steps (one lr each).")
_DIVERGE = flags.DEFINE_float("diverge", 4.0, "Stop when the smoothed loss exceeds this multiple of its best.")
flags.mark_flags_as_required(["config", "workdir"])
flags.adopt_module_key_flags(common)


def main(argv):
    del argv
    common.setup()
    config = _CONFIG.value
    if jax.process_index() == 0:
        check_output_dir(_WORKDIR.value, ("lr_find.png", "lr_find.json"))   # before the sweep, not after
    result = lr_range.lr_range_test(config, min_lr=_MIN_LR.value, max_lr=_MAX_LR.value, steps=_STEPS.value,
                                    diverge=_DIVERGE.value)
    if jax.process_index() == 0:
        name = f"{config.model.name} on {config.data.name}, {config.optimizer.name}"
        lr_range.plot(result, os.path.join(_WORKDIR.value, "lr_find.png"), title=f"LR range test: {name}")
        lr_range.to_json(result, os.path.join(_WORKDIR.value, "lr_find.json"), min_lr=_MIN_LR.value,
                         max_lr=_MAX_LR.value, steps=_STEPS.value,
                         config=json.loads(config.to_json_best_effort()))
    stop = f"stopped at lr {result.lrs[-1]:.3g} (loss diverged)" if result.diverged else "ran all steps"
    print(f"{len(result.lrs)} steps, {stop}; lowest smoothed loss at lr {result.min_loss_lr:.3g}")
    print(f"suggested lr: {result.suggested_lr:.6g}")


def run():
    common.run(main)


if __name__ == "__main__":
    run()
