"""Population training: N models that differ only in shape-free hyperparameters train as one.

Member i of a population has its own learning rate lr_i, penalties l1_i, l2_i, seed s_i and dropout
rates r_i (f32[L], one per dropout layer of the MLP/CNN spec: ``model.dropout`` of a widths-built MLP,
or the ``dropout:R`` tokens of ``model.layers``); every other config field is shared. Member i minimises,
through the same ``jaxml.train.step.make_train_step`` one run uses,

    L_i(θ_i) = Σ_b m_b ℓ(f(θ_i; x_b), y_b) / Σ_b m_b  +  l1_i Σ|w|  +  l2_i Σ w²       (kernels w only)
    θ_i ← θ_i + lr_i · u_i(∇L_i)        u_i: the config's optax update at unit learning rate

with θ_i initialised from ``key(s_i)``, dropout keys ``fold_in(key(s_i), step)`` and the batch order
of seed s_i. Every optimizer (and schedule) in ``jaxml/train/optim.py`` is linear in its learning rate, so
``lr · update(lr=1)`` is the member's run alone; ``member_optimizer`` holds lr_i in the optax state.

Two layouts in the one training loop (``loop.run_loop`` with ``PopulationDriver``); ``PopulationHparams`` fields
are [N]; a batch is shared (``x: f32[B, ...]``) when all members share one seed, else stacked (``f32[N, B, ...]``).
``vmap``: the state stacked (``w: f32[N, ...]``), one jitted ``jax.vmap`` of the train step. ``loop``: a TrainState
of N-tuples, member i stepped on its own arrays by one jitted member step (compiled once, hyperparameters as
arguments): unbatched matmuls, as alone. ``auto`` loops on a CPU when a member step is big enough for XLA:CPU's
batched matmuls to cost more than N dispatches.

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
from jaxml.train.state import TrainState, run_once_options
from jaxml.train.trained import Trained

POPULATION_FIELDS = ("optimizer.lr", "regularization.l1", "regularization.l2", "seed", "model.dropout",
                     "model.layers")  # model.layers: only its dropout rates (check_population)
LAYOUTS = ("auto", "vmap", "loop")
LOOP_MIN_FLOPS = 50e6     # "auto" on CPU: a member step of at least this many FLOPs trains in the loop layout


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


def _compile_run_once(fn, *example_args):
    return jax.jit(fn, compiler_options=run_once_options()).lower(*example_args).compile()


def _member_params(model, hp: PopulationHparams) -> list:
    """Member i's params ``model.init(key(seed_i))``, one call per member of one init compiled once (at -O1 on CPU,
    ``jaxml.train.state.RUN_ONCE_OPTIONS``; XLA compiles a vmapped threefry init several times slower)."""
    seeds = np.asarray(hp.seed, np.int32)
    init = _compile_run_once(lambda seed: model.init(jax.random.key(seed)), seeds[0])
    return jax.device_get([init(s) for s in seeds])


def _rest_of_state(model, optimizer):
    def rest(params, lr):
        return TrainState(jnp.zeros((), jnp.int32), params, model.init_state(), set_lr(optimizer.init(params), lr))
    return rest


def init_population(model, optimizer, hp: PopulationHparams) -> TrainState:
    """Stacked TrainState: member i's params from ``model.init(key(seed_i))``, its optimizer state holding
    lr_i (the params stacked on the host, the rest built by one vmapped program)."""
    params = jax.tree.map(lambda *leaves: np.stack(leaves), *_member_params(model, hp))
    lrs = np.asarray(hp.lr, np.float32)
    return _compile_run_once(jax.vmap(_rest_of_state(model, optimizer)), params, lrs)(params, lrs)


def init_members(model, optimizer, hp: PopulationHparams) -> TrainState:
    """The member-major state of the ``loop`` layout: a TrainState whose every field is an N-tuple, entry i
    member i's own state, equal to ``init_population``'s row i (each member's arrays separate on the device)."""
    params = _member_params(model, hp)
    lrs = np.asarray(hp.lr, np.float32)
    rest = _compile_run_once(_rest_of_state(model, optimizer), params[0], lrs[0])
    return join_members([rest(p, lr) for p, lr in zip(params, lrs)])


def join_members(states: Sequence[TrainState]) -> TrainState:
    """N member TrainStates -> one TrainState of N-tuples (the ``loop`` layout)."""
    return TrainState(*(tuple(field) for field in zip(*states)))


def split_members(state: TrainState) -> list[TrainState]:
    """The inverse of ``join_members``."""
    return [TrainState(*fields) for fields in zip(*state)]


def _member_step(model, objective, optimizer, use_l1: bool, use_l2: bool):
    """One member's step ``(state, hp, batch) -> (state, sums)``: the one run's train step with l1/l2/seed (and
    dropout rates, when ``hp.dropout`` is given) taken from ``hp`` (traced)."""
    train_step = step_lib.make_train_step(model, objective, optimizer)

    def member_step(state: TrainState, hp: PopulationHparams, batch: dict):
        return train_step(state, batch, step_lib.Hparams(hp.seed, hp.l1 if use_l1 else None,
                                                          hp.l2 if use_l2 else None, hp.dropout))
    return member_step


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
    member_step = _member_step(model, objective, optimizer, use_l1, use_l2)
    batch_axis = None if shared_batch else 0

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


def _member_rows(tree, n: int) -> list:
    """Row i of every leaf, per member (host arrays: views)."""
    host = jax.device_get(tree)
    return [jax.tree.map(lambda a, i=i: a[i], host) for i in range(n)]


def member_batches(batch, seeds: Sequence[int], *, shared_batch: bool) -> list:
    """N member batches from a list of them (as given), a shared batch (the same dict N times) or a stacked one
    (its rows; one dict per distinct seed, as a member's batch is a function of its seed and the step)."""
    if isinstance(batch, (list, tuple)):
        return list(batch)
    if shared_batch:
        return [batch] * len(seeds)
    first = {}
    for i, s in enumerate(seeds):
        first.setdefault(s, i)
    rows = {s: {k: v[i] for k, v in batch.items()} for s, i in first.items()}
    return [rows[s] for s in seeds]


_stack_members = jax.jit(lambda trees: jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees))


