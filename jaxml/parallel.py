"""Device mesh, shardings and multi-host start-up: one ``data`` axis over every device of every process.

Params are replicated (``P()``) and batches are sharded along their leading axis (``P("data")``).
Per-device programs are written once with ``jax.shard_map``; kernels (K-means, naive Bayes) reduce
their shard to small statistics and combine them with one ``lax.psum(..., DATA_AXIS)``. The training
drivers that run a step over this mesh are in jaxml/train/drivers.py.
"""
from __future__ import annotations

import os
import sys
from typing import Sequence

import jax
import numpy as np
from jax import lax
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxml import layout
from jaxml.ports import port_is_free

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
    unnoticed, so a missing or killed process makes the others fail fast instead of hanging. Process 0 first
    checks that the coordinator port is free (the runtime segfaults on a busy one) and fails naming it. On CPU
    the client's thread pool is sized first (``cpu_pool_threads``). Note: after initialization JAX swallows
    SIGTERM — stop workers with SIGKILL (launch/local_cluster.py does).
    """
    coordinator_address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")
    num_processes = num_processes if num_processes is not None else _env_int("JAX_NUM_PROCESSES")
    process_id = process_id if process_id is not None else _env_int("JAX_PROCESS_ID")
    if not coordinator_address or num_processes is None or process_id is None:
        raise ValueError("multi-host run needs --coordinator_address, --num_processes and --process_id "
                         "(or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID)")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"--process_id={process_id} must be in [0, {num_processes})")
    port = _port_of(coordinator_address)
    if process_id == 0 and not port_is_free(port):
        raise OSError(f"coordinator port {port} (--coordinator_address={coordinator_address}) is already in use on "
                      "this host — another cluster, or a leftover worker, holds it; pick another port")
    if jax.config.jax_platforms in (None, "", "cpu") or jax.config.jax_platforms.startswith("cpu"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        size_cpu_pool(_local_cpu_devices())
    print(f"jaxml: joining a {num_processes}-process JAX cluster at {coordinator_address} as process {process_id}; "
          f"peers must join within {timeout_s} s, a dead peer is detected within ~{heartbeat_timeout_s} s "
          f"(the runtime then aborts this process)", file=sys.stderr, flush=True)
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id, initialization_timeout=timeout_s,
                               heartbeat_timeout_seconds=heartbeat_timeout_s)


def cpu_pool_threads(local_devices: int, cores: int) -> int:
    """Threads the XLA:CPU client needs so that a multi-process run cannot deadlock: ``max(cores, 2 D)`` for D
    local devices. Why: XLA sizes its launch-and-run pool at ``max(cores, D)``; once the host is 32 programs
    ahead of a device, up to D launch tasks block in the pool waiting for an in-flight slot, and the collective
    queued behind them finds no thread while its peers wait in gloo forever. D more threads break the cycle."""
    return max(cores, 2 * local_devices)


def size_cpu_pool(local_devices: int) -> None:
    """Set ``PJRT_NPROC`` (the XLA:CPU client's thread count, read once when the client is created) to
    ``cpu_pool_threads`` (cores: ``NPROC`` when set, like XLA) unless the user set it; a user's value below
    that gets a warning."""
    need = cpu_pool_threads(local_devices, layout.cpu_cores())
    given = os.environ.get("PJRT_NPROC", "").strip()
    if not given:
        os.environ["PJRT_NPROC"] = str(need)
    elif given.isdigit() and int(given) < need:
        print(f"jaxml: warning: PJRT_NPROC={given} gives XLA:CPU fewer than {need} threads for {local_devices} "
              "local devices; a run that dispatches far ahead of its devices can deadlock", file=sys.stderr,
              flush=True)


def _local_cpu_devices() -> int:
    """Local CPU devices the client will create: the count set before (``layout.preset_cpu_devices``), else 1."""
    return layout.preset_cpu_devices() or 1


def _port_of(address: str) -> int:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--coordinator_address={address!r} must be host:port")
    return int(port)


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


def host_local_copy(tree):
    """Host numpy copy of replicated (or pmap-stacked, via ``[0]``) arrays, valid on every process: a
    replicated global array's first addressable shard is the whole value. An array sharded over a mesh (the
    jit driver's fsdp params) is gathered whole (across processes when it spans several)."""

    def one(a):
        if isinstance(a, jax.Array):
            if isinstance(a.sharding, NamedSharding) and not a.is_fully_replicated:
                return np.asarray(a) if a.is_fully_addressable else np.asarray(
                    multihost_utils.process_allgather(a, tiled=True))
            return np.asarray(a.addressable_data(0))
        return a
    return jax.tree.map(one, tree)


def vary_alike(*arrays: jax.Array) -> tuple[jax.Array, ...]:
    """The arrays, each cast (``lax.pcast(..., to="varying")``) to vary over every manual mesh axis that any
    of them varies over; a no-op outside ``shard_map`` or when they already agree.

    Why: inside ``shard_map`` ordinary primitives cast an invariant operand (replicated params) to varying
    implicitly, and the cast differentiates to the ``psum`` of its gradient; a ``jax.custom_vjp`` gets no such
    cast, and its backward must return cotangents of its primals' types. Casting first gives it both."""
    varying = [jax.typeof(a).manual_axis_type.varying for a in arrays]
    union = frozenset().union(*varying)
    return tuple(lax.pcast(a, tuple(union - v), to="varying") if union - v else a for a, v in zip(arrays, varying))
