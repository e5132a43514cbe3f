"""``train_and_evaluate(config, workdir)``: the one training loop.

It validates the config, builds data, model, objective, optax optimizer and driver, resumes from the
latest checkpoint in ``<workdir>/checkpoints`` (the data position is the step itself — batches are a
pure function of (seed, step) — so a resumed run ends bit-identical to an uninterrupted one), runs
the jitted ``train_step``, logs train metrics every ``log_every`` steps, evaluates the
``eval_splits`` (default: all but "test") every ``eval_every`` steps (default once per epoch), and every split at the end, checkpoints every ``checkpoint_every`` steps and at
the end, stops early on a stalled eval metric, and refuses to checkpoint a non-finite loss: the run
stops with ``FloatingPointError`` and the last good checkpoint stays intact. The final record in
``metrics.jsonl`` carries ``params_sha256``.
"""
from __future__ import annotations

import logging
import math
import os
import time

import jax
import jax.numpy as jnp

from jaxml import data, models
from jaxml.data import pipeline
from jaxml.models import views
from jaxml.train import config as config_lib, drivers, objectives, optim, reports
from jaxml.train.checkpoint import Checkpointer
from jaxml.train.metrics_log import MetricsLog
from jaxml.train.state import TrainState, params_sha256

log = logging.getLogger("jaxml")


def build_model(config, input_shape):
    """The Model named by ``config.model.name``, with the input size taken from the data; with
    ``config.model.test_views`` = 4 or 8 its evaluation averages over that many rotated/mirrored views
    (jaxml/models/views.py; the objective says how its outputs map back)."""
    hyper = {k: v for k, v in config.model.to_dict().items() if k not in ("name", "test_views")}
    for k, v in hyper.items():
        if isinstance(v, list):
            hyper[k] = tuple(v)
    if config.model.name in ("mlp", "cnn"):
        hyper.setdefault("input_shape", tuple(input_shape))
    elif config.model.name == "gru":
        hyper.setdefault("input_features", int(input_shape[-1]))
    try:
        model = models.get(config.model.name, **hyper)
    except TypeError as e:
        raise config_lib.ConfigError(f"config.model: {e}") from None
    n_views = config.model.get("test_views", 1)
    if n_views != 1:
        if n_views not in views.VIEW_COUNTS:
            raise config_lib.ConfigError(f"config.model.test_views must be one of {views.VIEW_COUNTS}, got {n_views!r}")
        try:
            model = views.view_averaged(model, n_views, objectives.view_maps(config.objective),
                                        heads=hyper.get("heads") or {"out": hyper.get("num_outputs", 0)})
        except ValueError as e:
            raise config_lib.ConfigError(str(e)) from None
    return model


def _mean_metrics(sums: dict) -> dict:
    n = max(float(sums.get("n", 0.0)), 1.0)
    return {k: float(v) / n for k, v in sums.items() if k != "n"}


def evaluate(driver, state, arrays: dict, batch_size: int) -> dict:
    """Exact masked means of the objective's metrics over all examples of one split."""
    total = None
    for batch in pipeline.eval_batches(arrays, batch_size, shard=driver.shard):
        sums = driver.eval_step(state.params, state.model_state, driver.put(batch))
        total = sums if total is None else jax.tree.map(jnp.add, total, sums)
    return _mean_metrics(driver.fetch(total))


class _EarlyStopping:
    def __init__(self, cfg, meta: dict):
        self.cfg, self.best, self.bad = cfg, meta.get("es_best"), int(meta.get("es_bad", 0))

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


def _initial_state(config, model, optimizer) -> TrainState:
    params = model.init(jax.random.key(config.seed))
    return TrainState(jnp.zeros((), jnp.int32), params, model.init_state(), optimizer.init(params))


def restore_trained(config, workdir: str, input_shape, step: int | None = None):
    """(model, driver, state) of the run ``config`` trained in ``workdir``, its checkpoint at ``step``
    (default: the latest) restored under the config's driver — to score a finished run on new data:
    ``evaluate(driver, state, arrays, batch_size)``."""
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"))
    step = ckpt.latest_step() if step is None else step
    if step is None:
        raise FileNotFoundError(f"no checkpoint in {ckpt.directory}: train the run first")
    model = build_model(config, input_shape)
    optimizer = optim.make_optimizer(config.optimizer, max(int(config.train.num_steps), 1))
    driver = drivers.make(config, model, objectives.get(config.objective), optimizer)
    target = driver.init(lambda: _initial_state(config, model, optimizer))
    saved, _ = ckpt.restore(step, driver.to_saveable(target))
    ckpt.close()
    return model, driver, driver.from_saveable(saved)