def penalty_flags(hp: PopulationHparams) -> dict:
    """``use_l1`` / ``use_l2``: whether any member has that penalty (a step without it skips its term)."""
    return dict(use_l1=bool(np.any(np.asarray(hp.l1) != 0)), use_l2=bool(np.any(np.asarray(hp.l2) != 0)))


def jit_member_step(model, objective, optimizer, *, use_l1: bool, use_l2: bool):
    """The one-member step, jitted with its state donated: what the ``loop`` layout runs per member and what
    ``choose_layout`` counts FLOPs of. Passing this one function to both traces and lowers the step once (jit
    caches the lowering ``choose_layout`` made)."""
    return jax.jit(_member_step(model, objective, optimizer, use_l1, use_l2), donate_argnums=0)


def make_member_loop_step(model, objective, optimizer, *, shared_batch: bool, use_l1: bool = True,
                          use_l2: bool = True, member_step=None):
    """The ``loop`` layout of ``make_population_step``: the same step signature, ``states`` member-major
    (``init_members``), and member i stepped by one jitted member step (the vmapped one's member function,
    compiled once for every member: lr, seed, penalties and rates are its arguments) on its own state (donated)
    and batch, members one after another; an inactive member is skipped. Each member's matmuls are unbatched,
    as in its run alone; ``sums`` come back stacked ([N]; zeros for an inactive member). ``batch``: shared,
    stacked, or a list of N member batches (``member_batches``), each distinct one placed on the device once.
    ``member_step``: that jitted step (``jit_member_step``) when the caller already has it, else one is made."""
    one = member_step or jit_member_step(model, objective, optimizer, use_l1=use_l1, use_l2=use_l2)
    cache = {}

    def step(states: TrainState, hp: PopulationHparams, batch, active):
        if cache.get("hp") is not hp:                   # per-member hyperparameters, placed once
            cache.update(hp=hp, each=jax.device_put(_member_rows(hp, len(states.step))),
                         seeds=np.asarray(hp.seed).tolist(), zeros=None)
        rows = member_batches(batch, cache["seeds"], shared_batch=shared_batch)
        placed, new, sums = {}, [], []
        for i, state in enumerate(split_members(states)):
            if not bool(active[i]):
                new.append(state)
                sums.append(None)
                continue
            if id(rows[i]) not in placed:
                placed[id(rows[i])] = jax.device_put(rows[i])
            state, s = one(state, cache["each"][i], placed[id(rows[i])])
            new.append(state)
            sums.append(s)
        if cache["zeros"] is None and any(s is None for s in sums):
            i = int(np.argmin(np.asarray(active)))
            shapes = jax.eval_shape(one, new[i], cache["each"][i], rows[i])[1]
            cache["zeros"] = jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), shapes)
        return join_members(new), _stack_members([cache["zeros"] if s is None else s for s in sums])

    return step


