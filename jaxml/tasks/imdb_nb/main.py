"""Naive Bayes on IMDB: ``python launch/naive_bayes.py --config=configs/imdb_nb.py[:arg] --workdir=DIR``.

Fits, evaluates and prints ``accuracy: 0.xxxx`` and a classification report; writes ``metrics.jsonl``,
``confusion_matrix.png`` (+ ``.csv``) and the fitted model ``model.npz`` (+ ``model_config.json``) to --workdir
(``jaxml/tasks/imdb_nb/experiment.py``). ``--text="..."`` classifies that text with the model cached in --workdir
(fitting it first when the cache is missing or was fitted with another config).
"""
from __future__ import annotations

from absl import flags
from ml_collections import config_flags

from jaxml.cli import common
from jaxml.tasks import imdb_nb

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/imdb_nb.py[:arg]", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for metrics.jsonl, confusion_matrix.png, model.npz.")
_TEXT = flags.DEFINE_string("text", None, "Classify this text with the (cached) model and exit.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    common.setup()
    imdb_nb.run(_CONFIG.value, _WORKDIR.value, text=_TEXT.value)


def run():
    common.run(main)


if __name__ == "__main__":
    run()
