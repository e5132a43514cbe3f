"""``train_and_evaluate(config, workdir=None) -> Trained``: the one training loop.

``train_and_evaluate`` builds data, model, optax optimizer and driver, resumes from the latest good checkpoint
in ``<workdir>/checkpoints`` (batches are a pure function of (seed, step), so a resumed run ends bit-identical
to an uninterrupted one), runs ``run_loop`` and evaluates every split at the end; the final record in
``metrics.jsonl`` carries ``params_sha256``. Without a workdir the same run happens in memory, nothing written.

``run_loop`` is the loop body, over one or more ``periodic.Member`` runs (a vmapped population,
jaxml/tune/population.py, trains through it too): each step ``train_step``, then the periodic steps — log train
metrics every ``log_every`` steps, evaluate the ``eval_splits`` (default: all but "test") every ``eval_every``
steps (default once per epoch) with early stopping, checkpoint every ``checkpoint_every`` steps and at the end.
A non-finite loss or state is never checkpointed: the run stops with ``FloatingPointError`` naming the last good
checkpoint.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
from typing import Callable, Sequence

import jax

from jaxml import compile_cache, data, layout, models
from jaxml.models import views
from jaxml.train import config as config_lib
from jaxml.train import (
    drivers,
    evaluation,
    inputs,
    objectives,
    optim,
    periodic,
    precision,
    preemption,
    prefetch,
    profiling,
)
from jaxml.train import workdir as workdir_lib
from jaxml.train.checkpoint import Checkpointer, non_finite_leaves
from jaxml.train.metrics_log import read_records
from jaxml.train.state import initial_state
from jaxml.train.trained import Trained

log = logging.getLogger("jaxml")


def train_and_evaluate(config, workdir: str | None = None, *, splits=None,
                       allow_config_change: Sequence[str] = ()) -> Trained:
    """Train and evaluate ``config`` in ``workdir`` (None: in memory) on ``splits`` (a ``pipeline.Splits``;
    default: the dataset ``config.data.name``) and return the ``Trained`` run (``.final``: {split: metrics}).

    The workdir holds one run at a time (``<workdir>/LOCK``) and one config (``<workdir>/config.json``): resuming
    with another config fails listing the fields unless each is named in ``allow_config_change``. A finished run
    run again says so and returns its final state and records without writing anything."""
    config_lib.validate(config, num_devices=jax.device_count())
    compile_cache.enable()
    splits = data.build(config) if splits is None else splits
    model = build_model(config, splits.input_shape)           # a bad model field fails before anything is written
    inputs.check_splits(config, splits, model)                # targets that do not suit the model and objective too
    num_steps = total_steps(config, splits.train.steps_per_epoch)
    optimizer = run_optimizer(config, num_steps)
    driver = drivers.make(config, model, objectives.get(config.objective), optimizer)
    with open_workdir(config, workdir, allow_config_change) as ckpt:
        state = driver.init(functools.partial(initial_state, model, optimizer, int(config.seed)))
        state, meta, resumed_at = resume(ckpt, driver, state)
        if ckpt is not None:
            workdir_lib.record_config(workdir, config)        # an allowed change, once the stored state has restored
        member = periodic.Member(config, workdir, meta=meta)
        with contextlib.closing(member.log):                  # TensorBoard writers stop even when the run fails
            if resumed_at is not None and (resumed_at >= num_steps or member.stopped_early):
                if final := finished_records(workdir, resumed_at, splits):
                    log.warning("the run in %s already finished at step %d; nothing to do", workdir, resumed_at)
                    return Trained(model, driver.fetch(state), config, member.log.history(), final, workdir,
                                   member.stopped_early)
            member.log.truncate_after(resumed_at or 0)
            state, step = run_loop(config, [member], driver, state, splits,
                                   lambda s: splits.train.batch(s, shard=driver.shard),
                                   start=int(driver.fetch(state.step)), num_steps=num_steps, checkpointer=ckpt)
            host_state = finite_host_state(step, driver, state, ckpt)
            periodic.final_records(step, [member], driver, state, splits, int(config.data.eval_batch_size),
                                   [host_state.params])
            if ckpt is not None and ckpt.latest_step() != step:
                save_checkpoint(ckpt, step, driver, state, member.meta(), ckpt.latest_step(), host_state)
            periodic.run_reports(member, model, host_state, splits)
            return Trained(model, host_state, config, member.log.history(), member.final, workdir,
                           member.stopped_early)


def run_loop(config, members: list[periodic.Member], driver: drivers.Driver, state, splits,
             batch: Callable[[int], dict], *, start: int, num_steps: int, checkpointer: Checkpointer | None = None,
             desc: str = "train"):
    """The loop body: train ``state`` from step ``start`` to ``num_steps`` (or until no member is running), one
    ``driver.train_step(state, driver.put(batch(step)))`` per step, then the periodic steps of
    jaxml/train/periodic.py; with a ``checkpointer`` (a single run) it saves every ``config.train.checkpoint_every``
    steps or ``checkpoint_every_s`` seconds, whichever comes first, and at the end; a SIGTERM/SIGINT saves after
    the step in progress and raises ``preemption.Preempted``. Returns (state, the step it stopped at)."""
    util = profiling.Utilisation(config.get("precision", {}).get("compute_dtype", "float32"),
                                 layout.run_devices(config),
                                 per_device_program=layout.driver_backend(config) in ("shard_map", "pmap"))
    train_log = periodic.TrainLogger(splits.train.steps_per_epoch, utilisation=util, start=start)
    window = profiling.ProfileWindow(config.train.get("profile_steps", ()), members[0].workdir)
    evaluator = periodic.PeriodicEval(config, splits)
    log_every, eval_every = int(config.train.log_every), int(config.train.eval_every) or splits.train.steps_per_epoch
    ckpt_every, sync_every = int(config.train.checkpoint_every), int(config.train.sync_every)
    last_good = checkpointer.latest_step() if checkpointer is not None else None

    def check_finite() -> None:
        """A single run stops at once, naming its last good checkpoint; a population member just stops."""
        failed = next((m.failure for m in members if m.failure is not None), None)
        if failed is not None and driver.n_members is None:
            raise FloatingPointError(f"{failed}; stopping. {last_good_text(checkpointer, last_good)}")

    driver.active[:] = [m.running for m in members]
    pbar = periodic.progress_bar(config, num_steps, start, desc)
    step, acc = start, None
    preempt = preemption.watch(config, enabled=checkpointer is not None)
    batches = prefetch.Prefetcher(lambda s: driver.put(batch(s)), start, num_steps,
                                  int(config.train.get("prefetch", 0)))   # depth 0: built here, as it is used
    with contextlib.ExitStack() as closing:
        for resource in (preempt, batches, window, pbar):
            if resource is not None:
                closing.enter_context(contextlib.closing(resource))
        while step < num_steps and driver.active.any():
            # The step (its batch built ahead when config.train.prefetch > 0; its FLOPs counted once).
            window.at(step)
            placed = batches.get(step)
            util.measure(driver.train_step, state, placed)
            state, sums = driver.train_step(state, placed)
            step += 1
            acc = sums if acc is None else evaluation.add_sums(acc, sums)
            if periodic.due(step, sync_every):
                jax.block_until_ready(acc)
            if pbar is not None:
                pbar.update(1)
            last = step == num_steps
            # Train metrics: every log_every steps and at the last.
            if periodic.due(step, log_every) or last:
                records = train_log(step, members, driver.fetch(acc), driver.n_members)
                acc = None
                check_finite()
                if pbar is not None and records:
                    pbar.set_postfix(loss=f"{records[0]['loss']:.4g}")
            # Evaluation and early stopping: every eval_every steps (the final evaluation follows the loop).
            if periodic.due(step, eval_every) and not last and driver.active.any():
                evaluator(step, members, driver, state)
            driver.active[:] = [m.running for m in members]
            # Checkpoint: every checkpoint_every steps or checkpoint_every_s seconds, when the run stops or is
            # preempted (every process polls here, after every step: the stop is agreed across processes).
            decision = preempt.poll(step, periodic.due(step, ckpt_every) or not driver.active.any())
            if checkpointer is not None and decision.save:
                if acc is not None:
                    periodic.stop_nonfinite(step, members, evaluation.member_means(driver.fetch(acc),
                                                                                   driver.n_members))
                    check_finite()
                save_checkpoint(checkpointer, step, driver, state, members[0].meta(), last_good)
                last_good = step
            if decision.stop:
                raise preemption.Preempted(step)
    return state, step


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
    return precision.apply_policy(model, config.get("precision", {}).get("compute_dtype", "float32"))


def run_optimizer(config, num_steps: int):
    """The optax optimizer of ``config.optimizer`` for a run of ``num_steps``, with float16's dynamic loss scale
    when ``config.precision`` asks for it (jaxml/train/precision.py)."""
    return precision.wrap_optimizer(optim.make_optimizer(config.optimizer, num_steps), config.get("precision"))


def total_steps(config, steps_per_epoch: int) -> int:
    """``config.train.num_steps``, else ``num_epochs`` epochs; both 0 ("auto", ``fit`` sizes it): one epoch."""
    return int(config.train.num_steps) or max(int(config.train.num_epochs), 1) * steps_per_epoch


def last_good_text(checkpointer: Checkpointer | None, last_good: int | None) -> str:
    """What a stopped run can resume from."""
    if checkpointer is None:
        return "The run had no workdir: nothing was saved; lower config.optimizer.lr or add config.optimizer.grad_clip."
    if last_good is None:
        return (f"No checkpoint has been written to {checkpointer.directory} yet; lower config.optimizer.lr or add "
                "config.optimizer.grad_clip and start again.")
    return (f"The last good checkpoint, step {last_good} in {checkpointer.directory}, is intact; resume from it "
            "with a lower config.optimizer.lr (--allow_config_change=optimizer.lr), or start a new --workdir with "
            "config.optimizer.grad_clip.")


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
    optimizer = run_optimizer(config, max(int(config.train.num_steps), 1))
    driver = drivers.make(config, model, objectives.get(config.objective), optimizer)
    target = driver.init(functools.partial(initial_state, model, optimizer, int(config.seed)))
    saved, _ = ckpt.restore(step, driver.to_saveable(target))
    ckpt.close()
    return model, driver, driver.from_saveable(saved)


def evaluate(driver, state, arrays: dict, batch_size: int) -> dict:
    """Exact masked means of the objective's metrics over all examples of one split."""
    return periodic.evaluate(driver, state, arrays, batch_size)[0]


