"""``train_and_evaluate(config, workdir=None)``: the one training loop.

It validates the config, builds data, model, objective, optax optimizer and driver, resumes from the
latest checkpoint in ``<workdir>/checkpoints`` (the data position is the step itself — batches are a
pure function of (seed, step) — so a resumed run ends bit-identical to an uninterrupted one), runs
the jitted ``train_step``, logs train metrics every ``log_every`` steps, evaluates the ``eval_splits``
(default: all but "test") every ``eval_every`` steps (default once per epoch) and every split at the end,
checkpoints every ``checkpoint_every`` steps and at the end, stops early on a stalled eval metric, and
refuses to checkpoint a non-finite loss: the run stops with ``FloatingPointError`` and the last good
checkpoint stays intact. The final record in ``metrics.jsonl`` carries ``params_sha256``. Without a workdir the
run is in memory: the same steps and records, nothing written (no log file, checkpoint or report).
``run_single`` is that run on given splits (``jaxml.train.fit`` passes the user's arrays), returning the trained
state and the history too.

``run_loop`` is that loop over one or more ``periodic.Member`` runs; a vmapped population
(jaxml/tune/population.py) trains through it with a population driver, and the same periodic pieces.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Callable, NamedTuple, Sequence

import jax

from jaxml import compile_cache, data, models
from jaxml.models import views
from jaxml.train import config as config_lib
from jaxml.train import drivers, inputs, objectives, optim, periodic
from jaxml.train import workdir as workdir_lib
from jaxml.train.checkpoint import Checkpointer, non_finite_leaves
from jaxml.train.metrics_log import read_records
from jaxml.train.state import TrainState

log = logging.getLogger("jaxml")


def build_model(config, input_shape):
    """The model ``config.model`` describes, built for the data's ``input_shape``; with
    ``config.model.test_views`` = 4 or 8 its evaluation averages over that many rotated/mirrored views
    (jaxml/models/views.py; the objective's registered view maps say how its outputs map back)."""
    try:
        model = models.from_config(config.model, input_shape)
    except TypeError as e:
        raise config_lib.ConfigError(f"config.model: {e}") from None
    n_views = config.model.get("test_views", 1)
    if n_views != 1:
        if n_views not in views.VIEW_COUNTS:
            raise config_lib.ConfigError(f"config.model.test_views must be one of {views.VIEW_COUNTS}, got {n_views!r}")
        hyper = models.hyperparameters(config.model)
        try:
            model = views.view_averaged(model, n_views, objectives.view_maps(config.objective),
                                        heads=hyper.get("heads") or {"out": hyper.get("num_outputs", 0)})
        except ValueError as e:
            raise config_lib.ConfigError(str(e)) from None
    return model


def total_steps(config, steps_per_epoch: int) -> int:
    return int(config.train.num_steps) or int(config.train.num_epochs) * steps_per_epoch


def initial_state(config, model, optimizer) -> TrainState:
    params = model.init(jax.random.key(config.seed))
    return TrainState(jax.numpy.zeros((), jax.numpy.int32), params, model.init_state(), optimizer.init(params))


def run_loop(config, members: list[periodic.Member], driver, state, splits, batch: Callable[[int], dict], *,
             start: int, num_steps: int, checkpointer: Checkpointer | None = None, desc: str = "train"):
    """Train ``state`` from step ``start`` to ``num_steps`` (or until no member is running) with
    ``driver.train_step(state, driver.put(batch(step)))``; the periodic work goes through the pieces of
    jaxml/train/periodic.py. With a ``checkpointer`` (a single run) it saves every
    ``config.train.checkpoint_every`` steps and at the end. Returns (state, the step it stopped at)."""
    train_log = periodic.TrainLogger(splits.train.steps_per_epoch)
    evaluator = periodic.PeriodicEval(config, splits)
    eval_every = int(config.train.eval_every) or splits.train.steps_per_epoch
    ckpt_every, sync_every = int(config.train.checkpoint_every), int(config.train.sync_every)
    last_good = checkpointer.latest_step() if checkpointer is not None else None

    def check_finite(step: int) -> None:
        """A single run stops at once, naming its last good checkpoint; a population member just stops."""
        failed = next((m.failure for m in members if m.failure is not None), None)
        if failed is not None and driver.n_members is None:
            raise FloatingPointError(f"{failed}; stopping. {last_good_text(checkpointer, last_good)}")

    def sync_running() -> None:
        driver.active[:] = [m.running for m in members]

    sync_running()
    pbar = periodic.progress_bar(config, num_steps, start, desc)
    step, acc = start, None
    try:
        while step < num_steps and driver.active.any():
            state, sums = driver.train_step(state, driver.put(batch(step)))
            step += 1
            acc = sums if acc is None else periodic.add_sums(acc, sums)
            if periodic.due(step, sync_every):
                jax.block_until_ready(acc)
            if pbar is not None:
                pbar.update(1)
            last = step == num_steps
            if periodic.due(step, int(config.train.log_every)) or last:
                records = train_log(step, members, driver.fetch(acc), driver.n_members)
                acc = None
                check_finite(step)
                if pbar is not None and records:
                    pbar.set_postfix(loss=f"{records[0]['loss']:.4g}")
            if periodic.due(step, eval_every) and not last and driver.active.any():
                evaluator(step, members, driver, state)
            sync_running()
            if checkpointer is not None and (periodic.due(step, ckpt_every) or not driver.active.any()):
                if acc is not None:
                    periodic.stop_nonfinite(step, members, periodic.member_means(driver.fetch(acc), driver.n_members))
                    check_finite(step)
                save_checkpoint(checkpointer, step, driver, state, members[0].meta(), last_good)
                last_good = step
    finally:
        if pbar is not None:
            pbar.close()
    return state, step


def last_good_text(checkpointer: Checkpointer | None, last_good: int | None) -> str:
    """What a stopped run can resume from."""
    if checkpointer is None:
        return "The run had no workdir: nothing was saved; lower config.optimizer.lr or add config.optimizer.grad_clip."
    if last_good is None:
        return (f"No checkpoint has been written to {checkpointer.directory} yet; lower config.optimizer.lr or add "
                "config.optimizer.grad_clip and start again.")
    return (f"The last good checkpoint, step {last_good} in {checkpointer.directory}, is intact; lower "
            "config.optimizer.lr or add config.optimizer.grad_clip and resume from it.")


def save_checkpoint(checkpointer: Checkpointer, step: int, driver, state, meta: dict, last_good: int | None,
                    host_state=None) -> None:
    """Save the driver's state at ``step``; a non-finite state is never saved: ``FloatingPointError`` names the
    last good checkpoint instead."""
    try:
        checkpointer.save(step, driver.to_saveable(state), meta,
                          host_state=driver.fetch(state) if host_state is None else host_state)
    except FloatingPointError as e:
        raise FloatingPointError(f"{e}. {last_good_text(checkpointer, last_good)}") from None


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
    target = driver.init(lambda: initial_state(config, model, optimizer))
    saved, _ = ckpt.restore(step, driver.to_saveable(target))
    ckpt.close()
    return model, driver, driver.from_saveable(saved)


def evaluate(driver, state, arrays: dict, batch_size: int) -> dict:
    """Exact masked means of the objective's metrics over all examples of one split."""
    return periodic.evaluate(driver, state, arrays, batch_size)[0]


def finished_records(workdir: str, step: int, splits) -> dict:
    """{split: final record} of a run that finished at ``step`` (its records there include ``params_sha256``);
    {} when it has not written them."""
    final = {}
    for rec in read_records(workdir):
        if rec.get("step") == step and (rec.get("split") in splits.eval or "params_sha256" in rec):
            final[rec["split"]] = rec
    return final if any("params_sha256" in r for r in final.values()) else {}


def train_and_evaluate(config, workdir: str | None = None, *, allow_config_change: Sequence[str] = ()) -> dict:
    """Train and evaluate ``config`` in ``workdir``; returns {split: metrics} of the final evaluation.

    The workdir holds one run at a time (``<workdir>/LOCK``) and one config (``<workdir>/config.json``): resuming
    with another config fails listing the fields unless each is named in ``allow_config_change``. A finished run
    run again says so and returns its final records without writing anything. ``workdir=None``: the same run in
    memory, nothing written (``jaxml.train.fit`` also returns its parameters and history)."""
    config_lib.validate(config, num_devices=jax.device_count())
    compile_cache.enable()
    return run_single(config, data.build(config), workdir, allow_config_change=allow_config_change).final


class Finished(NamedTuple):
    """How ``run_single`` ended: the model, the host copy of the final ``TrainState``, {split: final record}, every
    metric record of the run ({"step", "split", metric: value}) and the step it stopped at."""
    model: Any
    state: TrainState
    final: dict
    history: list
    step: int


def run_single(config, splits, workdir: str | None = None, *, allow_config_change: Sequence[str] = ()) -> Finished:
    """Train the validated ``config`` on ``splits`` (a ``pipeline.Splits``) through ``run_loop``: in ``workdir``
    (locked, its config checked, checkpointed and resumed as ``train_and_evaluate`` describes) or, with
    ``workdir=None``, in memory without writing a file."""
    model = build_model(config, splits.input_shape)           # a bad model field fails before anything is written
    inputs.check_splits(config, splits, model)                # targets that do not suit the model and objective too
    if workdir is None:
        return _train(config, None, splits, model)
    os.makedirs(workdir, exist_ok=True)
    with workdir_lib.WorkdirLock(workdir):
        workdir_lib.check_config(workdir, config, allow_config_change)
        return _train(config, workdir, splits, model)


def _train(config, workdir: str | None, splits, model) -> Finished:
    num_steps = total_steps(config, splits.train.steps_per_epoch)
    optimizer = optim.make_optimizer(config.optimizer, num_steps)
    driver = drivers.make(config, model, objectives.get(config.objective), optimizer)
    state = driver.init(lambda: initial_state(config, model, optimizer))
    ckpt = None if workdir is None else Checkpointer(os.path.join(workdir, "checkpoints"),
                                                     max_to_keep=int(config.train.keep_checkpoints))
    member = None
    try:
        saved, meta, latest = (None, {}, None) if ckpt is None else ckpt.restore_latest_good(driver.to_saveable(state))
        if ckpt is not None:
            workdir_lib.record_config(workdir, config)   # an allowed change, once the stored state has restored
        member = periodic.Member(config, workdir, meta=meta)
        if latest is not None:
            state = driver.from_saveable(saved)
            log.info("resumed from checkpoint at step %d", latest)
            if latest >= num_steps or member.stopped_early:
                if final := finished_records(workdir, latest, splits):
                    print(f"jaxml: the run in {workdir} already finished at step {latest}; nothing to do")
                    return Finished(model, driver.fetch(state), final, member.log.history(), latest)
        member.log.truncate_after(latest or 0)
        start = int(driver.fetch(state.step))
        state, step = run_loop(config, [member], driver, state, splits,
                               lambda s: splits.train.batch(s, shard=driver.shard),
                               start=start, num_steps=num_steps, checkpointer=ckpt)
        host_state = driver.fetch(state)
        if bad := non_finite_leaves(host_state):
            raise FloatingPointError(f"the state at step {step} is not finite ({', '.join(bad[:4])}). "
                                     f"{last_good_text(ckpt, None if ckpt is None else ckpt.latest_step())}")
        periodic.final_records(step, [member], driver, state, splits, int(config.data.eval_batch_size),
                               [host_state.params])
        if ckpt is not None:
            if ckpt.latest_step() != step:
                save_checkpoint(ckpt, step, driver, state, member.meta(), ckpt.latest_step(), host_state)
            ckpt.close()
        periodic.run_reports(member, model, host_state, splits)
        return Finished(model, host_state, member.final, member.log.history(), step)
    finally:
        if ckpt is not None:
            ckpt.close()
        if member is not None:
            member.log.close()                        # TensorBoard writers stop even when the run fails
