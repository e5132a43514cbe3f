"""Vmapped population training: N models that differ only in shape-free hyperparameters train as one.

Member i of a population has its own learning rate lr_i, penalties l1_i, l2_i, seed s_i and dropout
rates r_i (f32[L], one per dropout layer of the MLP/CNN spec: ``model.dropout`` of a widths-built MLP,
or the ``dropout:R`` tokens of ``model.layers``); every other config field is shared. Member i minimises,
through the same ``jaxml.train.step.make_train_step`` one run uses,

    L_i(θ_i) = Σ_b m_b ℓ(f(θ_i; x_b), y_b) / Σ_b m_b  +  l1_i Σ|w|  +  l2_i Σ w²       (kernels w only)
    θ_i ← θ_i + lr_i · u_i(∇L_i)        u_i: the config's optax update at unit learning rate

with θ_i initialised from ``key(s_i)``, dropout keys ``fold_in(key(s_i), step)`` and the batch order
of seed s_i. Every optimizer in ``jaxml/train/optim.py`` (and every schedule) is linear in its learning rate,
so ``lr · update(lr=1)`` is the run the member would have alone; ``member_optimizer`` carries lr_i in
the optax state through ``optax.inject_hyperparams``.

Shapes: params, model state and optimizer state are stacked along a leading member axis
(``w: f32[N, ...]``); ``PopulationHparams`` fields are f32[N] / int32[N]; a batch is shared (``x: f32[B, ...]``)
when all members share one seed and stacked (``x: f32[N, B, ...]``) otherwise. One jitted
``jax.vmap`` of the train step trains all N (a second build of it, compiled once a member stops, freezes the
stopped ones), inside the one training loop (``jaxml.train.loop.run_loop``, with ``PopulationDriver``); one
vmapped eval step evaluates all N.

Not vmappable: anything that changes shapes (widths, batch size, whether a dropout layer exists)
and anything that changes the optimizer's kind.
"""
from __future__ import annotations

import json
import os
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxml import compile_cache, data
from jaxml.data import pipeline
from jaxml.models import mlp, sequential
from jaxml.train import config as config_lib
from jaxml.train import loop, objectives, optim, periodic
from jaxml.train import step as step_lib
from jaxml.train.state import TrainState
from jaxml.train.trained import Trained

POPULATION_FIELDS = ("optimizer.lr", "regularization.l1", "regularization.l2", "seed", "model.dropout",
                     "model.layers")  # model.layers: only its dropout rates (check_population)


class PopulationHparams(NamedTuple):
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


# A program that runs once per member (the init) is compiled at LLVM -O1 on CPU: XLA:CPU spends most of the
# init's compile time optimising threefry, which -O1 skips. The bits are the same as the default build's
# (integer hashing and IEEE float arithmetic, no fast-math; tests/test_population.py checks bit equality).
_RUN_ONCE_OPTIONS = {"xla_backend_optimization_level": 1}


def _compile_run_once(fn, *example_args):
    lowered = jax.jit(fn).lower(*example_args)
    return lowered.compile(compiler_options=_RUN_ONCE_OPTIONS if jax.default_backend() == "cpu" else None)


def init_population(model, optimizer, hp: PopulationHparams) -> TrainState:
    """Stacked TrainState: member i's params from ``model.init(key(seed_i))``, its optimizer state holding
    lr_i. The init is compiled once (at -O1 on CPU, see ``_RUN_ONCE_OPTIONS``) and called per member, then
    stacked on the host (XLA compiles a vmapped threefry init several times slower than the per-member one)."""
    seeds = np.asarray(hp.seed, np.int32)
    init = _compile_run_once(lambda seed: model.init(jax.random.key(seed)), seeds[0])
    params = jax.device_get([init(s) for s in seeds])
    params = jax.tree.map(lambda *leaves: np.stack(leaves), *params)

    def rest(params, lr):
        return TrainState(jnp.zeros((), jnp.int32), params, model.init_state(), set_lr(optimizer.init(params), lr))
    lrs = np.asarray(hp.lr, np.float32)
    return _compile_run_once(jax.vmap(rest), params, lrs)(params, lrs)


def make_population_step(model, objective, optimizer, *, shared_batch: bool, use_l1: bool = True,
                         use_l2: bool = True):
    """``step(states, hp, batch, active[N]) -> (states, sums[N])``: ``jaxml.train.step.make_train_step``
    vmapped over the members, with l1/l2/seed (and dropout rates, when ``hp.dropout`` is given) traced per
    member; ``batch`` unstacked when ``shared_batch``, else stacked along axis 0. An inactive member (stopped
    early or diverged) keeps its state unchanged. ``states`` is donated.

    Two jitted programs of the same vmapped step: while every member is active (``active`` is read on the
    host), one without the freeze ``where(active, new, old)`` — that select keeps the old state alive next
    to the new one, which costs XLA a copy of the stacked optimizer state and a second pass over it; once
    a member stops, one with it (compiled then, on first use)."""
    train_step = step_lib.make_train_step(model, objective, optimizer)
    batch_axis = None if shared_batch else 0

    def member_step(state: TrainState, hp: PopulationHparams, batch: dict):
        return train_step(state, batch, step_lib.Hparams(hp.seed, hp.l1 if use_l1 else None,
                                                          hp.l2 if use_l2 else None, hp.dropout))

    def frozen_member_step(state: TrainState, hp: PopulationHparams, batch: dict, active):
        new, sums = member_step(state, hp, batch)
        return jax.tree.map(lambda n, o: jnp.where(active, n, o), new, state), sums

    all_active = jax.jit(jax.vmap(member_step, in_axes=(0, 0, batch_axis)), donate_argnums=0)
    some_frozen = jax.jit(jax.vmap(frozen_member_step, in_axes=(0, 0, batch_axis, 0)), donate_argnums=0)

    def step(states: TrainState, hp: PopulationHparams, batch: dict, active):
        if bool(np.all(np.asarray(active))):
            return all_active(states, hp, batch)
        return some_frozen(states, hp, batch, jnp.asarray(active))

    return step


