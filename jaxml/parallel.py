"""Device mesh and sharding helpers: one ``data`` axis over every device of every process.

Params are replicated (``P()``) and batches are sharded along their leading axis (``P("data")``).
Per-device programs are written once with ``jax.shard_map``; kernels (K-means, naive Bayes) reduce
their shard to small statistics and combine them with one ``lax.psum(..., DATA_AXIS)``.
"""
from __future__ import annotations

from typing import Sequence

import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named ``data`` over ``devices`` (default: all devices of all processes).

    The axis is ``AxisType.Explicit``-free (``Auto``) so jit's sharding propagation works as in
    JAX < 0.10; shard_map bodies see it as a manual axis either way.
    """
    devices = list(jax.devices() if devices is None else devices)
    return jax.make_mesh((len(devices),), (DATA_AXIS,), axis_types=(AxisType.Auto,), devices=devices)


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding that keeps a full copy on every device (params, optimizer state)."""
    return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """Sharding that splits the leading (batch) axis over the ``data`` axis."""
    return NamedSharding(mesh, P(DATA_AXIS))


# ----------------------------------------------------------------------------- multi-host
def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None, *, timeout_s: int = 60,
                           heartbeat_timeout_s: int = 20) -> None:
    """Join a JAX cluster (``jax.distributed.initialize``); arguments default to the JAX_COORDINATOR_ADDRESS,
    JAX_NUM_PROCESSES and JAX_PROCESS_ID environment variables. On CPU the collectives go through gloo.

    ``timeout_s`` bounds the wait for missing peers and ``heartbeat_timeout_s`` how long a dead peer goes
    unnoticed, so a missing or killed process makes the others fail fast instead of hanging. Note: after
    initialization JAX swallows SIGTERM — stop workers with SIGKILL (launch/local_cluster.py does).
    """
    import os
    coordinator_address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")
    num_processes = num_processes if num_processes is not None else _env_int("JAX_NUM_PROCESSES")
    process_id = process_id if process_id is not None else _env_int("JAX_PROCESS_ID")
    if not coordinator_address or num_processes is None or process_id is None:
        raise ValueError("multi-host run needs --coordinator_address, --num_processes and --process_id "
                         "(or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID)")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"--process_id={process_id} must be in [0, {num_processes})")
    if jax.config.jax_platforms in (None, "", "cpu") or jax.config.jax_platforms.startswith("cpu"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    import sys
    print(f"jaxml: joining a {num_processes}-process JAX cluster at {coordinator_address} as process {process_id}; "
          f"peers must join within {timeout_s} s, a dead peer is detected within ~{heartbeat_timeout_s} s "
          f"(the runtime then aborts this process)", file=sys.stderr, flush=True)
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id, initialization_timeout=timeout_s,
                               heartbeat_timeout_seconds=heartbeat_timeout_s)


def _env_int(name: str) -> int | None:
    import os
    value = os.environ.get(name)
    return int(value) if value else None


def host_local_copy(tree):
    """Host numpy copy of replicated (or pmap-stacked, via ``[0]``) arrays, valid on every process: a
    replicated global array's first addressable shard is the whole value."""
    import numpy as np

    def one(a):
        if isinstance(a, jax.Array):
            return np.asarray(a.addressable_data(0))
        return a
    return jax.tree.map(one, tree)


# ----------------------------------------------------------------------------- training drivers
class ShardMapDriver:
    """One per-device program under ``jax.shard_map`` over the ``data`` axis of all devices of all
    processes. Params/optimizer state replicated (``P()``), created in place by a jit with
    ``out_shardings``; batches sharded along ``data``; the train state is donated to the step.
    The per-device step differentiates the psum-averaged loss, so replicated gradients arrive reduced."""

    def __init__(self, model, objective, optimizer, *, seed: int, l1: float, l2: float, mesh: Mesh | None = None):
        from jaxml.train import step as step_lib
        self.mesh = mesh or data_mesh()
        per_device = step_lib.make_train_step(model, objective, optimizer, seed=seed, l1=l1, l2=l2,
                                              axis_name=DATA_AXIS)
        self.train_step = jax.jit(jax.shard_map(per_device, mesh=self.mesh, in_specs=(P(), P(DATA_AXIS)),
                                                out_specs=(P(), P())), donate_argnums=0)
        self.eval_step = jax.jit(jax.shard_map(step_lib.make_eval_step(model, objective, axis_name=DATA_AXIS),
                                               mesh=self.mesh, in_specs=(P(), P(), P(DATA_AXIS)), out_specs=P()))
        self.shard = (jax.process_index(), jax.process_count())

    def init(self, make_state):
        return jax.jit(make_state, out_shardings=replicated(self.mesh))()

    def put(self, batch: dict) -> dict:
        sharding = batch_sharded(self.mesh)
        return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}

    def fetch(self, tree):
        return host_local_copy(tree)

    def to_saveable(self, state):
        return state

    def from_saveable(self, state):
        return state


class PmapDriver:
    """The classic style: ``jax.pmap`` over local devices (collectives span every process's devices).
    State carries a leading local-device axis; each device differentiates its local mean loss and
    the gradients are ``lax.pmean``-ed (the pmap gradient rule)."""

    def __init__(self, model, objective, optimizer, *, seed: int, l1: float, l2: float):
        from jaxml.train import step as step_lib
        per_device = step_lib.make_train_step(model, objective, optimizer, seed=seed, l1=l1, l2=l2,
                                              axis_name=DATA_AXIS, pmean_grads=True)
        self.train_step = jax.pmap(per_device, axis_name=DATA_AXIS, donate_argnums=0)
        self.eval_step = jax.pmap(step_lib.make_eval_step(model, objective, axis_name=DATA_AXIS),
                                  axis_name=DATA_AXIS)
        self.n_local = jax.local_device_count()
        self.shard = (jax.process_index(), jax.process_count())

    def init(self, make_state):
        return jax.pmap(lambda _: make_state())(jax.numpy.arange(self.n_local))

    def put(self, batch: dict) -> dict:
        def split(v):
            if v.shape[0] % self.n_local:
                raise ValueError(f"per-process batch {v.shape[0]} is not divisible by {self.n_local} local devices")
            return v.reshape((self.n_local, v.shape[0] // self.n_local) + v.shape[1:])
        return {k: split(v) for k, v in batch.items()}

    def fetch(self, tree):
        import numpy as np
        return jax.tree.map(lambda a: np.asarray(a[0]) if isinstance(a, jax.Array) else a, tree)

    def to_saveable(self, state):
        """Checkpoints hold one copy (device 0's), the same layout as the other drivers write."""
        return jax.tree.map(lambda a: a[0], state)

    def from_saveable(self, state):
        return jax.tree.map(lambda a: jax.numpy.stack([a] * self.n_local), state)


def make_driver(backend: str, model, objective, optimizer, **kwargs):
    if backend == "shard_map":
        return ShardMapDriver(model, objective, optimizer, **kwargs)
    if backend == "pmap":
        return PmapDriver(model, objective, optimizer, **kwargs)
    raise ValueError(f"config.parallel.backend: unknown backend {backend!r}; known: none, shard_map, pmap")
