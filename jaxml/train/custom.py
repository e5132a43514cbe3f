"""The loop's pieces for a training loop of your own (a notebook cell): the initial state, a jitted train step,
an evaluation and predictions, from (model, objective, optax optimizer), with nothing but public names.

    optimizer = optax.adam(1e-3)
    state = jaxml.train.init_state(model, optimizer, seed=0)
    step = jaxml.train.train_step_fn(model, "softmax_xent", optimizer, seed=0)
    source = jaxml.data.from_arrays({"train": (x, y)}, batch_size=128, seed=0).train
    for s in range(1000):
        state, metrics = step(state, source.batch(s))          # metrics: {"loss", "accuracy", "objective"} means
    print(jaxml.train.eval_fn(model, "softmax_xent")(state.params, state.model_state, {"x": xt, "y": yt}))

These are the functions ``jaxml.train.fit`` runs (jaxml/train/step.py's step, jitted as its one-device driver
does), so the same (model, optimizer, seed, batches) give the same parameters bit for bit. An ``objective`` is
a registered name (``jaxml.train.objectives``: "softmax_xent", "mse", "sigmoid_xent", a task's) or a function
``(outputs, batch) -> (loss f32[B], {metric: f32[B]})``.
"""
from __future__ import annotations

import functools
from typing import Callable

import jax
import numpy as np
import optax

from jaxml.data import pipeline
from jaxml.data.arrays import check_model_input, check_split
from jaxml.train import evaluation, objectives
from jaxml.train import step as step_lib
from jaxml.train.state import TrainState, initial_state, run_once

__all__ = ["eval_fn", "init_state", "objective_fn", "predict_fn", "train_step_fn"]


def objective_fn(objective: str | Callable) -> Callable:
    """The objective function of a registered name, or ``objective`` itself when it is callable."""
    if callable(objective):
        return objective
    return objectives.get(objective)


def init_state(model, optimizer: optax.GradientTransformation, *, seed: int = 0) -> TrainState:
    """``TrainState(step=0, params=model.init(key(seed)), model_state=model.init_state(), optimizer.init(params))``,
    built in one jitted program by the builder the loop's drivers run (``jaxml.train.state.initial_state``)."""
    return run_once(functools.partial(initial_state, model, optimizer, seed))


def train_step_fn(model, objective: str | Callable, optimizer: optax.GradientTransformation, *, seed: int = 0,
                  l1: float = 0.0, l2: float = 0.0, donate: bool = False):
    """A jitted ``step(state, batch) -> (state, metrics)``: one optax update on the masked mean loss of ``batch``
    ({"x", "y"[, "mask"]}, numpy or jax arrays) plus ``l1 * sum|w| + l2 * sum w^2``; the dropout key of step s is
    ``fold_in(key(seed), s)``. ``metrics``: the batch means of the objective's metrics and "objective" (the loss
    with penalties), as device scalars (no host sync). ``donate=True`` reuses the input state's memory (the
    state passed in is then deleted: keep only the returned one)."""
    hp = step_lib.Hparams(seed=int(seed), l1=float(l1) or None, l2=float(l2) or None)
    fn = jax.jit(functools.partial(step_lib.make_train_step(model, objective_fn(objective), optimizer), hp=hp),
                 donate_argnums=(0,) if donate else ())

    def step(state: TrainState, batch: dict):
        state, sums = fn(state, batch)
        return state, evaluation.means(sums)
    return step


def eval_fn(model, objective: str | Callable, *, batch_size: int = 1000):
    """A function ``evaluate(params, model_state, arrays) -> {metric: float}``: the objective's metrics on
    ``arrays`` ({"x", "y"} or (x, y)) in eval mode (train=False), exact means over all examples (batches of
    ``batch_size``, the last one padded and masked, so it compiles once)."""
    fn = jax.jit(step_lib.make_eval_step(model, objective_fn(objective)))

    def evaluate(params, model_state, arrays) -> dict:
        arrays = check_split("arrays", arrays)
        sums = evaluation.eval_sums(fn, params, model_state, arrays, min(batch_size, len(arrays["x"])))
        return evaluation.member_means(jax.device_get(sums), None)[0]
    return evaluate


def predict_fn(model, *, batch_size: int = 1000):
    """A function ``predict(params, model_state, x) -> outputs``: ``model.apply(params, x, state=model_state,
    train=False)[0]`` as host numpy (a pytree of them for a multi-head model), over batches of ``batch_size``
    (the last one padded, so it compiles once)."""
    fn = jax.jit(lambda params, model_state, xb: model.apply(params, xb, state=model_state, train=False)[0])

    def predict(params, model_state, x) -> np.ndarray:
        x = check_model_input("predict", x, lambda shape, dtype: jax.eval_shape(
            fn, params, model_state, jax.ShapeDtypeStruct((1, *shape), dtype)))
        outs = [jax.device_get(fn(params, model_state, b["x"]))
                for b in pipeline.eval_batches({"x": x}, min(batch_size, len(x)))]
        return jax.tree.map(lambda *a: np.concatenate(a)[:len(x)], *outs)
    return predict