def train_and_evaluate(config, workdir: str) -> dict:
    """Train and evaluate ``config`` in ``workdir``; returns {split: metrics} of the final evaluation."""
    config_lib.validate(config, num_devices=jax.device_count())
    os.makedirs(workdir, exist_ok=True)
    splits = data.build(config)
    model = build_model(config, splits.input_shape)
    objective = objectives.get(config.objective)
    spe = splits.train.steps_per_epoch
    total_steps = int(config.train.num_steps) or int(config.train.num_epochs) * spe
    optimizer = optim.make_optimizer(config.optimizer, total_steps)
    driver = drivers.make(config, model, objective, optimizer)
    eval_every = int(config.train.eval_every) or spe
    ckpt_every = int(config.train.checkpoint_every)

    state = driver.init(lambda: _initial_state(config, model, optimizer))
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), max_to_keep=int(config.train.keep_checkpoints))
    mlog = MetricsLog(workdir)
    meta = {"stopped_early": False}
    if (latest := ckpt.latest_step()) is not None:
        saved, meta = ckpt.restore(latest, driver.to_saveable(state))
        state = driver.from_saveable(saved)
        mlog.truncate_after(latest)
        log.info("resumed from checkpoint at step %d", latest)
    stopper = _EarlyStopping(config.train.early_stopping, meta)
    periodic = list(config.train.eval_splits) or [n for n in splits.eval if n != "test"]
    for name in periodic:
        if name not in splits.eval:
            raise config_lib.ConfigError(f"config.train.eval_splits: no split {name!r}; have {sorted(splits.eval)}")
    es = config.train.early_stopping
    es_split = es.split or next(iter(periodic), "")

    start = int(driver.fetch(state.step))
    last_good = latest
    acc, t0 = None, time.time()
    pbar = None
    if config.train.progress_bar and jax.process_index() == 0:
        from tqdm.auto import tqdm
        pbar = tqdm(total=total_steps, initial=start, desc="train", unit="step", dynamic_ncols=True)

    def check_finite(sums, step):
        value = float(sums["objective"])
        if not math.isfinite(value):
            raise FloatingPointError(
                f"non-finite loss ({value}) by step {step}; stopping. The last good checkpoint "
                f"(step {last_good}) in {ckpt.directory} is intact; lower config.optimizer.lr or add "
                f"config.optimizer.grad_clip.")

    step = start
    try:
        while step < total_steps and not meta.get("stopped_early", False):
            state, sums = driver.train_step(state, driver.put(splits.train.batch(step, shard=driver.shard)))
            step += 1
            acc = sums if acc is None else jax.tree.map(jnp.add, acc, sums)
            if step % int(config.train.sync_every) == 0:
                jax.block_until_ready(acc)
            if pbar is not None:
                pbar.update(1)
            last = step == total_steps
            if step % int(config.train.log_every) == 0 or last:
                host = driver.fetch(acc)
                check_finite(host, step)
                rec = _mean_metrics(host)
                rec["objective"] = rec.pop("objective")
                rec["epoch"] = step / spe
                rec["examples_per_s"] = host["n"] / max(time.time() - t0, 1e-9)
                t0 = time.time()
                mlog.write(step, "train", rec)
                if pbar is not None:
                    pbar.set_postfix(loss=f"{rec['loss']:.4g}")
                acc = None
            if step % eval_every == 0 and not last:
                for name in periodic:
                    rec = evaluate(driver, state, splits.eval[name], config.data.eval_batch_size)
                    mlog.write(step, name, rec)
                    if es.metric and name == es_split:
                        if es.metric not in rec:
                            raise config_lib.ConfigError(
                                f"config.train.early_stopping.metric {es.metric!r} is not reported on split "
                                f"{name!r}; available: {sorted(rec)}")
                        if stopper.update(rec[es.metric]):
                            meta["stopped_early"] = True
                            mlog.write(step, "train", {"early_stopped": 1.0, "best": stopper.best})
            if (ckpt_every and step % ckpt_every == 0) or meta.get("stopped_early", False):
                if acc is not None:
                    check_finite(driver.fetch(acc), step)
                meta.update(stopper.meta())
                ckpt.save(step, driver.to_saveable(state), meta)
                last_good = step
    finally:
        if pbar is not None:
            pbar.close()

    # Final evaluation, checkpoint and reports.
    final = {}
    names = sorted(splits.eval, key=lambda n: n == "test")          # the test split last: it carries the hash
    sha = params_sha256(driver.fetch(state.params))
    for i, name in enumerate(names):
        rec = evaluate(driver, state, splits.eval[name], config.data.eval_batch_size)
        if i == len(names) - 1:
            rec["params_sha256"] = sha
        final[name] = mlog.write(step, name, rec)
    if not names:
        final["train"] = mlog.write(step, "train", {"params_sha256": sha})
    if ckpt.latest_step() != step:
        meta.update(stopper.meta())
        ckpt.save(step, driver.to_saveable(state), meta)
    ckpt.close()
    ctx = reports.Context(config=config, workdir=workdir, model=model, state=driver.fetch(state), splits=splits,
                          final=final, log=mlog)
    for name in config.reports:
        reports.REPORTS[name](ctx)
    mlog.close()
    return final
