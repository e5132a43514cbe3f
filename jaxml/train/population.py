"""Vmapped population training: N models that differ only in shape-free hyperparameters train as one.

Member i of a population has its own learning rate lr_i, penalties l1_i, l2_i, seed s_i and dropout
rates r_i (f32[L], one per dropout layer of the MLP/CNN spec: ``model.dropout`` of a widths-built MLP,
or the ``dropout:R`` tokens of ``model.layers``); every other config field is shared. Member i minimises, exactly as ``train/step.py`` does for one model,

    L_i(θ_i) = Σ_b m_b ℓ(f(θ_i; x_b), y_b) / Σ_b m_b  +  l1_i Σ|w|  +  l2_i Σ w²       (kernels w only)
    θ_i ← θ_i + lr_i · u_i(∇L_i)        u_i: the config's optax update at unit learning rate

with θ_i initialised from ``key(s_i)``, dropout keys ``fold_in(key(s_i), step)`` and the batch order
of seed s_i. Every optimizer in ``train/optim.py`` (and every schedule) is linear in its learning rate,
so ``lr · update(lr=1)`` is the run the member would have alone; ``member_optimizer`` carries lr_i in
the optax state through ``optax.inject_hyperparams``.

Shapes: params, model state and optimizer state are stacked along a leading member axis
(``w: f32[N, ...]``); ``Hparams`` fields are f32[N] / int32[N]; a batch is shared (``x: f32[B, ...]``)
when all members share one seed and stacked (``x: f32[N, B, ...]``) otherwise. One jitted
``jax.vmap`` of the member step trains all N; one vmapped eval step evaluates all N.

Not vmappable: anything that changes shapes (widths, batch size, whether a dropout layer exists)
and anything that changes the optimizer's kind.
"""
from __future__ import annotations

import json
import math
import os
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxml import data
from jaxml.models import mlp, sequential
from jaxml.data import pipeline
from jaxml.train import config as config_lib, objectives, optim, reports, step as step_lib
from jaxml.train.loop import _EarlyStopping, _mean_metrics, build_model
from jaxml.train.metrics_log import MetricsLog
from jaxml.train.state import TrainState, params_sha256

POPULATION_FIELDS = ("optimizer.lr", "regularization.l1", "regularization.l2", "seed", "model.dropout",
                     "model.layers")  # model.layers: only its dropout rates (check_population)


class Hparams(NamedTuple):
    """Per-member hyperparameters, each of shape [N] (a scalar inside the vmapped member step)."""
    lr: jax.Array     # f32
    l1: jax.Array     # f32
    l2: jax.Array     # f32
    seed: jax.Array   # int32
    dropout: jax.Array | None = None  # f32[N, L]: the rates of the L dropout layers (None: the spec's own)


def member_spec(config) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """(layer spec with dropout rates blanked, dropout rates) of an MLP/CNN config; ((), ()) for other models."""
    m = config.model
    if m.name == "cnn" or (m.name == "mlp" and m.get("layers")):
        return sequential.split_dropout(tuple(m.layers))
    if m.name == "mlp":
        return sequential.split_dropout(mlp.spec_from_widths(tuple(m.get("widths", ())),
                                                             batch_norm=bool(m.get("batch_norm", False)),
                                                             dropout=float(m.get("dropout", 0.0))))
    return (), ()


def unsupported_fields(fields: Sequence[str]) -> list[str]:
    """The fields of ``fields`` a population cannot vary (they need separate runs)."""
    # model.layers may hold dropout rates only, but a sweep over it usually changes shapes: run separately.
    return [f for f in fields if f not in POPULATION_FIELDS or f == "model.layers"]


def member_optimizer(opt_cfg, total_steps: int) -> optax.GradientTransformation:
    """The config's optimizer at unit learning rate, then ``scale(learning_rate)`` — with the learning
    rate held in the state (``state.hyperparams["learning_rate"]``) so it can differ per member or
    per step. Equals ``optim.make_optimizer(opt_cfg)`` up to float rounding (tests/test_population)."""
    unit = ml_collections.ConfigDict(opt_cfg.to_dict())
    unit.lr = 1.0
    base = optim.make_optimizer(unit, total_steps)
    return optax.inject_hyperparams(lambda learning_rate: optax.chain(base, optax.scale(learning_rate)))(
        learning_rate=float(opt_cfg.lr))


