"""How the pure per-device step runs: on one device with ``jax.jit`` (``backend="none"``), or data-parallel
over the ``data`` mesh axis of every device of every process with ``jax.shard_map`` or ``jax.pmap``.

Every driver satisfies ``Driver`` (a ``typing.Protocol``; the population driver of jaxml/tune/population.py
too); checkpoints hold one unreplicated copy for every driver, so a run may resume under another driver.

The gradient rule: under shard_map the step differentiates the psum-averaged loss (the gradient of
replicated params then arrives reduced); under pmap each device differentiates its local mean loss and the
gradients are ``lax.pmean``-ed. Dropout masks follow each example's index in the global batch, not the device
that holds it (``step.global_example_ids``), so every driver on any number of devices trains the same run, and
a run resumed under another driver continues it.
"""
from __future__ import annotations

import functools
from typing import Callable, Protocol, runtime_checkable

import jax
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from jaxml import layout, parallel
from jaxml.parallel import DATA_AXIS
from jaxml.train import gspmd
from jaxml.train import step as step_lib
from jaxml.train.state import run_once

BACKENDS = ("none", "shard_map", "pmap", "jit")


@runtime_checkable
class Driver(Protocol):
    """What the loop needs of a driver.

    ``init(make_state)``: the first state from ``make_state() -> TrainState`` (one run's), laid out for the
    driver; ``train_step(state, batch) -> (state, metric sums)``; ``eval_step(params, model_state, batch) ->
    metric sums``; ``put(batch)``: host numpy -> device arrays in the driver's layout; ``fetch(tree)``: one
    host copy; ``to_saveable`` / ``from_saveable``: to and from the checkpoint layout. ``shard``: (process
    index, process count), each process reads only its slice of the global batch; ``n_members``: None (scalar
    metric sums) or the population size (sums with one entry per member); ``active``: bool[n_members or 1],
    the members still training, written by the loop before each step."""
    shard: tuple[int, int]
    n_members: int | None
    active: np.ndarray

    def init(self, make_state: Callable): ...
    def train_step(self, state, batch: dict): ...
    def eval_step(self, params, model_state, batch: dict): ...
    def put(self, batch: dict) -> dict: ...
    def fetch(self, tree): ...
    def to_saveable(self, state): ...
    def from_saveable(self, state): ...


class _OneRun:
    """What the one-run drivers share: a compiled train and eval step, the process's shard, scalar metric sums,
    a checkpoint layout equal to the state's."""
    n_members = None

    def __init__(self, train_step: Callable, eval_step: Callable, shard: tuple[int, int]):
        self.train_step, self.eval_step, self.shard = train_step, eval_step, shard
        self.active = np.ones(1, bool)

    def to_saveable(self, state):
        return state

    def from_saveable(self, state):
        return state


class SingleDevice(_OneRun):
    """jit on the default device; the train state is donated to the step."""

    def __init__(self, model, objective, optimizer, hp: step_lib.Hparams, *, accum_steps: int = 1):
        step = step_lib.make_train_step(model, objective, optimizer, accum_steps=accum_steps)
        super().__init__(jax.jit(functools.partial(step, hp=hp), donate_argnums=0),
                         jax.jit(step_lib.make_eval_step(model, objective)), (0, 1))

    def init(self, make_state):
        return run_once(make_state)

    def put(self, batch: dict) -> dict:
        return jax.device_put(batch)

    def fetch(self, tree):
        return jax.device_get(tree)


