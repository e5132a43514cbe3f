"""What every jaxml launcher shares.

- ``run(main)`` (from ``runner``): runs an absl ``main``; on any error prints ``error: <Type>: <message>`` as
  the last line of stderr and exits 1 (absl usage errors and explicit exits pass through unchanged).
- The cluster flags and ``setup()``, applied before JAX first runs:
  ``--coordinator_address=host:port --num_processes=N --process_id=I`` (or JAX_COORDINATOR_ADDRESS,
  JAX_NUM_PROCESSES, JAX_PROCESS_ID — launch/local_cluster.py sets these), ``--initialization_timeout=S``,
  ``--num_cpu_devices=D`` (fake CPU devices for this process: tests, demos).
- ``load_config("configs/x.py:arg")``: a config file's ``get_config(arg)`` from Python, for tests, benches and
  notebooks (the launchers' ``--config`` flags read the same files through ``ml_collections.config_flags``).
"""
from __future__ import annotations

import importlib.util
import os
import sys

import jax
from absl import flags
from absl import logging as absl_logging

from jaxml import parallel
from jaxml.cli.runner import run  # noqa: F401  (re-exported: launchers call common.run(main))

_COORD = flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-host runs).")
_NPROC = flags.DEFINE_integer("num_processes", None, "Number of processes (multi-host runs).")
_PID = flags.DEFINE_integer("process_id", None, "This process's index (multi-host runs).")
_NDEV = flags.DEFINE_integer("num_cpu_devices", None, "Fake CPU devices for this process (testing/demos).")
_INIT_TIMEOUT = flags.DEFINE_integer("initialization_timeout", 60, "Seconds to wait for all processes.")


def load_config(spec: str):
    """``get_config(arg)`` of the config file ``spec`` = ``PATH[:ARG]`` (e.g. ``configs/mnist_mlp.py:quick``).
    A missing file or one without ``get_config`` fails naming the path."""
    path, _, arg = spec.partition(":")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path!r} does not exist")
    name = "jaxml_config_" + os.path.splitext(os.path.basename(path))[0]
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise AttributeError(f"config file {path!r} defines no get_config(arg=None)")
    return module.get_config(arg) if arg else module.get_config()


def setup() -> None:
    """Apply the cluster flags before JAX first runs; join the cluster when one is named; print the layout.
    Logging is quiet (WARNING: orbax logs every save at INFO) unless ``--verbosity`` is given."""
    if not flags.FLAGS["verbosity"].present:
        absl_logging.set_verbosity(absl_logging.WARNING)
    if _NDEV.value:
        jax.config.update("jax_num_cpu_devices", _NDEV.value)
    if _COORD.value or _NPROC.value or os.environ.get("JAX_COORDINATOR_ADDRESS"):
        parallel.initialize_distributed(_COORD.value, _NPROC.value, _PID.value, timeout_s=_INIT_TIMEOUT.value)
    print(f"JAX {jax.__version__}, backend {jax.default_backend()}, process {jax.process_index()}/"
          f"{jax.process_count()}, {jax.local_device_count()} local / {jax.device_count()} global devices: "
          f"{jax.local_devices()}", file=sys.stderr)

