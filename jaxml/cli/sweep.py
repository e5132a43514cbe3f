"""Hyperparameter search: ``python launch/sweep.py --config=configs/x.py[:arg] --workdir=DIR --space=...``.

--space="optimizer.lr=loguniform(1e-4,1e-1); seed=choice(0,1,2)" (distributions: uniform, loguniform,
int, choice — see jaxml/tune/space.py). --mode=random draws --trials points per round; --mode=grid
takes --grid_points values per range. --rounds=2 is coarse to fine: each round narrows every range
around the --top_k best trials so far. Each trial trains with early stopping on (--split, --metric);
when every swept field leaves shapes alone (optimizer.lr, regularization.l1/l2, seed) a round trains
as ONE vmapped population (--population=auto). Writes results.csv, results.md (ranked) and sweep.json
in --workdir, one sub-directory per trial.
Example: python launch/sweep.py --config=configs/blobs_mlp.py --workdir=/tmp/sweep --split=test \\
             --space="optimizer.lr=loguniform(1e-4,1)" --trials=8 --rounds=2
"""
from __future__ import annotations

import os

from absl import flags
from ml_collections import config_flags

from jaxml.cli import common
from jaxml.tune import search

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file (configs/*.py[:arg]).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for results.csv/.md and one sub-directory per trial.")
_SPACE = flags.DEFINE_string("space", None, "FIELD=DIST(ARGS); ... e.g. 'optimizer.lr=loguniform(1e-4,1e-1)'.")
_MODE = flags.DEFINE_enum("mode", "random", ["random", "grid"], "Random draws or a full grid per round.")
_TRIALS = flags.DEFINE_integer("trials", 8, "Random mode: trials per round.")
_GRID_POINTS = flags.DEFINE_integer("grid_points", 3, "Grid mode: values per uniform/loguniform/int range.")
_ROUNDS = flags.DEFINE_integer("rounds", 1, "Coarse-to-fine rounds (each narrows the ranges around the top-k).")
_TOP_K = flags.DEFINE_integer("top_k", 3, "Trials the next round's ranges are narrowed around.")
_METRIC = flags.DEFINE_string("metric", "accuracy", "Final metric the trials are ranked by.")
_SPLIT = flags.DEFINE_string("split", "validation", "Eval split the metric is read from (and early stopping watches).")
_GOAL = flags.DEFINE_enum("goal", "auto", ["auto", "max", "min"], "auto: max for accuracy, min otherwise.")
_PATIENCE = flags.DEFINE_integer("patience", 3, "Early-stopping patience in evals (0: off; a config's own "
                                 "train.early_stopping wins).")
_POPULATION = flags.DEFINE_enum("population", "auto", ["auto", "always", "never"],
                                "Train a round as one vmapped population when the swept fields allow it.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the random search (not of the models: sweep 'seed' for that).")
_REPORTS = flags.DEFINE_bool("trial_reports", False, "Run the config's end-of-run reports (plots) per trial.")
flags.mark_flags_as_required(["config", "workdir", "space"])
flags.adopt_module_key_flags(common)


def main(argv):
    del argv
    common.setup()
    ranked = search.run_sweep(_CONFIG.value, _WORKDIR.value, _SPACE.value, mode=_MODE.value, trials=_TRIALS.value,
                              rounds=_ROUNDS.value, top_k=_TOP_K.value, grid_points=_GRID_POINTS.value,
                              metric=_METRIC.value, split=_SPLIT.value, goal=_GOAL.value, patience=_PATIENCE.value,
                              population=_POPULATION.value, seed=_SEED.value, trial_reports=_REPORTS.value)
    with open(os.path.join(_WORKDIR.value, "results.md")) as f:
        lines = f.read().splitlines()
    print("\n".join(lines[:12]) + (f"\n... {len(lines) - 12} more rows" if len(lines) > 12 else ""))
    best = ranked[0]
    print(f"best: {', '.join(f'{k}={v}' for k, v in best.params.items())} -> {_SPLIT.value} {_METRIC.value} "
          f"{best.outcome.value:.6g} ({os.path.join(_WORKDIR.value, 'results.csv')})")


def run():
    common.run(main)


if __name__ == "__main__":
    run()
