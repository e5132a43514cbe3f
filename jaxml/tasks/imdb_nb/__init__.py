"""IMDB sentiment with naive Bayes (``jaxml/naive_bayes/``): ``run(config, workdir, text=None)`` loads the reviews
(``jaxml/data/imdb.py``), fits the text classifier a ``configs/imdb_nb.py`` config describes, prints a classification
report and writes metrics, a confusion matrix and the model to the workdir (``experiment``);
``python -m jaxml.tasks.imdb_nb.table`` prints the table of variants (``table``); NBSVM / NB-LR (``model.kind =
nbsvm``, ``configs/imdb_nb.py:nbsvm``) has its hyperparameters chosen on a train holdout by ``select_nbsvm`` and is
compared with naive Bayes and scikit-learn by ``compare``; ``main`` is the launcher (``launch/naive_bayes.py``).
Results: README.md beside this file.
Naive Bayes does not train with the loop, so this package registers nothing."""
from __future__ import annotations

from jaxml.tasks.imdb_nb.experiment import classification_report, classify_text, fit, load_splits, run, validate_config

__all__ = ["classification_report", "classify_text", "fit", "load_splits", "run", "validate_config"]