class ShardMapDriver(_OneRun):
    """One per-device program under ``jax.shard_map`` over the ``data`` axis of all devices of all processes.
    Params/optimizer state replicated (``P()``), created in place by a jit with ``out_shardings``; batches
    sharded along ``data``; the train state is donated to the step."""

    def __init__(self, model, objective, optimizer, hp: step_lib.Hparams, *, mesh: Mesh | None = None,
                 accum_steps: int = 1):
        self.mesh = mesh or parallel.data_mesh()
        per_device = functools.partial(step_lib.make_train_step(model, objective, optimizer, axis_name=DATA_AXIS,
                                                                accum_steps=accum_steps), hp=hp)
        super().__init__(
            jax.jit(jax.shard_map(per_device, mesh=self.mesh, in_specs=(P(), P(DATA_AXIS)), out_specs=(P(), P())),
                    donate_argnums=0),
            jax.jit(jax.shard_map(step_lib.make_eval_step(model, objective, axis_name=DATA_AXIS), mesh=self.mesh,
                                  in_specs=(P(), P(), P(DATA_AXIS)), out_specs=P())),
            (jax.process_index(), jax.process_count()))

    def init(self, make_state):
        return run_once(make_state, out_shardings=parallel.replicated(self.mesh))

    def put(self, batch: dict) -> dict:
        sharding = parallel.batch_sharded(self.mesh)
        return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}

    def fetch(self, tree):
        return parallel.host_local_copy(tree)


class PmapDriver(_OneRun):
    """The classic style: ``jax.pmap`` over local devices (collectives span every process's devices).
    State carries a leading local-device axis; checkpoints hold device 0's copy."""

    def __init__(self, model, objective, optimizer, hp: step_lib.Hparams, *, accum_steps: int = 1):
        per_device = step_lib.make_train_step(model, objective, optimizer, axis_name=DATA_AXIS, pmean_grads=True,
                                              accum_steps=accum_steps)
        super().__init__(jax.pmap(functools.partial(per_device, hp=hp), axis_name=DATA_AXIS, donate_argnums=0),
                         jax.pmap(step_lib.make_eval_step(model, objective, axis_name=DATA_AXIS),
                                  axis_name=DATA_AXIS),
                         (jax.process_index(), jax.process_count()))
        self.n_local = jax.local_device_count()

    def init(self, make_state):
        return jax.pmap(lambda _: make_state())(jax.numpy.arange(self.n_local))

    def put(self, batch: dict) -> dict:
        def split(v):
            if v.shape[0] % self.n_local:
                raise ValueError(f"per-process batch {v.shape[0]} is not divisible by {self.n_local} local devices")
            return v.reshape((self.n_local, v.shape[0] // self.n_local) + v.shape[1:])
        return {k: split(v) for k, v in batch.items()}

    def fetch(self, tree):
        return jax.tree.map(lambda a: np.asarray(a[0]) if isinstance(a, jax.Array) else a, tree)

    def to_saveable(self, state):
        return jax.tree.map(lambda a: a[0], state)

    def from_saveable(self, state):
        """One copy per local device, laid out as pmap's own outputs (a stack of restored arrays keeps their
        sharding, which the pmapped step refuses): via the host, then a pmap that broadcasts it."""
        host = jax.device_get(state)
        return jax.pmap(lambda _, s: s, in_axes=(0, None))(jax.numpy.arange(self.n_local), host)


def make(config, model, objective, optimizer) -> Driver:
    """The driver ``config.parallel.backend`` names (``none`` over several CPU devices: ``shard_map``, layout.py),
    stepping with the config's seed and penalties."""
    backend, hp = config.parallel.backend, step_lib.run_hparams(config)
    kw = {"accum_steps": int(config.train.get("accum_steps", 1))}
    if devices := layout.layout_devices(config):     # "none" over config.parallel.cpu_devices CPU devices
        return ShardMapDriver(model, objective, optimizer, hp, mesh=parallel.data_mesh(devices), **kw)
    if backend == "none":
        return SingleDevice(model, objective, optimizer, hp, **kw)
    if backend == "shard_map":
        return ShardMapDriver(model, objective, optimizer, hp, **kw)
    if backend == "pmap":
        return PmapDriver(model, objective, optimizer, hp, **kw)
    if backend == "jit":
        return gspmd.JitDriver(model, objective, optimizer, hp, mesh_axes=dict(config.parallel.mesh), **kw)
    raise ValueError(f"config.parallel.backend: unknown backend {backend!r}; known: {BACKENDS}")