def make_population_eval(model, objective):
    """Jitted ``eval(params[N], model_state[N], batch) -> metric sums[N]`` (one shared batch)."""
    return jax.jit(jax.vmap(step_lib.make_eval_step(model, objective), in_axes=(0, 0, None)))


class PopulationDriver:
    """A ``jaxml.train.drivers.Driver`` whose state and metric sums carry a leading member axis: the loop trains
    every member whose ``active`` entry is set and freezes the others. One device; a population keeps no
    checkpoints, but its stacked state is its own saveable layout."""

    def __init__(self, model, objective, optimizer, hp: PopulationHparams, *, shared_batch: bool):
        self.n_members, self.hp, self.shard = len(np.asarray(hp.seed)), hp, (0, 1)
        self.model, self.optimizer = model, optimizer
        self.active = np.ones(self.n_members, bool)
        self._step = make_population_step(model, objective, optimizer, shared_batch=shared_batch,
                                          use_l1=bool(np.any(hp.l1 != 0)), use_l2=bool(np.any(hp.l2 != 0)))
        self.eval_step = make_population_eval(model, objective)

    def init(self, make_state=None):
        """The stacked first state, ``init_population`` of the members' hyperparameters (each member's seed and
        learning rate replace the one run's that ``make_state`` would build, so it is not called)."""
        del make_state
        return init_population(self.model, self.optimizer, self.hp)

    def train_step(self, states, batch):
        return self._step(states, self.hp, batch, self.active)

    def to_saveable(self, state):
        return state

    def from_saveable(self, state):
        return state

    def put(self, batch: dict) -> dict:
        return jax.device_put(batch)

    def fetch(self, tree):
        return jax.device_get(tree)


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


def population_hparams(configs) -> PopulationHparams:
    """The members' hyperparameters: lr, l1, l2, seed, and their dropout rates when these differ."""

    def f32(path):
        return jnp.asarray([float(_field(c, path)) for c in configs], jnp.float32)

    rates = [member_spec(c)[1] for c in configs]
    return PopulationHparams(f32("optimizer.lr"), f32("regularization.l1"), f32("regularization.l2"),
                   jnp.asarray([int(c.seed) for c in configs], jnp.int32),
                   jnp.asarray(rates, jnp.float32) if len(set(rates)) > 1 else None)


def train_population(configs: Sequence, workdirs: Sequence[str]) -> list[dict]:
    """Train the members ``configs`` (differing only in POPULATION_FIELDS) as one vmapped population.

    The one training loop (``jaxml.train.loop.run_loop``) with a ``PopulationDriver``: per member, train
    records every ``log_every`` steps, the periodic eval splits every ``eval_every`` steps with its own early
    stopping, a final evaluation of every split (the last record carrying ``params_sha256``) in
    ``<workdir_i>/metrics.jsonl``, and the config's reports. No checkpoints: a population is not resumable
    and starts afresh. A member whose loss turns non-finite is frozen and reported as failed. Returns a
    ``Trained`` per member (``failure``: why it stopped training, None if it did not; ``step``: where it stopped).
    """
    if len(configs) != len(workdirs):
        raise ValueError(f"{len(configs)} configs but {len(workdirs)} workdirs")
    check_population(configs)
    compile_cache.enable()   # as train_and_evaluate: a repeated sweep skips XLA compilation
    base = configs[0]
    splits = data.build(base)
    model = loop.build_model(base, splits.input_shape)
    num_steps = loop.total_steps(base, splits.train.steps_per_epoch)
    optimizer = member_optimizer(base.optimizer, num_steps)
    hp = population_hparams(configs)
    seeds = [int(c.seed) for c in configs]
    sources = train_sources(splits, configs)
    driver = PopulationDriver(model, objectives.get(base.objective), optimizer, hp, shared_batch=len(sources) == 1)

    def batch(step):
        if len(sources) == 1:
            return sources[seeds[0]].batch(step)
        per_seed = {s: src.batch(step) for s, src in sources.items()}
        return {k: np.stack([per_seed[s][k] for s in seeds]) for k in per_seed[seeds[0]]}

    members = []
    for c, w in zip(configs, workdirs):
        os.makedirs(w, exist_ok=True)
        if jax.process_index() == 0 and os.path.exists(os.path.join(w, "metrics.jsonl")):
            os.remove(os.path.join(w, "metrics.jsonl"))        # a population run starts afresh
        members.append(periodic.Member(c, w, tensorboard=False))
    states, step = loop.run_loop(base, members, driver, driver.init(), splits, batch,
                                 start=0, num_steps=num_steps, desc=f"population x{len(configs)}")
    host = jax.device_get(states)
    per_member = [jax.tree.map(lambda a, i=i: a[i], host) for i in range(len(configs))]
    periodic.final_records(step, members, driver, states, splits, int(base.data.eval_batch_size),
                           [m.params for m in per_member])
    for member, state in zip(members, per_member):
        if member.failure is None:
            periodic.run_reports(member, model, state, splits)
        member.log.close()
    return [Trained(model, state, m.config, m.log.history(), m.final, m.workdir, m.stopped_early, m.failure)
            for m, state in zip(members, per_member)]
