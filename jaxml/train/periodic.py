"""The loop's periodic work as small pieces, shared by one run and by a vmapped population of runs.

Each run of a loop is a ``Member`` (one workdir, one metrics log, one early-stopping record); a single run is
a loop with one member. Metric sums come from the step as ``{name: sum, "n": count}`` — scalars, or arrays
with one entry per member — and ``evaluation.member_means`` turns them into one record of means per member.
"""
from __future__ import annotations

import math
import time

import jax
import numpy as np

from jaxml.train import config as config_lib
from jaxml.train import evaluation, progress, reports
from jaxml.train.metrics_log import MetricsLog
from jaxml.train.state import params_sha256


def due(step: int, every: int) -> bool:
    """True at every ``every``-th step (never when ``every`` is 0)."""
    return every > 0 and step % every == 0


def evaluate(driver, state, arrays: dict, batch_size: int) -> list[dict]:
    """Exact masked means of the objective's metrics over all examples of one split, one record per member."""
    sums = evaluation.eval_sums(driver.eval_step, state.params, state.model_state, arrays, batch_size,
                                put=driver.put, shard=driver.shard)
    return evaluation.member_means(driver.fetch(sums), driver.n_members)


class EarlyStopping:
    """Stop when the eval metric ``cfg.metric`` has not improved by ``cfg.min_delta`` for ``cfg.patience``
    evaluations (``cfg.mode`` "min" or "max"); its record travels in checkpoint metadata."""

    def __init__(self, cfg, best: float | None = None, bad: int = 0):
        self.cfg, self.best, self.bad = cfg, best, int(bad)

    def update(self, value: float) -> bool:
        """Record an eval value; True when patience is exhausted."""
        sign = 1.0 if self.cfg.mode == "min" else -1.0
        if self.best is None or sign * (self.best - value) > self.cfg.min_delta:
            self.best, self.bad = value, 0
        else:
            self.bad += 1
        return self.bad >= self.cfg.patience

    def meta(self) -> dict:
        return {"es_best": self.best, "es_bad": self.bad}


class Member:
    """One run in a loop: its config, workdir, metrics log, early stopping and how it ended; ``workdir=None``:
    a run in memory (its records in ``log.history()``, no file written)."""

    def __init__(self, config, workdir: str | None, *, meta: dict | None = None, tensorboard: bool = True):
        meta = meta or {}
        self.config, self.workdir = config, workdir
        self.log = MetricsLog(workdir, tensorboard=tensorboard)
        self.stopper = EarlyStopping(config.train.early_stopping, meta.get("es_best"), meta.get("es_bad", 0))
        self.stopped_early = bool(meta.get("stopped_early", False))
        self.failure: str | None = None       # why the member stopped training, when its loss turned non-finite
        self.steps: int | None = None         # the step it stopped at (None: it ran to the end)
        self.final: dict = {}

    @property
    def running(self) -> bool:
        return not self.stopped_early and self.failure is None

    def meta(self) -> dict:
        return {"stopped_early": self.stopped_early, **self.stopper.meta()}


def stop_nonfinite(step: int, members: list[Member], means: list[dict]) -> None:
    """Stop every running member whose mean objective in ``means`` is not finite."""
    for member, rec in zip(members, means):
        if member.running and not math.isfinite(rec["objective"]):
            member.failure, member.steps = f"non-finite loss ({rec['objective']}) by step {step}", step


