"""jaxml: a JAX research codebase in the functional style.

Models are pure functions with explicit parameters and state; one training loop runs every task; classical
kernels (K-means, naive Bayes) shard over a device mesh. Main entry points:

- ``jaxml.models.get(name, **kwargs)`` -> a ``Model`` with ``init(key)``, ``init_state()`` and
  ``apply(params, x, state=, train=, key=) -> (y, state)``; ``jaxml.models.summary(params)`` tabulates a pytree.
- ``jaxml.train.fit(config, data={"train": (x, y), "test": ...}, workdir=None) -> Trained``: train on your
  own arrays (or the config's dataset), in memory or in a workdir; ``Trained.params``, ``.history``, ``.final``,
  ``.predict(x)``, ``.evaluate((x, y))``, ``.plot()``. Start from ``jaxml.train.base_config()``.
- ``jaxml.train.train_and_evaluate(config, workdir=None)``: train, evaluate, checkpoint and resume one config.
- A loop of your own: ``jaxml.train.init_state``, ``train_step_fn``, ``eval_fn``, ``predict_fn``;
  ``jaxml.data.from_arrays`` serves batches as a pure function of (seed, step).
- ``jaxml.tune``: hyperparameter search, vmapped populations, the learning-rate range test.
- ``jaxml.kmeans.kmeans(x, k, ...)`` and ``jaxml.naive_bayes``: map-reduce kernels over a ``data`` mesh.
- ``jaxml.data`` (dataset registry and pipeline), ``jaxml.nn`` (layers, activations, initializers),
  ``jaxml.losses``, ``jaxml.metrics``, ``jaxml.parallel`` (meshes, shardings, multi-host start-up).
- ``jaxml.tasks.<task>``: each task's data, objectives and reports, registered when imported.
- Launchers: ``python launch/<name>.py``, ``python -m jaxml.cli.<name>`` or the ``jaxml-<name>`` console scripts.

Subpackages load on first attribute access (``jaxml.models``), so ``import jaxml`` itself imports nothing heavy.
"""
from __future__ import annotations

import importlib

__version__ = "0.2.0"

_SUBMODULES = ("data", "kmeans", "layout", "losses", "metrics", "models", "naive_bayes", "nn", "parallel", "tasks",
               "train", "tune")
__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")   # also binds it as an attribute of this package
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SUBMODULES))
