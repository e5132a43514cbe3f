"""The CPU layout of a run: how many CPU devices it makes, and whether ``backend="none"`` trains over them.

``config.parallel.cpu_devices`` is ``"auto"`` or a whole number N >= 1. It is resolved before JAX creates its
CPU backend (the first computation): ``use_cpu_layout(config)`` does it and sets ``jax_num_cpu_devices`` to N —
``launch/train.py`` calls it (``--num_cpu_devices`` overrides), a notebook calls it once before anything runs
JAX. With N > 1, ``parallel.backend="none"``, one process and a CPU backend, the run is data-parallel (the
``shard_map`` driver) over the first N CPU devices: the same global batch, split, so results equal the
one-device run to float32 rounding. On a GPU or TPU the field does nothing; an explicit ``backend`` (shard_map,
pmap, jit) keeps every device.

``auto`` is every core for the models in ``EVERY_CORE`` (the GRU) and one device otherwise. Why: XLA:CPU
already spreads one large matmul over the cores (the MLPs ran 0.6x on two devices), while the GRU's chain of
small per-step dots leaves a core idle, which a second device fills (1.7x). The CNN's ~1.1x on a quiet machine
is within a shared machine's noise and once measured 0.5x under load: it stays on one (``bench/layout.py``,
bench/README.md). A batch that does not split into slices of at least ``MIN_PER_DEVICE`` rows stays on one
device. An unresolved ``auto`` (JAX already started, no call) trains on one device.
"""
from __future__ import annotations

import os

import jax

try:  # private: JAX has no public query for "backends created" (tests/test_layout.py notices a move)
    from jax._src.xla_bridge import backends_are_initialized as _backends_are_initialized
except ImportError:
    _backends_are_initialized = None

AUTO = "auto"
EVERY_CORE = ("gru",)   # model names whose steps run faster data-parallel over every core (bench/layout.py)
MIN_PER_DEVICE = 16           # rows of the training batch per device, at least


def cpu_cores() -> int:
    """Cores this process may run on (``NPROC`` when set, like XLA; else the affinity mask)."""
    given = os.environ.get("NPROC", "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def preset_cpu_devices() -> int | None:
    """A CPU device count chosen before jaxml looked: ``jax_num_cpu_devices`` (or ``JAX_NUM_CPU_DEVICES``), else
    XLA_FLAGS' ``--xla_force_host_platform_device_count``; None when neither is set."""
    n = int(jax.config.jax_num_cpu_devices)
    if n > 0:
        return n
    for flag in os.environ.get("XLA_FLAGS", "").split():
        if flag.startswith("--xla_force_host_platform_device_count="):
            return int(flag.split("=", 1)[1])
    return None


def requested(config) -> int | str:
    """``config.parallel.cpu_devices`` as ``"auto"`` or an int >= 1 (the command line gives numbers as text);
    anything else raises ValueError naming the field."""
    value = config.parallel.get("cpu_devices", AUTO)
    if value == AUTO:
        return AUTO
    if (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value.isdigit()):
        if int(value) >= 1:
            return int(value)
    raise ValueError(f'config.parallel.cpu_devices must be "auto" or a whole number >= 1, got {value!r}')


def auto_devices(config, cores: int) -> int:
    """The devices ``auto`` gives ``config`` on ``cores`` cores: ``cores`` for a model in ``EVERY_CORE`` whose
    training and eval batches divide by it with >= ``MIN_PER_DEVICE`` training rows each, else 1."""
    batch, eval_batch = int(config.data.batch_size), int(config.data.eval_batch_size)
    if (cores > 1 and config.model.name in EVERY_CORE and batch % cores == 0 and eval_batch % cores == 0
            and batch // cores >= MIN_PER_DEVICE):
        return cores
    return 1


def resolve(config, *, cores: int | None = None, override: int | None = None,
            override_from: str = "--num_cpu_devices") -> tuple[int, str]:
    """(the CPU devices of the run, why): ``override`` (``--num_cpu_devices``, or a count set in the environment:
    ``preset_cpu_devices``) when given, else the config's number, else ``auto_devices``."""
    if override:
        return int(override), override_from
    if requested(config) != AUTO:
        return requested(config), "config"
    cores = cpu_cores() if cores is None else cores
    n = auto_devices(config, cores)
    rule = "every core" if n > 1 else "one device"
    return n, f"auto: {config.model.name}, batch {config.data.batch_size} on {cores} cores -> {rule}"


def use_cpu_layout(config, *, override: int | None = None):
    """A copy of ``config`` with ``parallel.cpu_devices`` resolved to N (``resolve``), and ``jax_num_cpu_devices``
    set to N when JAX has not started yet (a started JAX keeps its devices; the run uses the first N). Call it
    before JAX's first computation: ``config = jaxml.layout.use_cpu_layout(config)``."""
    n, _ = resolve(config, override=override)
    set_cpu_devices(n)
    config = config.copy_and_resolve_references()
    with config.unlocked():
        config.parallel.cpu_devices = n
    return config


def started() -> bool:
    """JAX has created its backends (its device counts are fixed); False when JAX no longer says."""
    return bool(_backends_are_initialized and _backends_are_initialized())


def set_cpu_devices(n: int) -> None:
    """``jax_num_cpu_devices = n`` unless JAX has already started (then its devices stay as they are)."""
    if not started():
        try:
            jax.config.update("jax_num_cpu_devices", int(n))
        except RuntimeError:     # started after all (the private query moved): the devices stay as they are
            pass


def layout_devices(config) -> list | None:
    """The devices a ``backend="none"`` run spreads its batch over (None: one device, ``jit``): the first
    ``parallel.cpu_devices`` CPU devices when that is a number > 1, the backend is the CPU and one process runs."""
    n = requested(config)
    if (config.parallel.backend != "none" or n == AUTO or n <= 1 or jax.default_backend() != "cpu"
            or jax.process_count() > 1):
        return None
    devices = jax.devices()
    if len(devices) < n:
        raise ValueError(f"config.parallel.cpu_devices={n} but JAX started with {len(devices)} CPU devices: "
                         "resolve the layout before JAX's first computation (jaxml.layout.use_cpu_layout(config)), "
                         "or set config.parallel.cpu_devices=1")
    return devices[:n]


def driver_backend(config) -> str:
    """The driver the run uses: ``config.parallel.backend``, or ``shard_map`` when ``layout_devices`` spreads a
    ``none`` run over several devices."""
    return "shard_map" if layout_devices(config) else config.parallel.backend


def run_devices(config) -> int:
    """How many devices one step spans: ``layout_devices``' count, 1 for ``none``, else every device."""
    devices = layout_devices(config)
    if devices:
        return len(devices)
    return 1 if config.parallel.backend == "none" else jax.device_count()


def describe(config, why: str = "") -> str:
    """One line: the layout the run got (after JAX started) and why (``resolve``'s reason)."""
    if jax.default_backend() != "cpu":
        return (f"layout: {jax.default_backend()}, backend {config.parallel.backend} "
                "(config.parallel.cpu_devices applies to CPUs only)")
    devices = layout_devices(config)
    how = (f"data-parallel over {len(devices)} CPU devices (shard_map)" if devices else
           f"backend {config.parallel.backend}" + (", one device" if config.parallel.backend == "none" else ""))
    return f"layout: {how}; config.parallel.cpu_devices={requested(config)}" + (f" ({why})" if why else "")