class TrainLogger:
    """Every ``log_every`` steps (and at the last): one ``train`` record per running member with the means
    since the last record, the epoch and examples/s; a non-finite objective stops that member instead.

    ``steps_in_window`` is the number of steps those means cover: ``log_every``, except for the last record of a
    run that ends off a boundary and for the first record after resuming at a step ``s`` that is not a multiple
    of ``log_every`` (the steps from ``s`` to the next boundary: the steps before ``s`` ran in the earlier
    process, whose sums were not saved)."""

    def __init__(self, steps_per_epoch: int, *, utilisation=None, start: int = 0):
        self.steps_per_epoch, self.t0 = steps_per_epoch, time.time()
        self.utilisation, self.last_step = utilisation, start    # profiling.Utilisation: step time, TFLOP/s, MFU

    def __call__(self, step: int, members: list[Member], host_sums: dict, n_members: int | None) -> list[dict]:
        counts = np.atleast_1d(np.asarray(host_sums["n"], np.float64))
        elapsed, self.t0 = max(time.time() - self.t0, 1e-9), time.time()
        window = step - self.last_step
        timing = {} if self.utilisation is None else self.utilisation.fields(window, elapsed)
        self.last_step = step
        means = evaluation.member_means(host_sums, n_members)
        stop_nonfinite(step, members, means)
        records = []
        for i, (member, rec) in enumerate(zip(members, means)):
            if member.running:
                rec["objective"] = rec.pop("objective")
                rec["epoch"] = step / self.steps_per_epoch
                rec["steps_in_window"] = window
                rec["examples_per_s"] = counts[i] / elapsed
                rec.update(timing)
                records.append(member.log.write(step, "train", rec))
        return records


class PeriodicEval:
    """Every ``eval_every`` steps: each periodic split evaluated, a record per running member, and early
    stopping on ``config.train.early_stopping`` (metric, split)."""

    def __init__(self, config, splits):
        self.splits, self.batch_size = splits, int(config.data.eval_batch_size)
        self.names = list(config.train.eval_splits) or [n for n in splits.eval if n != "test"]
        for name in self.names:
            if name not in splits.eval:
                raise config_lib.ConfigError(f"config.train.eval_splits: no split {name!r}; have {sorted(splits.eval)}")
        self.es = config.train.early_stopping
        self.es_split = self.es.split or next(iter(self.names), "")

    def __call__(self, step: int, members: list[Member], driver, state) -> None:
        for name in self.names:
            for member, rec in zip(members, evaluate(driver, state, self.splits.eval[name], self.batch_size)):
                if not member.running:
                    continue
                member.log.write(step, name, rec)
                if self.es.metric and name == self.es_split:
                    if self.es.metric not in rec:
                        raise config_lib.ConfigError(
                            f"config.train.early_stopping.metric {self.es.metric!r} is not reported on split "
                            f"{name!r}; available: {sorted(rec)}")
                    if member.stopper.update(rec[self.es.metric]):
                        member.stopped_early, member.steps = True, step
                        member.log.write(step, "train", {"early_stopped": 1.0, "best": member.stopper.best})


def final_records(step: int, members: list[Member], driver, state, splits, batch_size: int,
                  member_params: list) -> None:
    """Every split evaluated once more (the test split last: its record carries ``params_sha256``, the hash
    of the member's parameters), written at the step each member stopped; failed members get none."""
    names = sorted(splits.eval, key=lambda n: n == "test")
    evals = {name: evaluate(driver, state, splits.eval[name], batch_size) for name in names}
    for i, member in enumerate(members):
        if member.failure is not None:
            continue
        at = step if member.steps is None else member.steps
        sha = params_sha256(member_params[i])
        for j, name in enumerate(names):
            rec = dict(evals[name][i])
            if j == len(names) - 1:
                rec["params_sha256"] = sha
            member.final[name] = member.log.write(at, name, rec)
        if not names:
            member.final["train"] = member.log.write(at, "train", {"params_sha256": sha})


def run_reports(member: Member, model, host_state, splits) -> None:
    """The end-of-run reports ``member.config.reports`` names, into the member's workdir (none without one:
    reports write files)."""
    if member.workdir is None:
        return
    ctx = reports.Context(config=member.config, workdir=member.workdir, model=model, state=host_state,
                          splits=splits, final=member.final, log=member.log)
    for name in member.config.reports:
        reports.REPORTS[name](ctx)


def progress_bar(config, total: int, initial: int, desc: str, *, file=None):
    """On process 0 when ``config.train.progress_bar`` (else None): a tqdm bar when ``file`` (default stderr) is a
    terminal or in a notebook, else a ``progress.LineProgress`` printing one line every ``config.train.log_every``
    steps — a log gets lines, not a frame per step."""
    if not config.train.progress_bar or jax.process_index() != 0:
        return None
    return progress.make(total, initial, desc, every=int(config.train.log_every), file=file)
