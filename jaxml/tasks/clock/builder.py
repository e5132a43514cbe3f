"""The clock task's data builder (``config.data.name = "clock"``): rendered clocks, preprocessed as the run's inputs.

Fields of ``config.data``: data_seed, train_size (0: fresh clocks every step), test_size, batch_size,
steps_per_epoch, train_style (a partial ClockStyle; default TRAIN_STYLE) and the preprocessing fields of
preprocessing.py (preblur_sigma, contrast_gamma, normalize). Evaluation splits: "test" (the training styles)
and "heldout" (HELDOUT_STYLE, designs never trained on).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.data import pipeline
from jaxml.tasks.clock.dataset import clock_dataset
from jaxml.tasks.clock.independent import independent_set
from jaxml.tasks.clock.preprocessing import preprocess
from jaxml.tasks.clock.render import render_labelled_batch
from jaxml.tasks.clock.styles import CANVAS, HELDOUT_STYLE, TRAIN_STYLE, ClockStyle


def train_style(config) -> ClockStyle:
    """The style the run trains on: ``config.data.train_style`` (a partial ClockStyle) or TRAIN_STYLE."""
    d = config.data
    return ClockStyle.from_dict(d.train_style.to_dict()) if d.get("train_style") else TRAIN_STYLE


def raw_arrays(config, style: ClockStyle, split: str, n: int | None = None) -> dict:
    """``n`` (default ``data.test_size``) rendered clocks of ``style`` from the ``split`` stream of the run's
    data seed as rendered (x = pixels / 255, f32[n, 150, 150, 1]): {"x", "hour", "minute", "rotation"}."""
    d = config.data
    return clock_dataset(d.get("data_seed", 0), int(d.test_size if n is None else n), style, split)


def rendered_arrays(config, style: ClockStyle, split: str, n: int | None = None) -> dict:
    """:func:`raw_arrays` preprocessed as the run's inputs: {"x", "hour", "minute", "rotation"}."""
    arrays = raw_arrays(config, style, split, n)
    return {**arrays, "x": np.asarray(preprocess(config)(arrays["x"]))}


INDEPENDENT_SEED = 20  # the independent renderer's evaluation seed (issue 20); never a training stream


def independent_arrays(config, which: str, n: int, seed: int = INDEPENDENT_SEED) -> dict:
    """``n`` clocks of the independent renderer's set ``which`` ("turned" / "upright"; independent.py),
    preprocessed as the run's inputs: {"x", "hour", "minute", "rotation", "images" (uint8, as drawn)}."""
    s = independent_set(seed, n, which)
    x = np.asarray(preprocess(config)(s["images"].astype(np.float32)[..., None] / 255.0))
    return {"x": x, "hour": s["hour"], "minute": s["minute"], "rotation": s["rotation"], "images": s["images"]}


def build_data(config) -> pipeline.Splits:
    """Training batches rendered on the fly from fold_in(seed, step) (``train_size`` = 0: infinite data)
    or drawn from a fixed rendered set of ``train_size`` images (the report: 14,400); evaluation on
    ``test_size`` held-out images of the training styles ("test") and of the excluded styles ("heldout")."""
    d = config.data
    style, prep = train_style(config), preprocess(config)
    eval_splits = {"test": rendered_arrays(config, style, "test"),
                   "heldout": rendered_arrays(config, HELDOUT_STYLE, "heldout")}
    if int(d.get("train_size", 0)) > 0:
        arrays = rendered_arrays(config, style, "train", int(d.train_size))
        train = pipeline.ArraySource(arrays, d.batch_size, seed=config.seed)
    else:
        # Two programs, not one: compiled together, XLA:CPU fuses the renderer into the per-image reductions
        # of "detrend" and redraws every clock once per reduction (bench/clock_preblur.py times both).
        prep_pixels = jax.jit(lambda images: prep(images.astype(jnp.float32)[..., None] / 255.0))

        def make_batch(key, n):
            images, hour, minute, rotation = render_labelled_batch(key, n, style)
            return {"x": prep_pixels(images), "hour": hour, "minute": minute, "rotation": rotation}
        train = pipeline.GeneratedSource(make_batch, d.batch_size, seed=config.seed, jit=False,
                                         steps_per_epoch=int(d.get("steps_per_epoch", 600)))
    return pipeline.Splits(train=train, eval=eval_splits, input_shape=(CANVAS, CANVAS, 1))
