"""Which held-out clock setting costs a trained clock model what: score a finished run on its own test
style, on the held-out style, on its training style with one held-out setting (or one group) swapped in, and on
the held-out style with one setting swapped back to its training range.

    python -m jaxml.tasks.clock.heldout --config=configs/clock.py --workdir=runs/clock [--n=3600] [--step=N] \
        [--rows=summary] [--config.model.test_views=8]

``--config`` must be the config the run was trained with (same arguments and overrides). Each row renders
``n`` clocks from the "heldout" stream of the run's data seed (the "test" row: the run's own test set), so a
row is reproducible and every row draws the same times. Prints a Markdown table and a JSON line.
"""
from __future__ import annotations

import dataclasses
import json

from absl import flags
from ml_collections import config_flags

from jaxml.cli import common
from jaxml.tasks.clock.builder import rendered_arrays, train_style
from jaxml.tasks.clock.styles import CANVAS, HELDOUT_STYLE
from jaxml.train import loop

_CONFIG = config_flags.DEFINE_config_file("config", None, "The config the run was trained with.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "The run's workdir (its checkpoints are read).")
_N = flags.DEFINE_integer("n", 3600, "Clocks per row.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_ROWS = flags.DEFINE_enum("rows", "all", ["all", "summary"], "all: every setting; summary: test and held-out only.")
flags.mark_flags_as_required(["config", "workdir"])

DESIGN = ("tick_styles", "hand_shapes")
LIGHTING = ("gradient", "contrast", "blur_sigma", "noise_std")


def settings(train, heldout) -> dict:
    """{row name: style}: every field where the held-out style differs, one at a time, then the groups, then the
    whole held-out style, and it with one field at a time put back to its training range (what that setting
    adds on top of all the others: they compound)."""
    differ = [f.name for f in dataclasses.fields(train) if getattr(train, f.name) != getattr(heldout, f.name)]
    rows = {f"only {name}": dataclasses.replace(train, **{name: getattr(heldout, name)}) for name in differ}
    for group, fields in (("designs", DESIGN), ("lighting", LIGHTING)):
        fields = [f for f in fields if f in differ]
        if len(fields) > 1:
            rows[f"only {group} ({', '.join(fields)})"] = dataclasses.replace(
                train, **{f: getattr(heldout, f) for f in fields})
    rows["heldout (all of them)"] = heldout
    for name in differ:  # what each setting adds on top of all the others
        rows[f"heldout except {name}"] = dataclasses.replace(heldout, **{name: getattr(train, name)})
    return rows


def main(argv):
    del argv
    config = _CONFIG.value
    _, driver, state = loop.restore_trained(config, _WORKDIR.value, (CANVAS, CANVAS, 1), _STEP.value)

    def score(arrays):
        return loop.evaluate(driver, state, arrays, int(config.data.eval_batch_size))

    train = train_style(config)
    rows = {"test (training designs)": score(rendered_arrays(config, train, "test", _N.value))}
    styles = (settings(train, HELDOUT_STYLE) if _ROWS.value == "all"
              else {"heldout (all of them)": HELDOUT_STYLE})
    for name, style in styles.items():
        rows[name] = score(rendered_arrays(config, style, "heldout", _N.value))
    step = int(driver.fetch(state.step))
    views = config.model.get("test_views", 1)
    print(f"{_WORKDIR.value} at step {step}, {_N.value} clocks per row, {views} view(s) averaged")
    print("| clocks | error (min) | hour acc. | minute ±1 | minute ±5 |")
    print("|---|---|---|---|---|")
    for name, m in rows.items():
        print(f"| {name} | {m['clock_error_min']:.2f} | {m['hour_accuracy']:.3f} | {m['minute_within_1']:.3f} "
              f"| {m['minute_within_5']:.3f} |")
    errors = {k: round(v["clock_error_min"], 4) for k, v in rows.items()}
    print(json.dumps({"script": "clock_heldout", "workdir": _WORKDIR.value, "step": step, "test_views": views,
                      "clock_error_min": errors}))


if __name__ == "__main__":
    common.run(main)
