"""``fit(config, data=..., workdir=None) -> Trained``: arrays in, a trained state, its history and predictions out.

    config = jaxml.train.base_config()
    config.model.name, config.model.widths = "mlp", (128,)
    trained = jaxml.train.fit(config, data={"train": (x, y), "test": (xt, yt)})
    trained.final["test"]["accuracy"], trained.predict(xt).argmax(-1), trained.history[-1]

It is ``train_and_evaluate`` — the one loop — on arrays given here (``jaxml.data.from_arrays``: batch s a pure
function of (config.seed, s)) instead of the registered dataset ``config.data.name``; without ``data`` it trains
on that dataset. ``workdir=None``: in memory, nothing written; with a workdir it locks, checkpoints and resumes
bit-identically like ``train_and_evaluate``, the config recording the arrays' SHA-256
(``config.data.arrays_sha256``) so a workdir cannot resume on other arrays.
"""
from __future__ import annotations

import copy
from typing import Sequence

import jax

from jaxml import compile_cache
from jaxml import data as data_lib
from jaxml.train import config as config_lib
from jaxml.train import loop
from jaxml.train.trained import Trained

__all__ = ["AUTO_MIN_EPOCHS", "AUTO_MIN_STEPS", "Trained", "auto_steps", "fit"]

AUTO_MIN_STEPS = 1500    # the "auto" budget: at least this many steps ...
AUTO_MIN_EPOCHS = 5      # ... and at least this many passes over the training data


def auto_steps(steps_per_epoch: int) -> int:
    """The step budget ``fit`` gives a config that leaves ``train.num_steps`` and ``train.num_epochs`` at 0:
    ``max(AUTO_MIN_STEPS, AUTO_MIN_EPOCHS * steps_per_epoch)`` — small data gets enough updates to converge
    (1,500 steps is ~140 epochs of scikit-learn's ``load_digits``), large data several epochs."""
    return max(AUTO_MIN_STEPS, AUTO_MIN_EPOCHS * int(steps_per_epoch))


def fit(config, *, data=None, workdir: str | None = None, progress: bool | None = None,
        allow_config_change: Sequence[str] = ()) -> Trained:
    """Train ``config`` (a ``base_config()`` ConfigDict; not modified) and return the ``Trained`` run.

    ``data``: ``{split: (x, y)}`` numpy arrays (or ``{split: {"x", "y", ...}}``), "train" required, every other
    split evaluated (periodically all but "test", every split at the end); it replaces ``config.data.name``
    (set to "arrays"), ``config.data.batch_size`` and ``config.seed`` still apply. ``workdir``: None for a run in
    memory; else checkpoints, ``metrics.jsonl``, reports and resumption as ``train_and_evaluate``.
    ``progress``: show the progress bar (default: ``config.train.progress_bar``; in a notebook a tqdm widget).

    Defaults that train: with ``train.num_steps`` and ``train.num_epochs`` both 0 (``base_config()``'s) the run
    takes ``auto_steps(steps per epoch)`` steps, written into ``Trained.config.train.num_steps``; with
    ``train.eval_every`` set and ``train.eval_splits`` empty every eval split (the test split too) is evaluated
    every ``eval_every`` steps, so ``plot()`` draws its curve.
    Bad arrays raise ValueError naming the split and the problem; bad config fields ``ConfigError``."""
    config = copy.deepcopy(config)
    with config.unlocked():
        if progress is not None:
            config.train.progress_bar = bool(progress)
        if data is not None:
            arrays = data_lib.check_arrays(data)
            config.data.name = data_lib.ARRAYS
            config.data.arrays_sha256 = data_lib.arrays_sha256(arrays)
    config_lib.validate(config, num_devices=jax.device_count())
    compile_cache.enable()
    if data is None:
        splits = data_lib.build(config)
    else:
        splits = data_lib.from_arrays(arrays, batch_size=int(config.data.batch_size), seed=int(config.seed))
    with config.unlocked():
        if not int(config.train.num_steps) and not int(config.train.num_epochs):
            config.train.num_steps = auto_steps(splits.train.steps_per_epoch)
        if int(config.train.eval_every) and not tuple(config.train.eval_splits):
            config.train.eval_splits = tuple(sorted(splits.eval, key=lambda n: n == "test"))   # test last
    return loop.train_and_evaluate(config, workdir, splits=splits, allow_config_change=allow_config_change)
