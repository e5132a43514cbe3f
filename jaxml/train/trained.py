"""``Trained``: how every run ends — ``train_and_evaluate``, ``fit`` and each member of a vmapped population
(jaxml/tune/population.py) return one: the model, its final state, the config as run, the metric history and
the final records, with predictions, evaluation and plots from memory."""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from jaxml.train import custom, reports
from jaxml.train.state import TrainState, params_sha256

__all__ = ["Trained"]


@dataclasses.dataclass(frozen=True, eq=False)   # equal only to itself: compare .final or params_sha256()
class Trained:
    """A finished run: ``model``, ``state`` (the final ``TrainState``, host numpy), ``config`` (as run),
    ``history`` (every metric record, ``{"step", "split", metric: value}``, train records every
    ``config.train.log_every`` steps and eval records), ``final`` ({split: final metrics}), ``workdir``,
    ``stopped_early`` and ``failure`` (why a population member stopped training; None: it did not fail)."""
    model: Any
    state: TrainState
    config: Any
    history: list
    final: dict
    workdir: str | None = None
    stopped_early: bool = False
    failure: str | None = None
    _fns: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)   # jitted predict / evaluate

    @property
    def params(self):
        return self.state.params

    @property
    def model_state(self):
        return self.state.model_state

    @property
    def step(self) -> int:
        return int(self.state.step)

    def params_sha256(self) -> str:
        """The SHA-256 of the parameters (``jaxml.train.state.params_sha256``; the final record's ``params_sha256``)."""
        return params_sha256(self.params)

    def predict(self, x, *, batch_size: int | None = None):
        """Model outputs on ``x`` (eval mode: train=False, the trained model state), host numpy; batches of
        ``batch_size`` (default ``config.data.eval_batch_size``)."""
        size = batch_size or int(self.config.data.eval_batch_size)
        if ("predict", size) not in self._fns:
            self._fns["predict", size] = custom.predict_fn(self.model, batch_size=size)
        return self._fns["predict", size](self.params, self.model_state, x)

    def evaluate(self, arrays, *, batch_size: int | None = None) -> dict:
        """The objective's metrics (exact means) on ``arrays``, (x, y) or {"x", "y"}, in eval mode."""
        size = batch_size or int(self.config.data.eval_batch_size)
        if ("evaluate", size) not in self._fns:
            self._fns["evaluate", size] = custom.eval_fn(self.model, self.config.objective, batch_size=size)
        return self._fns["evaluate", size](self.params, self.model_state, arrays)

    def curves(self, split: str, metric: str) -> tuple[list, list]:
        """(steps, values) of ``metric`` in the ``split`` records of the history, to plot."""
        pts = [(r["step"], r[metric]) for r in self.history if r["split"] == split and metric in r]
        return [p[0] for p in pts], [p[1] for p in pts]

    def plot(self, metrics: Sequence[str] | None = None):
        """A matplotlib figure of the history: one panel per metric (default: loss / accuracy / mse, those logged),
        a line per split in the split's fixed colour — the ``curves`` report, drawn from memory."""
        return reports.curves_figure(self.history, metrics)
