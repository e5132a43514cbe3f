"""Training: state, steps, drivers, checkpoints and the one loop; the public entry points:

- ``base_config()`` -> the default ConfigDict to start from; ``ConfigError`` names a bad field.
- ``fit(config, *, data=None, workdir=None, progress=None) -> Trained``: train on ``{split: (x, y)}`` arrays (or
  the registered dataset ``config.data.name``), in memory or in a workdir; ``Trained`` has ``params``,
  ``model_state``, ``history``, ``final``, ``predict(x)``, ``evaluate((x, y))``, ``plot()``.
- ``train_and_evaluate(config, workdir=None) -> Trained``: the same loop for launch scripts (``.final``: {split:
  metrics}); every way of running returns a ``Trained`` (jaxml/train/trained.py).
- A loop of your own: ``init_state(model, optimizer, seed=)``, ``train_step_fn(model, objective, optimizer)``,
  ``eval_fn(model, objective)``, ``predict_fn(model)`` (jaxml/train/custom.py); ``make_optimizer(config.optimizer,
  total_steps)`` builds the optax optimizer a config describes.
"""
from jaxml.train.config import ConfigError, base_config
from jaxml.train.custom import eval_fn, init_state, objective_fn, predict_fn, train_step_fn
from jaxml.train.fit import Trained, fit
from jaxml.train.loop import train_and_evaluate
from jaxml.train.optim import make_optimizer
from jaxml.train.state import TrainState, params_sha256

__all__ = ["ConfigError", "TrainState", "Trained", "base_config", "eval_fn", "fit", "init_state", "make_optimizer",
           "objective_fn", "params_sha256", "predict_fn", "train_and_evaluate", "train_step_fn"]
