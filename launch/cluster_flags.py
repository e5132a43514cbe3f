"""Flags every jaxml launcher shares for multi-device and multi-host runs, and the call that applies them.

    --coordinator_address=host:port --num_processes=N --process_id=I   (or JAX_COORDINATOR_ADDRESS,
    JAX_NUM_PROCESSES, JAX_PROCESS_ID — launch/local_cluster.py sets these) --initialization_timeout=S
    --num_cpu_devices=D   fake CPU devices for this process (testing, demos)
"""
from __future__ import annotations

import os
import sys

from absl import flags

_COORD = flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-host runs).")
_NPROC = flags.DEFINE_integer("num_processes", None, "Number of processes (multi-host runs).")
_PID = flags.DEFINE_integer("process_id", None, "This process's index (multi-host runs).")
_NDEV = flags.DEFINE_integer("num_cpu_devices", None, "Fake CPU devices for this process (testing/demos).")
_INIT_TIMEOUT = flags.DEFINE_integer("initialization_timeout", 60, "Seconds to wait for all processes.")


def setup() -> None:
    """Apply the flags before JAX first runs; join the cluster when one is named; print the device layout."""
    import jax
    if _NDEV.value:
        jax.config.update("jax_num_cpu_devices", _NDEV.value)
    if _COORD.value or _NPROC.value or os.environ.get("JAX_COORDINATOR_ADDRESS"):
        from jaxml import parallel
        parallel.initialize_distributed(_COORD.value, _NPROC.value, _PID.value, timeout_s=_INIT_TIMEOUT.value)
    print(f"JAX {jax.__version__}, backend {jax.default_backend()}, process {jax.process_index()}/"
          f"{jax.process_count()}, {jax.local_device_count()} local / {jax.device_count()} global devices: "
          f"{jax.local_devices()}", file=sys.stderr)