@contextlib.contextmanager
def open_workdir(config, workdir: str | None, allow_config_change: Sequence[str]):
    """The run's checkpointer in ``workdir``, locked and its config checked; closed once, on exit (None in memory)."""
    if workdir is None:
        yield None
        return
    os.makedirs(workdir, exist_ok=True)
    with workdir_lib.WorkdirLock(workdir):
        workdir_lib.check_config(workdir, config, allow_config_change)
        ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), max_to_keep=int(config.train.keep_checkpoints))
        with contextlib.closing(ckpt):
            yield ckpt


def resume(ckpt: Checkpointer | None, driver: drivers.Driver, state):
    """(state, checkpoint metadata, step) of the latest good checkpoint; (``state``, {}, None) without one."""
    saved, meta, latest = (None, {}, None) if ckpt is None else ckpt.restore_latest_good(driver.to_saveable(state))
    if latest is None:
        return state, meta, None
    log.info("resumed from checkpoint at step %d", latest)
    return driver.from_saveable(saved), meta, latest


def finite_host_state(step: int, driver: drivers.Driver, state, ckpt: Checkpointer | None):
    """The host copy of the final ``state``; ``FloatingPointError`` naming the last good checkpoint if not finite."""
    host_state = driver.fetch(state)
    if bad := non_finite_leaves(host_state):
        raise FloatingPointError(f"the state at step {step} is not finite ({', '.join(bad[:4])}). "
                                 f"{last_good_text(ckpt, None if ckpt is None else ckpt.latest_step())}")
    return host_state


def finished_records(workdir: str, step: int, splits) -> dict:
    """{split: final record} of a run that finished at ``step`` (its records there include ``params_sha256``);
    {} when it has not written them."""
    final = {}
    for rec in read_records(workdir):
        if rec.get("step") == step and (rec.get("split") in splits.eval or "params_sha256" in rec):
            final[rec["split"]] = rec
    return final if any("params_sha256" in r for r in final.values()) else {}


