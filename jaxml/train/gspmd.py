"""The ``jit`` driver (``config.parallel.backend = "jit"``): the one-device step compiled once for a device mesh,
GSPMD (XLA's sharding propagation) inserting the collectives.

The mesh has named axes from ``config.parallel.mesh`` (default ``{"data": -1, "fsdp": 1}``; -1: the devices left).
The global batch is split over all of them (rows over ``data`` x ``fsdp``). Parameters and optimizer state are
sharded by ``fsdp_spec``: a leaf of at least ``min_size`` elements has its largest dimension divisible by the
``fsdp`` size split over ``fsdp`` (ZeRO-3 / FSDP: each device holds 1 / fsdp of them and XLA all-gathers a layer's
weights where they are used and reduce-scatters their gradients); smaller leaves are replicated. Why: params and
Adam's two moments of a model too large for one device fit on fsdp of them.

The step sees the global batch, so batch norm uses global statistics and dropout masks follow each example's
global index: every mesh trains the 1-device run, to float32 rounding of the reductions' order. Checkpoints hold
the global arrays (orbax), so a run saved under one mesh restores under any other driver or mesh.
"""
from __future__ import annotations

import functools
import math

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxml import parallel
from jaxml.train import step as step_lib
from jaxml.train.state import run_once

FSDP_AXIS = "fsdp"
DEFAULT_MESH = {"data": -1, "fsdp": 1}


def mesh_shape(axes: dict, num_devices: int) -> dict:
    """{axis: size} with one -1 resolved to the devices left; ValueError naming config.parallel.mesh unless the
    sizes multiply to ``num_devices``."""
    axes = {str(k): int(v) for k, v in dict(axes).items()}
    free = [k for k, v in axes.items() if v == -1]
    if len(free) > 1 or any(v == 0 or v < -1 for v in axes.values()):
        raise ValueError(f"config.parallel.mesh={axes}: sizes must be positive, at most one -1")
    fixed = math.prod(v for v in axes.values() if v != -1)
    if free:
        if num_devices % fixed:
            raise ValueError(f"config.parallel.mesh={axes}: {num_devices} devices do not divide by {fixed}")
        axes[free[0]] = num_devices // fixed
    if math.prod(axes.values()) != num_devices:
        raise ValueError(f"config.parallel.mesh={axes} has {math.prod(axes.values())} devices, not the {num_devices} "
                         "there are")
    return axes


def make_mesh(axes: dict, devices=None) -> Mesh:
    devices = list(jax.devices() if devices is None else devices)
    shape = mesh_shape(axes, len(devices))
    return jax.make_mesh(tuple(shape.values()), tuple(shape), axis_types=(AxisType.Auto,) * len(shape),
                         devices=devices)


def fsdp_spec(shape, fsdp: int, min_size: int = 1024) -> P:
    """The PartitionSpec of one leaf: its largest dimension divisible by ``fsdp`` over the fsdp axis (ties: the
    first), replicated when it is smaller than ``min_size`` elements or no dimension divides."""
    if fsdp == 1 or math.prod(shape) < min_size:
        return P()
    for d in sorted(range(len(shape)), key=lambda d: -shape[d]):
        if shape[d] % fsdp == 0:
            return P(*([None] * d + [FSDP_AXIS]))
    return P()


def _needs_init(*args):
    raise RuntimeError("JitDriver.init(make_state) must run before its steps: it lays out the state's shardings")


class JitDriver:
    """The driver contract of jaxml/train/drivers.py over a GSPMD mesh (see the module docstring)."""
    n_members = None

    def __init__(self, model, objective, optimizer, hp: step_lib.Hparams, *, mesh_axes: dict | None = None,
                 accum_steps: int = 1, min_shard_size: int = 1024):
        self.mesh = make_mesh(mesh_axes or DEFAULT_MESH)
        self.fsdp = dict(self.mesh.shape).get(FSDP_AXIS, 1)
        self.min_shard_size = min_shard_size
        self.batch_sharding = NamedSharding(self.mesh, P(tuple(self.mesh.axis_names)))
        self.replicated = NamedSharding(self.mesh, P())
        self._step = functools.partial(step_lib.make_train_step(model, objective, optimizer, accum_steps=accum_steps),
                                       hp=hp)
        self._eval = step_lib.make_eval_step(model, objective)
        self.state_sharding = None
        self._train_jit = self._eval_jit = _needs_init
        self.shard = (jax.process_index(), jax.process_count())
        self.active = np.ones(1, bool)

    def shardings(self, tree):
        """NamedSharding per leaf of a (shape) tree by ``fsdp_spec``."""
        return jax.tree.map(lambda a: NamedSharding(self.mesh, fsdp_spec(a.shape, self.fsdp, self.min_shard_size)),
                            tree)

    def init(self, make_state):
        self.state_sharding = self.shardings(jax.eval_shape(make_state))
        self._train_jit = jax.jit(self._step, in_shardings=(self.state_sharding, self.batch_sharding),
                                  out_shardings=(self.state_sharding, self.replicated), donate_argnums=0)
        self._eval_jit = jax.jit(self._eval, in_shardings=(self.state_sharding.params,
                                                           self.state_sharding.model_state, self.batch_sharding),
                                 out_shardings=self.replicated)
        return run_once(make_state, out_shardings=self.state_sharding)

    @property
    def train_step(self):
        """The jitted step with this mesh's shardings, made by ``init`` (which knows the state's shapes)."""
        return self._train_jit

    @property
    def eval_step(self):
        return self._eval_jit

    def put(self, batch: dict) -> dict:
        return {k: jax.make_array_from_process_local_data(self.batch_sharding, v) for k, v in batch.items()}

    def fetch(self, tree):
        return parallel.host_local_copy(tree)

    def to_saveable(self, state):
        return state

    def from_saveable(self, state):
        """A restored state laid out by this mesh's rules (orbax restores into the target's shardings already)."""
        return jax.device_put(state, self.state_sharding)