def set_lr(opt_state, lr):
    """``opt_state`` of ``member_optimizer`` with its learning rate replaced by ``lr`` (traceable)."""
    return opt_state._replace(hyperparams={**opt_state.hyperparams, "learning_rate": jnp.asarray(lr, jnp.float32)})


def init_population(model, optimizer, hp: Hparams) -> TrainState:
    """Stacked TrainState: member i's params from ``model.init(key(seed_i))``, its optimizer state
    holding lr_i. The init is jitted once and called per member, then stacked: XLA compiles a vmapped
    threefry init several times slower than the per-member one (measured 10 s vs 3 s here)."""
    init = jax.jit(lambda seed: model.init(jax.random.key(seed)))
    params = [init(s) for s in np.asarray(hp.seed)]
    params = jax.tree.map(lambda *leaves: jnp.stack(leaves), *params)

    def rest(params, lr):
        return TrainState(jnp.zeros((), jnp.int32), params, model.init_state(), set_lr(optimizer.init(params), lr))
    return jax.jit(jax.vmap(rest))(params, hp.lr)


def make_member_step(model, objective, optimizer, *, use_l1: bool = True, use_l2: bool = True):
    """``member_step(state, hp, batch, active) -> (state, metric sums)`` for ONE member (scalars in hp);
    the maths of ``step.make_train_step`` with l1/l2/seed (and dropout rates, when ``hp.dropout`` is
    given) traced. An inactive member (stopped early or diverged) keeps its state unchanged."""
    def member_step(state: TrainState, hp: Hparams, batch: dict, active):
        key = jax.random.fold_in(jax.random.key(hp.seed), state.step)
        mask = batch.get("mask")
        if mask is None:
            mask = jnp.ones((batch["x"].shape[0],), jnp.float32)

        def loss_fn(params):
            rates = None if hp.dropout is None else {"dropout_rates": hp.dropout}
            return step_lib.step_loss(model, objective, params, state.model_state, batch, key, mask,
                             l1=hp.l1 if use_l1 else None, l2=hp.l2 if use_l2 else None, apply_kwargs=rates)

        (loss, (sums, new_model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        new = TrainState(state.step + 1, optax.apply_updates(state.params, updates), new_model_state, opt_state)
        sums["objective"] = loss * sums["n"]
        return jax.tree.map(lambda n, o: jnp.where(active, n, o), new, state), sums

    return member_step


def make_population_step(model, objective, optimizer, *, shared_batch: bool, use_l1: bool = True,
                         use_l2: bool = True):
    """Jitted ``step(states, hp, batch, active[N]) -> (states, sums[N])``: all members in one call
    (``batch`` unstacked when ``shared_batch``, else stacked along axis 0). ``states`` is donated."""
    member = make_member_step(model, objective, optimizer, use_l1=use_l1, use_l2=use_l2)
    return jax.jit(jax.vmap(member, in_axes=(0, 0, None if shared_batch else 0, 0)), donate_argnums=0)


def make_population_eval(model, objective):
    """Jitted ``eval(params[N], model_state[N], batch) -> metric sums[N]`` (one shared batch)."""
    return jax.jit(jax.vmap(step_lib.make_eval_step(model, objective), in_axes=(0, 0, None)))


def _field(config, path: str):
    value = config
    for part in path.split("."):
        value = value[part]
    return value


def check_population(configs: Sequence) -> None:
    """Raise ConfigError unless every config validates and they differ only in POPULATION_FIELDS."""
    if not configs:
        raise config_lib.ConfigError("a population needs at least one config")
    for c in configs:
        config_lib.validate(c)
        if not 0 <= int(c.seed) < 2 ** 31:
            raise config_lib.ConfigError(f"config.seed must be in [0, 2**31) for a population, got {c.seed}")
    def shared(c):
        d = c.to_dict()
        for path in POPULATION_FIELDS:
            *heads, last = path.split(".")
            node = d
            for h in heads:
                node = node[h]
            node.pop(last, None)
        d["model"]["spec"] = list(member_spec(c)[0])  # the layers, dropout rates blanked, must agree
        return json.dumps(d, sort_keys=True, default=str)
    ref = shared(configs[0])
    for i, c in enumerate(configs[1:], 1):
        if shared(c) != ref:
            a, b = configs[0].to_dict(), c.to_dict()
            diff = sorted(_diff_paths(a, b) - set(POPULATION_FIELDS)) or [
                "model.layers / model.dropout beyond dropout rates (a dropout layer present in one member only)"]
            raise config_lib.ConfigError(
                f"population member {i} differs from member 0 in {diff}; a population may only vary "
                f"{list(POPULATION_FIELDS)} — run such trials separately")


def _diff_paths(a, b, prefix="") -> set:
    out = set()
    for k in set(a) | set(b):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out |= _diff_paths(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.add(f"{prefix}{k}")
    return out


def train_sources(splits, configs) -> dict:
    """One training source per distinct seed: the data order is a function of (seed, step)."""
    base_seed = int(configs[0].seed)
    sources = {base_seed: splits.train}
    for c in configs:
        s = int(c.seed)
        if s in sources:
            continue
        if isinstance(splits.train, pipeline.ArraySource):
            src = splits.train
            sources[s] = pipeline.ArraySource(src.arrays, src.batch_size, seed=s, shuffle=src.shuffle)
        else:
            sources[s] = data.build(c).train
    return sources


def train_population(configs: Sequence, workdirs: Sequence[str]) -> list[dict]:
    """Train the members ``configs`` (differing only in POPULATION_FIELDS) as one vmapped population.

    Mirrors ``train_and_evaluate`` per member: train records every ``log_every`` steps, the periodic
    eval splits every ``eval_every`` steps with per-member early stopping, a final evaluation of every
    split (the last record carrying ``params_sha256``) in ``<workdir_i>/metrics.jsonl``, and the
    config's reports. No checkpoints: a population is not resumable. A member whose loss turns
    non-finite is frozen and reported as failed. Returns per member
    ``{"final": {split: record}, "status": "ok" | "failed: ...", "steps": int, "stopped_early": bool}``.
    """
    if len(configs) != len(workdirs):
        raise ValueError(f"{len(configs)} configs but {len(workdirs)} workdirs")
    check_population(configs)
    base, n = configs[0], len(configs)
    splits = data.build(base)
    model = build_model(base, splits.input_shape)
    objective = objectives.get(base.objective)
    spe = splits.train.steps_per_epoch
    total_steps = int(base.train.num_steps) or int(base.train.num_epochs) * spe
    optimizer = member_optimizer(base.optimizer, total_steps)
    f32 = lambda path: jnp.asarray([float(_field(c, path)) for c in configs], jnp.float32)  # noqa: E731
    rates = [member_spec(c)[1] for c in configs]
    hp = Hparams(f32("optimizer.lr"), f32("regularization.l1"), f32("regularization.l2"),
                 jnp.asarray([int(c.seed) for c in configs], jnp.int32),
                 jnp.asarray(rates, jnp.float32) if len(set(rates)) > 1 else None)
    seeds = [int(c.seed) for c in configs]
    sources = train_sources(splits, configs)
    shared = len(sources) == 1
    step_fn = make_population_step(model, objective, optimizer, shared_batch=shared,
                                   use_l1=bool(np.any(hp.l1 != 0)), use_l2=bool(np.any(hp.l2 != 0)))
    eval_fn = make_population_eval(model, objective)
    states = init_population(model, optimizer, hp)

    logs = []
    for w in workdirs:
        os.makedirs(w, exist_ok=True)
        if jax.process_index() == 0 and os.path.exists(os.path.join(w, "metrics.jsonl")):
            os.remove(os.path.join(w, "metrics.jsonl"))        # a population run starts afresh
        logs.append(MetricsLog(w, tensorboard=False))
    es = base.train.early_stopping
    periodic = list(base.train.eval_splits) or [s for s in splits.eval if s != "test"]
    for name in periodic:
        if name not in splits.eval:
            raise config_lib.ConfigError(f"config.train.eval_splits: no split {name!r}; have {sorted(splits.eval)}")
    es_split = es.split or next(iter(periodic), "")
    stoppers = [_EarlyStopping(es, {}) for _ in configs]
    active = np.ones(n, bool)
    status, stop_step = ["ok"] * n, [total_steps] * n
    stopped_early = [False] * n

    def evaluate(arrays):
        total = None
        for batch in pipeline.eval_batches(arrays, int(base.data.eval_batch_size)):
            sums = eval_fn(states.params, states.model_state, jax.device_put(batch))
            total = sums if total is None else jax.tree.map(jnp.add, total, sums)
        host = jax.device_get(total)
        return [_mean_metrics({k: v[i] for k, v in host.items()}) for i in range(n)]

    def get_batch(step):
        if shared:
            return jax.device_put(sources[seeds[0]].batch(step))
        per_seed = {s: src.batch(step) for s, src in sources.items()}
        return jax.device_put({k: np.stack([per_seed[s][k] for s in seeds]) for k in per_seed[seeds[0]]})

    pbar = None
    if base.train.progress_bar and jax.process_index() == 0:
        from tqdm.auto import tqdm
        pbar = tqdm(total=total_steps, desc=f"population x{n}", unit="step", dynamic_ncols=True)
    eval_every, log_every = int(base.train.eval_every) or spe, int(base.train.log_every)
    acc, step = None, 0
    try:
        while step < total_steps and active.any():
            states, sums = step_fn(states, hp, get_batch(step), jnp.asarray(active))
            step += 1
            acc = sums if acc is None else jax.tree.map(jnp.add, acc, sums)
            if step % int(base.train.sync_every) == 0:
                jax.block_until_ready(acc)
            if pbar is not None:
                pbar.update(1)
            last = step == total_steps
            if step % log_every == 0 or last:
                host = jax.device_get(acc)
                acc = None
                for i in np.flatnonzero(active):
                    rec = _mean_metrics({k: v[i] for k, v in host.items()})
                    if not math.isfinite(rec["objective"]):
                        active[i], stop_step[i] = False, step
                        status[i] = f"failed: non-finite loss ({rec['objective']}) by step {step}"
                        continue
                    rec["epoch"] = step / spe
                    logs[i].write(step, "train", rec)
            if step % eval_every == 0 and not last and active.any():
                for name in periodic:
                    recs = evaluate(splits.eval[name])
                    for i in np.flatnonzero(active):
                        logs[i].write(step, name, recs[i])
                        if es.metric and name == es_split:
                            if es.metric not in recs[i]:
                                raise config_lib.ConfigError(
                                    f"config.train.early_stopping.metric {es.metric!r} is not reported on split "
                                    f"{name!r}; available: {sorted(recs[i])}")
                            if stoppers[i].update(recs[i][es.metric]):
                                active[i], stop_step[i], stopped_early[i] = False, step, True
                                logs[i].write(step, "train", {"early_stopped": 1.0, "best": stoppers[i].best})
    finally:
        if pbar is not None:
            pbar.close()

    host_state = jax.device_get(states)
    members = [jax.tree.map(lambda a, i=i: a[i], host_state) for i in range(n)]
    names = sorted(splits.eval, key=lambda s: s == "test")
    results = [{"final": {}, "status": status[i], "steps": stop_step[i], "stopped_early": stopped_early[i]}
               for i in range(n)]
    evals = {name: evaluate(splits.eval[name]) for name in names}
    for i in range(n):
        if status[i] != "ok":
            continue
        sha = params_sha256(members[i].params)
        for j, name in enumerate(names):
            rec = dict(evals[name][i])
            if j == len(names) - 1:
                rec["params_sha256"] = sha
            results[i]["final"][name] = logs[i].write(stop_step[i], name, rec)
        if not names:
            results[i]["final"]["train"] = logs[i].write(stop_step[i], "train", {"params_sha256": sha})
        ctx = reports.Context(config=configs[i], workdir=workdirs[i], model=model, state=members[i],
                              splits=splits, final=results[i]["final"], log=logs[i])
        for name in configs[i].reports:
            reports.REPORTS[name](ctx)
    for lg in logs:
        lg.close()
    return results
