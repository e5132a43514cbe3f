"""Tell the time: read rendered analog clocks (README.md beside this file has the results).

Importing this package registers the ``clock`` dataset builder, the objectives ``clock_heads``,
``clock_periodic`` and ``clock_absolute`` (with the view maps ``config.model.test_views`` needs) and the
``clock_predictions`` report; ``configs/clock.py`` imports it. The pieces, one idea a file:
styles.py (what a clock may look like), render.py (the jitted SDF renderer), preprocessing.py (the input
chain), dataset.py (fixed rendered sets, .npy I/O), metrics.py (errors on the 720-minute circle),
objectives.py (targets, decoders, view maps), builder.py (the data builder), report.py (sample grids),
independent.py (a PIL renderer sharing no code with render.py: evaluation only), read_clock.py
(``launch/read_clock.py``: read a user's picture) and the scripts heldout.py (``python -m
jaxml.tasks.clock.heldout``: score a run setting by setting), evaluate.py (``python -m jaxml.tasks.clock.evaluate``:
test, held-out and independent errors at once) and render_clocks.py (``launch/render_clocks.py``: write a
rendered dataset as .npy files and sample grids).
"""
from __future__ import annotations

from jaxml import data
from jaxml.tasks.clock.builder import build_data, independent_arrays, raw_arrays, rendered_arrays, train_style
from jaxml.tasks.clock.dataset import clock_dataset, load_npy_dataset, write_npy_dataset
from jaxml.tasks.clock.metrics import clock_error_minutes, clock_metrics, minute_distance, time_in_minutes
from jaxml.tasks.clock.objectives import (
    DECODERS,
    VIEW_MAPS,
    absolute_objective,
    decode_absolute,
    decode_heads,
    decode_periodic,
    heads_objective,
    periodic_objective,
)
from jaxml.tasks.clock.preprocessing import contrast_curve, detrend_standardize, preprocess
from jaxml.tasks.clock.render import (
    clock_example,
    draw_clock,
    render_batch,
    render_clock,
    render_labelled_batch,
    rotations,
)
from jaxml.tasks.clock.report import sample_grid_report, save_sample_grid
from jaxml.tasks.clock.styles import (
    CANONICAL_STYLE,
    CANVAS,
    HAND_SHAPES,
    HELDOUT_STYLE,
    STYLES,
    TICK_STYLES,
    TRAIN_STYLE,
    WIDE_STYLE,
    ClockStyle,
    sample_clock_params,
    style_values,
)
from jaxml.train import objectives as train_objectives
from jaxml.train import reports

__all__ = [
    "CANONICAL_STYLE", "CANVAS", "DECODERS", "HAND_SHAPES", "HELDOUT_STYLE", "STYLES", "TICK_STYLES", "TRAIN_STYLE",
    "VIEW_MAPS", "WIDE_STYLE", "ClockStyle", "absolute_objective", "build_data", "clock_dataset", "clock_error_minutes",
    "clock_example", "clock_metrics", "contrast_curve", "decode_absolute", "decode_heads", "decode_periodic",
    "detrend_standardize", "draw_clock", "heads_objective", "independent_arrays", "load_npy_dataset", "minute_distance",
    "periodic_objective", "preprocess", "raw_arrays", "render_batch", "render_clock", "render_labelled_batch",
    "rendered_arrays", "rotations", "sample_clock_params", "sample_grid_report", "save_sample_grid", "style_values",
    "time_in_minutes", "train_style", "write_npy_dataset",
]

data.register("clock", build_data)
train_objectives.register("clock_heads", heads_objective, view_maps=VIEW_MAPS)
train_objectives.register("clock_periodic", periodic_objective, view_maps=VIEW_MAPS)
train_objectives.register("clock_absolute", absolute_objective, view_maps=VIEW_MAPS)
reports.register("clock_predictions", sample_grid_report)
reports.plot_metric("clock_error_min")
