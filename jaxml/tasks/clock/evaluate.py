"""Score a trained clock run on every evaluation set at once: its own test clocks, the held-out designs and the
independent renderer's turned and upright clocks (independent.py: PIL-drawn, never trained on).

    python -m jaxml.tasks.clock.evaluate --config=configs/clock.py --workdir=runs/clock [--n=1200] \
        [--n_test=3600] [--step=N] [--config.model.test_views=8]

``--config`` must be the config the run was trained with (same arguments and overrides). Rows: "test" (the
run's training designs, its own test stream), "test (default designs)" when the run trained on another style,
"heldout" (HELDOUT_STYLE), "independent turned" and "independent upright" (``--n`` clocks each, seed
``builder.INDEPENDENT_SEED``). Prints a Markdown table and a JSON line.
"""
from __future__ import annotations

import json
import time

from absl import flags
from ml_collections import config_flags

from jaxml.cli import common
from jaxml.tasks.clock.builder import independent_arrays, rendered_arrays, train_style
from jaxml.tasks.clock.styles import CANVAS, HELDOUT_STYLE, TRAIN_STYLE
from jaxml.train import loop

_CONFIG = config_flags.DEFINE_config_file("config", None, "The config the run was trained with.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "The run's workdir (its checkpoints are read).")
_N = flags.DEFINE_integer("n", 1200, "Independent clocks per set (turned, upright).")
_N_TEST = flags.DEFINE_integer("n_test", 3600, "Clocks in the test and held-out rows.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
flags.mark_flags_as_required(["config", "workdir"])


def evaluation_sets(config, n_test: int, n_independent: int) -> dict:
    """{row name: preprocessed arrays} of the rows this script scores (see the module docstring)."""
    style = train_style(config)
    rows = {"test": rendered_arrays(config, style, "test", n_test)}
    if style != TRAIN_STYLE:
        rows["test (default designs)"] = rendered_arrays(config, TRAIN_STYLE, "test", n_test)
    rows["heldout"] = rendered_arrays(config, HELDOUT_STYLE, "heldout", n_test)
    for which in ("turned", "upright"):
        rows[f"independent {which}"] = independent_arrays(config, which, n_independent)
    return rows


def main(argv):
    del argv
    config = _CONFIG.value
    _, driver, state = loop.restore_trained(config, _WORKDIR.value, (CANVAS, CANVAS, 1), _STEP.value)
    t0 = time.perf_counter()
    rows = {name: loop.evaluate(driver, state, {k: v for k, v in arrays.items() if k != "images"},
                                int(config.data.eval_batch_size))
            for name, arrays in evaluation_sets(config, _N_TEST.value, _N.value).items()}
    step = int(driver.fetch(state.step))
    views = config.model.get("test_views", 1)
    print(f"{_WORKDIR.value} at step {step}, {views} view(s) averaged, {time.perf_counter() - t0:.0f} s")
    print("| clocks | n | error (min) | hour acc. | minute ±1 | minute ±5 |")
    print("|---|---|---|---|---|---|")
    sizes = {name: (_N.value if name.startswith("independent") else _N_TEST.value) for name in rows}
    for name, m in rows.items():
        print(f"| {name} | {sizes[name]} | {m['clock_error_min']:.2f} | {m['hour_accuracy']:.3f} "
              f"| {m['minute_within_1']:.3f} | {m['minute_within_5']:.3f} |")
    print(json.dumps({"script": "clock_evaluate", "workdir": _WORKDIR.value, "step": step, "test_views": views,
                      "clock_error_min": {k: round(v["clock_error_min"], 4) for k, v in rows.items()},
                      "hour_accuracy": {k: round(v["hour_accuracy"], 4) for k, v in rows.items()}}))


if __name__ == "__main__":
    common.run(main)
