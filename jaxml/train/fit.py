"""``fit(config, data=..., workdir=None) -> Trained``: arrays in, a trained state, its history and predictions out.

    config = jaxml.train.base_config()
    config.model.name, config.model.widths = "mlp", (128,)
    config.train.num_steps = 500
    trained = jaxml.train.fit(config, data={"train": (x, y), "test": (xt, yt)})
    trained.final["test"]["accuracy"], trained.predict(xt).argmax(-1), trained.history[-1]

It is ``train_and_evaluate``'s run — the one loop, ``jaxml.train.loop.run_loop`` — on arrays given here
(``jaxml.data.from_arrays``: batch s a pure function of (config.seed, s)) instead of the registered dataset
``config.data.name``; without ``data`` it trains on that dataset. ``workdir=None``: in memory, nothing written
(no metrics file, checkpoint or report); with a workdir it locks, checkpoints and resumes bit-identically like
``train_and_evaluate``, the config recording the arrays' SHA-256 (``config.data.arrays_sha256``) so a workdir
cannot resume on other arrays.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any, Sequence

import jax

from jaxml import compile_cache
from jaxml import data as data_lib
from jaxml.train import config as config_lib
from jaxml.train import custom, loop, reports
from jaxml.train.state import TrainState, params_sha256

__all__ = ["Trained", "fit"]


@dataclasses.dataclass(frozen=True)
class Trained:
    """A finished run: ``model``, ``state`` (the final ``TrainState``, host numpy), ``config`` (as run),
    ``history`` (every metric record, ``{"step", "split", metric: value}``, train records every
    ``config.train.log_every`` steps and eval records), ``final`` ({split: final metrics}) and ``workdir``."""
    model: Any
    state: TrainState
    config: Any
    history: list
    final: dict
    workdir: str | None = None
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
        a line per split — the ``curves`` report, drawn from memory."""
        return reports.curves_figure(self.history, metrics)


def fit(config, *, data=None, workdir: str | None = None, progress: bool | None = None,
        allow_config_change: Sequence[str] = ()) -> Trained:
    """Train ``config`` (a ``base_config()`` ConfigDict; not modified) and return the ``Trained`` run.

    ``data``: ``{split: (x, y)}`` numpy arrays (or ``{split: {"x", "y", ...}}``), "train" required, every other
    split evaluated (periodically all but "test", every split at the end); it replaces ``config.data.name``
    (set to "arrays"), ``config.data.batch_size`` and ``config.seed`` still apply. ``workdir``: None for a run in
    memory; else checkpoints, ``metrics.jsonl``, reports and resumption as ``train_and_evaluate``.
    ``progress``: show the progress bar (default: ``config.train.progress_bar``; in a notebook a tqdm widget).
    Bad arrays raise ValueError naming the split and the problem; bad config fields ``ConfigError``."""
    config = copy.deepcopy(config)
    with config.unlocked():
        if progress is not None:
            config.train.progress_bar = bool(progress)
        if data is not None:
            arrays = data_lib.check_arrays(data)
            config.data.name = data_lib.ARRAYS
            config.data.arrays_sha256 = data_lib.arrays_sha256(arrays)
    config_lib.validate(config, num_devices=jax.device_count())
    compile_cache.enable()
    if data is None:
        splits = data_lib.build(config)
    else:
        splits = data_lib.from_arrays(arrays, batch_size=int(config.data.batch_size), seed=int(config.seed))
    done = loop.run_single(config, splits, workdir, allow_config_change=allow_config_change)
    return Trained(model=done.model, state=done.state, config=config, history=done.history, final=done.final,
                   workdir=workdir)
