"""Accuracy under mixed precision: a config trained in float32 and with ``precision.compute_dtype`` bfloat16
(and float16), same seed and batches, test accuracy and the difference in points.

    python bench/precision_accuracy.py [--config=configs/mnist_cnn.py:quick] [--dtypes=bfloat16]

Runs the config in this process through the one loop (``train_and_evaluate``, no workdir) once per dtype and
prints accuracy, wall time per run and ``float32 - dtype`` in points; the issue's goal is within 0.5 points on
``mnist_cnn.py:quick``. Needs ``$JAXML_DATA_DIR`` for the MNIST configs. Accuracy, not time: load changes the
wall time only.
"""
from __future__ import annotations

import time

from absl import app, flags

import timing
from jaxml.cli import config_file
from jaxml.train import train_and_evaluate

CONFIG = flags.DEFINE_string("config", "configs/mnist_cnn.py:quick", "config file[:arg] to train")
DTYPES = flags.DEFINE_list("dtypes", ["bfloat16"], "compute dtypes to compare with float32")


def run(dtype: str) -> tuple[float, float]:
    """(test accuracy, wall seconds) of the config trained with compute dtype ``dtype``."""
    config = config_file.load_config(CONFIG.value)
    config.precision.compute_dtype = dtype
    config.train.progress_bar = False
    t = time.perf_counter()
    final = train_and_evaluate(config, None).final
    return float(final["test"]["accuracy"]), time.perf_counter() - t


def main(_):
    runs = {dtype: run(dtype) for dtype in ["float32", *DTYPES.value]}
    base = runs["float32"][0]
    table = [(dtype, 100 * acc, f"test accuracy %, {secs:.0f} s") for dtype, (acc, secs) in runs.items()]
    results = {d: 100 * a for d, (a, _) in runs.items()}
    for d in DTYPES.value:
        results[f"points float32-{d}"] = 100 * (base - runs[d][0])
        table.append((f"float32 - {d}", results[f"points float32-{d}"], "points (goal: within 0.5)"))
    timing.emit("precision_accuracy", "accuracy %", True, results, {}, table)


if __name__ == "__main__":
    app.run(main)
