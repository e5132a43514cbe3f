"""The learning-rate range test (Smith 2017, "Cyclical learning rates"; fastai's ``lr_find``).

One training run from the config's initial params in which step t (t = 0 .. steps-1) uses

    lr_t = min_lr * (max_lr / min_lr) ** (t / (steps - 1))              (geometric growth)

and records the training objective L_t of its batch (before the update). The curve is smoothed by a
bias-corrected exponential moving average,

    a_t = beta * a_{t-1} + (1 - beta) * L_t,     S_t = a_t / (1 - beta ** (t + 1)),     a_{-1} = 0

and the run stops once S_t > diverge * min_{s <= t} S_s or L_t is not finite. S lags the loss by about
1 / (1 - beta) steps (1.5 decades of lr for 200 steps over 1e-5..1), which would push the suggestion
to too large an lr, so the suggestion uses a zero-lag curve: the Gaussian-weighted mean

    Z_t = sum_s w_ts L_s / sum_s w_ts,     w_ts = exp(-(t - s)^2 / (2 sigma^2)),   sigma = 5 % of the steps run

(renormalised at the ends, so it stays an average there). The suggestion is the lr where Z falls
fastest: argmin_t dZ/d(log lr) (``np.gradient``), skipping the first ``skip_start`` and the last
``skip_end`` points of the run, as fastai does. The optimizer is the
config's (its schedule replaced by the sweep); the lr enters through ``population.member_optimizer``.
"""
from __future__ import annotations

import copy
import functools
import json
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxml import data
from jaxml.train import config as config_lib
from jaxml.train import objectives
from jaxml.train import step as step_lib
from jaxml.train.loop import build_model
from jaxml.train.state import TrainState, run_once
from jaxml.tune import population


class LRRangeResult(NamedTuple):
    lrs: np.ndarray          # f64[n] learning rates of the steps run
    losses: np.ndarray       # f64[n] training objective of each step's batch
    smoothed: np.ndarray     # f64[n] zero-lag smoothing Z of ``losses`` (Gaussian-weighted mean)
    suggested_lr: float      # steepest descent of ``smoothed`` vs log lr
    min_loss_lr: float       # the lr at the smallest smoothed loss (often too large to train with)
    diverged: bool           # the run stopped before ``steps`` because the loss blew up


def lr_schedule(min_lr: float, max_lr: float, steps: int) -> np.ndarray:
    """f64[steps]: min_lr ... max_lr, geometric."""
    if not 0 < min_lr < max_lr:
        raise ValueError(f"need 0 < min_lr < max_lr, got min_lr={min_lr}, max_lr={max_lr}")
    if steps < 10:
        raise ValueError(f"the LR range test needs steps >= 10, got {steps}")
    return min_lr * (max_lr / min_lr) ** (np.arange(steps) / (steps - 1))


def smooth(losses, beta: float = 0.98) -> np.ndarray:
    """S: the bias-corrected EMA of ``losses`` (see the module docstring); causal, so it lags."""
    if not 0 <= beta < 1:
        raise ValueError(f"smoothing beta must be in [0, 1), got {beta}")
    out, avg = np.empty(len(losses)), 0.0
    for t, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * float(loss)
        out[t] = avg / (1 - beta ** (t + 1))
    return out


def smooth_zero_lag(losses, sigma: float) -> np.ndarray:
    """Z: the Gaussian-weighted mean of ``losses`` with width ``sigma`` steps (module docstring);
    symmetric, so it does not shift where the loss falls."""
    losses = np.asarray(losses, float)
    t = np.arange(len(losses))
    w = np.exp(-0.5 * ((t[:, None] - t[None, :]) / max(float(sigma), 1e-9)) ** 2)
    return (w @ losses) / w.sum(axis=1)