def make_member_loop_eval(model, objective):
    """``eval(params, model_state, batch) -> metric sums[N]`` of the ``loop`` layout (``params``, ``model_state``:
    N-tuples), one jitted one-model eval step per member on the batch placed once."""
    one = jax.jit(step_lib.make_eval_step(model, objective))

    def eval_step(params, model_state, batch):
        placed = jax.device_put(batch)
        return _stack_members([one(p, s, placed) for p, s in zip(params, model_state)])
    return eval_step


def member_step_flops(model, objective, optimizer, hp: PopulationHparams, member_batch: dict,
                      member_step=None) -> float:
    """FLOPs of one member's train step on ``member_batch`` (XLA's cost analysis of the lowered, uncompiled step
    ``member_step``, default ``jit_member_step``'s), lowered with the avals the ``loop`` layout calls it with."""
    state = jax.eval_shape(lambda: _rest_of_state(model, optimizer)(model.init(jax.random.key(0)), np.float32(1)))
    member_step = member_step or jit_member_step(model, objective, optimizer, **penalty_flags(hp))
    cost = member_step.lower(state, _member_rows(hp, 1)[0], member_batch).cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float((cost or {}).get("flops", 0.0))


def check_layout(layout) -> None:
    """Raise ConfigError unless ``layout`` is one of LAYOUTS."""
    if layout not in LAYOUTS:
        raise config_lib.ConfigError(f"population layout must be one of {list(LAYOUTS)}, got {layout!r}")


def choose_layout(layout: str, model, objective, optimizer, hp: PopulationHparams, member_batch: dict,
                  member_step=None) -> str:
    """``layout`` ("vmap" or "loop") as given, or for "auto": "loop" on a CPU backend when one member's step
    costs at least ``LOOP_MIN_FLOPS`` (XLA:CPU runs batched matmuls slower than the members' own, while a small
    step is dominated by the N dispatches the loop pays), else "vmap". ``member_step``: the ``jit_member_step``
    the driver will run, so that counting its FLOPs lowers the step the loop layout then compiles."""
    check_layout(layout)
    if layout != "auto":
        return layout
    if jax.default_backend() != "cpu":
        return "vmap"
    flops = member_step_flops(model, objective, optimizer, hp, member_batch, member_step)
    return "loop" if flops >= LOOP_MIN_FLOPS else "vmap"


class PopulationDriver:
    """A ``jaxml.train.drivers.Driver`` whose metric sums carry a leading member axis: the loop trains every
    member whose ``active`` entry is set and freezes the others. ``layout`` "vmap": the state stacked
    (``init_population``), one vmapped step; "loop": the state member-major (``init_members``), one jitted
    member step per member (``make_member_loop_step``; ``member_step``: that step when already made, as by
    ``train_population`` for ``choose_layout``). One device; a population keeps no checkpoints, but its stacked
    state is the saveable layout of either."""

    def __init__(self, model, objective, optimizer, hp: PopulationHparams, *, shared_batch: bool,
                 layout: str = "vmap", member_step=None):
        if layout not in ("vmap", "loop"):
            raise config_lib.ConfigError(f"PopulationDriver layout must be 'vmap' or 'loop' (choose_layout resolves "
                                         f"'auto'), got {layout!r}")
        self.n_members, self.hp, self.shard, self.layout = len(np.asarray(hp.seed)), jax.device_put(hp), (0, 1), layout
        self.model, self.optimizer = model, optimizer
        self.active = np.ones(self.n_members, bool)
        use = penalty_flags(hp)
        if layout == "vmap":
            self._step = make_population_step(model, objective, optimizer, shared_batch=shared_batch, **use)
            self.eval_step = make_population_eval(model, objective)
        else:
            self._step = make_member_loop_step(model, objective, optimizer, shared_batch=shared_batch,
                                               member_step=member_step, **use)
            self.eval_step = make_member_loop_eval(model, objective)

    def init(self, make_state=None):
        """The first state, ``init_population`` (or ``init_members``) of the members' hyperparameters (each
        member's seed and learning rate replace the one run's that ``make_state`` would build, so it is not
        called)."""
        del make_state
        return (init_population if self.layout == "vmap" else init_members)(self.model, self.optimizer, self.hp)

    def train_step(self, states, batch):
        return self._step(states, self.hp, batch, self.active)

    def members(self, host_state) -> list[TrainState]:
        """Member i's own TrainState, per member, from a host copy of the state."""
        return split_members(host_state) if self.layout == "loop" else _member_rows(host_state, self.n_members)

    def to_saveable(self, state):
        """The stacked layout (host arrays for "loop")."""
        if self.layout == "vmap":
            return state
        return jax.tree.map(lambda *leaves: np.stack(leaves), *split_members(jax.device_get(state)))

    def from_saveable(self, state):
        if self.layout == "vmap":
            return state
        return join_members(jax.device_put(_member_rows(state, self.n_members)))

    def put(self, batch):
        """The batch on the device: a dict as one tree (a shared, stacked or eval batch), a list of member
        batches (the loop layout's train batches) with each distinct one placed once."""
        if not isinstance(batch, (list, tuple)):
            return jax.device_put(batch)
        placed = {id(r): jax.device_put(r) for r in batch}
        return [placed[id(r)] for r in batch]

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


