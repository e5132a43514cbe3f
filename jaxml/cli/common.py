"""What every jaxml launcher shares.

- ``run(main)`` (``runner.run``): runs an absl ``main``; on any error prints ``error: <Type>: <message>`` as
  the last line of stderr and exits 1 (absl usage errors and explicit exits pass through unchanged). It first
  switches on JAX's persistent compilation cache (``jaxml.compile_cache``: ~/.cache/jaxml/jax;
  ``JAXML_COMPILATION_CACHE=DIR|off`` moves or disables it), so a repeated command skips XLA compilation.
- The cluster flags and ``setup()``, applied before JAX first runs:
  ``--coordinator_address=host:port --num_processes=N --process_id=I`` (or JAX_COORDINATOR_ADDRESS,
  JAX_NUM_PROCESSES, JAX_PROCESS_ID — launch/local_cluster.py sets these), ``--initialization_timeout=S``,
  ``--num_cpu_devices=D`` (fake CPU devices for this process: tests, demos).
- ``load_config("configs/x.py:arg")``: a config file's ``get_config(arg)`` from Python, for tests, benches and
  notebooks (the launchers' ``--config`` flags read the same files through ``ml_collections.config_flags``).
"""
from __future__ import annotations

import logging
import os
import sys

import jax
from absl import flags
from absl import logging as absl_logging

from jaxml import compile_cache, layout, parallel
from jaxml.cli import runner
from jaxml.cli.config_file import load_config  # noqa: F401  (the one config loader, re-exported)

_COORD = flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-host runs).")
_NPROC = flags.DEFINE_integer("num_processes", None, "Number of processes (multi-host runs).")
_PID = flags.DEFINE_integer("process_id", None, "This process's index (multi-host runs).")
_NDEV = flags.DEFINE_integer("num_cpu_devices", None, "Fake CPU devices for this process (testing/demos).")
_INIT_TIMEOUT = flags.DEFINE_integer("initialization_timeout", 60, "Seconds to wait for all processes.")


def run(main) -> None:
    """``runner.run(main)`` with the persistent compilation cache on (``setup()`` enables it too, idempotently)."""
    compile_cache.enable()
    runner.run(main)


class QuietBackendProbe(logging.Filter):
    """Drops JAX's ``Unable to initialize backend 'tpu': ... libtpu.so ...`` INFO line: on a machine without the
    platform it is the expected outcome of a probe (a platform named in JAX_PLATFORMS that fails raises instead)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno <= logging.INFO and record.getMessage().startswith("Unable to initialize backend"))


def setup(config=None):
    """Apply the cluster flags before JAX first runs; join the cluster when one is named; print the layout.
    Logging is quiet (WARNING: orbax logs every save at INFO) unless ``--verbosity`` is given; JAX's probe of
    platforms that are not installed stays silent below ``--verbosity=1``.

    The CPU layout (jaxml/layout.py), in one process: a training ``config`` gets ``config.parallel.cpu_devices``
    resolved (``"auto"``: the rule there) and is returned so; ``--num_cpu_devices`` (or a count set in the
    environment: JAX_NUM_CPU_DEVICES, XLA_FLAGS) overrides it. The first line printed names the layout."""
    if not flags.FLAGS["verbosity"].present:
        absl_logging.set_verbosity(absl_logging.WARNING)
    if absl_logging.get_verbosity() < 1:
        probe_logger = logging.getLogger("jax._src.xla_bridge")
        if not any(isinstance(f, QuietBackendProbe) for f in probe_logger.filters):
            probe_logger.addFilter(QuietBackendProbe())
    compile_cache.enable()
    cluster = bool(_COORD.value or _NPROC.value or os.environ.get("JAX_COORDINATOR_ADDRESS"))
    why = "one process per host: the field applies to single-process runs" if cluster else ""
    preset = None if cluster or layout.started() else layout.preset_cpu_devices()   # JAX_NUM_CPU_DEVICES, XLA_FLAGS
    if config is not None and not cluster:
        n, why = layout.resolve(config, override=_NDEV.value or preset,
                                override_from="--num_cpu_devices" if _NDEV.value else "set in the environment")
        config = layout.use_cpu_layout(config, override=n)
    elif _NDEV.value:
        layout.set_cpu_devices(_NDEV.value)
    if cluster:
        parallel.initialize_distributed(_COORD.value, _NPROC.value, _PID.value, timeout_s=_INIT_TIMEOUT.value)
    print(f"JAX {jax.__version__}, backend {jax.default_backend()}, process {jax.process_index()}/"
          f"{jax.process_count()}, {jax.local_device_count()} local / {jax.device_count()} global devices"
          + (f"; {layout.describe(config, why)}" if config is not None else "") + f": {jax.local_devices()}",
          file=sys.stderr)
    return config