def suggest(lrs, smoothed, *, skip_start: int = 10, skip_end: int = 5) -> float:
    """The lr of the steepest negative slope of ``smoothed`` against log lr."""
    lrs, smoothed = np.asarray(lrs, float), np.asarray(smoothed, float)
    lo, hi = min(skip_start, len(lrs) // 10), len(lrs) - min(skip_end, len(lrs) // 20)
    if hi - lo < 3:
        raise ValueError(f"only {len(lrs)} usable points (the loss diverged early?); lower min_lr or run more steps")
    slope = np.gradient(smoothed[lo:hi], np.log(lrs[lo:hi]))
    return float(lrs[lo + int(np.argmin(slope))])


def lr_range_test(config, *, min_lr: float = 1e-5, max_lr: float = 1.0, steps: int = 200, beta: float = 0.98,
                  diverge: float = 4.0) -> LRRangeResult:
    """Run the range test for ``config`` on one device (``config.parallel`` is ignored)."""
    lrs = lr_schedule(min_lr, max_lr, steps)
    if diverge <= 1:
        raise ValueError(f"the divergence factor must be > 1, got {diverge}")
    config_lib.validate(config)
    splits = data.build(config)
    model = build_model(config, splits.input_shape)
    opt_cfg = copy.deepcopy(config.optimizer)
    opt_cfg.schedule, opt_cfg.warmup_steps = "constant", 0
    optimizer = population.member_optimizer(opt_cfg, steps)
    step = step_lib.make_train_step(model, objectives.get(config.objective), optimizer)
    train_step = jax.jit(functools.partial(step, hp=step_lib.run_hparams(config)), donate_argnums=0)
    params = run_once(lambda: model.init(jax.random.key(config.seed)))
    state = TrainState(jnp.zeros((), jnp.int32), params, model.init_state(), optimizer.init(params))

    losses, best, avg, diverged = [], math.inf, 0.0, False
    for t, lr in enumerate(lrs):
        state = state._replace(opt_state=population.set_lr(state.opt_state, lr))
        state, sums = train_step(state, jax.device_put(splits.train.batch(t)))
        loss = float(sums["objective"]) / max(float(sums["n"]), 1.0)
        losses.append(loss)
        avg = beta * avg + (1 - beta) * loss
        s = avg / (1 - beta ** (t + 1))
        if not math.isfinite(loss) or s > diverge * best:
            diverged = True
            break
        best = min(best, s)
    if diverged:
        losses = losses[:-1]          # the step that blew up is not part of the curve
    losses = np.asarray(losses)
    smoothed = smooth_zero_lag(losses, max(2.0, 0.05 * len(losses)))
    lrs = lrs[:len(losses)]
    return LRRangeResult(lrs, losses, smoothed, suggest(lrs, smoothed), float(lrs[int(np.argmin(smoothed))]), diverged)


def plot(result: LRRangeResult, path: str, *, title: str = "LR range test") -> None:
    """PNG of ``figure(result)`` at ``path``."""
    figure(result, title=title).savefig(path, dpi=100)


def figure(result: LRRangeResult, *, title: str = "LR range test"):
    """A matplotlib ``Figure`` of the raw and smoothed loss against lr (log axis), the suggestion marked; built
    without pyplot (a notebook shows it inline as a cell's value)."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot(result.lrs, result.losses, color="0.75", lw=1, label="loss")
    ax.plot(result.lrs, result.smoothed, color="C0", lw=2, label="smoothed")
    i = int(np.argmin(np.abs(result.lrs - result.suggested_lr)))
    ax.axvline(result.suggested_lr, color="C3", ls="--", lw=1)
    ax.plot([result.suggested_lr], [result.smoothed[i]], "o", color="C3", label=f"suggested {result.suggested_lr:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate"), ax.set_ylabel("training loss"), ax.set_title(title)
    finite = result.smoothed[np.isfinite(result.smoothed)]
    if finite.size:
        top = max(finite[0], np.percentile(finite, 95)) * 1.2
        ax.set_ylim(min(finite.min(), result.losses.min()) * 0.95 if finite.min() > 0 else None, top)
    ax.grid(alpha=0.3, which="both"), ax.legend()
    fig.tight_layout()
    return fig


def to_json(result: LRRangeResult, path: str, **extra) -> None:
    with open(path, "w") as f:
        json.dump({"suggested_lr": result.suggested_lr, "min_loss_lr": result.min_loss_lr,
                   "diverged": result.diverged, "steps_run": len(result.lrs), **extra,
                   "lrs": result.lrs.tolist(), "losses": result.losses.tolist(),
                   "smoothed": result.smoothed.tolist()}, f, indent=1)