def population_batch(sources: dict, seeds: Sequence[int], step: int, *, stacked: bool):
    """The members' batch of ``step``: the one batch when all share a seed, else the seeds' batches stacked
    (``stacked``) or a list of N member batches (the same dict for members sharing a seed)."""
    if len(sources) == 1:
        return sources[seeds[0]].batch(step)
    per_seed = {s: src.batch(step) for s, src in sources.items()}
    if not stacked:
        return [per_seed[s] for s in seeds]
    return {k: np.stack([per_seed[s][k] for s in seeds]) for k in per_seed[seeds[0]]}


def population_hparams(configs) -> PopulationHparams:
    """The members' hyperparameters: lr, l1, l2, seed, and their dropout rates when these differ (host arrays:
    building them on the device would compile a conversion program per field)."""

    def f32(path):
        return np.asarray([float(_field(c, path)) for c in configs], np.float32)

    rates = [member_spec(c)[1] for c in configs]
    return PopulationHparams(f32("optimizer.lr"), f32("regularization.l1"), f32("regularization.l2"),
                             np.asarray([int(c.seed) for c in configs], np.int32),
                             np.asarray(rates, np.float32) if len(set(rates)) > 1 else None)


def train_population(configs: Sequence, workdirs: Sequence[str], *, layout: str = "auto") -> list[dict]:
    """Train the members ``configs`` (differing only in POPULATION_FIELDS) as one population, in ``layout``
    ("vmap", "loop", or "auto": ``choose_layout``).

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
    check_layout(layout)
    compile_cache.enable()   # as train_and_evaluate: a repeated sweep skips XLA compilation
    base = configs[0]
    splits = data.build(base)
    model = loop.build_model(base, splits.input_shape)
    num_steps = loop.total_steps(base, splits.train.steps_per_epoch)
    optimizer = member_optimizer(base.optimizer, num_steps)
    hp = population_hparams(configs)
    seeds = [int(c.seed) for c in configs]
    sources = train_sources(splits, configs)

    objective, shared = objectives.get(base.objective), len(sources) == 1
    member_step = jit_member_step(model, objective, optimizer, **penalty_flags(hp))  # lowered once: both use it
    layout = choose_layout(layout, model, objective, optimizer, hp, sources[seeds[0]].batch(0), member_step)
    driver = PopulationDriver(model, objective, optimizer, hp, shared_batch=shared, layout=layout,
                              member_step=member_step)

    def batch(step):
        return population_batch(sources, seeds, step, stacked=layout == "vmap")

    members = []
    for c, w in zip(configs, workdirs):
        os.makedirs(w, exist_ok=True)
        if jax.process_index() == 0 and os.path.exists(os.path.join(w, "metrics.jsonl")):
            os.remove(os.path.join(w, "metrics.jsonl"))        # a population run starts afresh
        members.append(periodic.Member(c, w, tensorboard=False))
    states, step = loop.run_loop(base, members, driver, driver.init(), splits, batch,
                                 start=0, num_steps=num_steps, desc=f"population x{len(configs)}")
    per_member = driver.members(jax.device_get(states))
    periodic.final_records(step, members, driver, states, splits, int(base.data.eval_batch_size),
                           [m.params for m in per_member])
    for member, state in zip(members, per_member):
        if member.failure is None:
            periodic.run_reports(member, model, state, splits)
        member.log.close()
    return [Trained(model, state, m.config, m.log.history(), m.final, m.workdir, m.stopped_early, m.failure)
            for m, state in zip(members, per_member)]
