"""Default training config and up-front validation.

Experiment files in ``configs/`` start from ``base_config()`` and override fields. ``validate``
runs before anything is built or written: an unknown name, a non-positive size or rate, a batch not
divisible by the device count fails at once with a message naming the field.
"""
from __future__ import annotations

import ml_collections

from jaxml import data, layout, models
from jaxml.train import gspmd, objectives, optim, precision, reports


class ConfigError(ValueError):
    """A config field is invalid; the message names it."""


def config_args(arg: str | None, known) -> set[str]:
    """The comma-separated arguments of ``--config=configs/x.py:ARG``; any argument not in ``known`` fails."""
    given = {a.strip() for a in (arg or "").split(",") if a.strip()}
    if given - set(known):
        raise ConfigError(f"unknown config argument(s) {sorted(given - set(known))}; known: {', '.join(known)} "
                          "(comma-separated, e.g. configs/x.py:quick)")
    return given


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.objective = "softmax_xent"
    c.model = ml_collections.ConfigDict({"name": "mlp"})
    c.data = ml_collections.ConfigDict({"name": "", "batch_size": 128, "eval_batch_size": 1000})
    c.optimizer = ml_collections.ConfigDict({
        "name": "adam", "lr": 1e-3, "momentum": 0.9, "b1": 0.9, "b2": 0.999, "eps": 1e-7, "rho": 0.95,
        "weight_decay": 1e-4, "schedule": "constant", "warmup_steps": 0, "decay_steps": 1000,
        "decay_rate": 0.5, "grad_clip": 0.0})
    c.regularization = ml_collections.ConfigDict({"l1": 0.0, "l2": 0.0})
    c.train = ml_collections.ConfigDict({
        "num_epochs": 0, "num_steps": 0,           # num_steps > 0 overrides num_epochs; both 0: "auto" (one
                                                   # epoch in train_and_evaluate; fit sizes it to the data)
        "log_every": 100, "eval_every": 0,         # 0: evaluate once per epoch
        "checkpoint_every": 0,                     # 0: only at the end
        "checkpoint_every_s": 0.0,                 # also after this many seconds since the last save (0: off)
        "keep_checkpoints": 3, "progress_bar": True,
        "eval_splits": (),                         # splits evaluated periodically; () = all but "test"
        "sync_every": 10,                          # block_until_ready at least this often (CPU multi-process)
        "accum_steps": 1,                          # k > 1: k microbatches per step, one update (accumulate.py)
        "prefetch": 0,                             # batches built + put on devices ahead on a thread (2 on GPU/TPU)
        "profile_steps": (),                       # (start, stop): a jax.profiler trace in <workdir>/profile
        "early_stopping": ml_collections.ConfigDict({
            "metric": "", "split": "", "mode": "min", "patience": 5, "min_delta": 0.0}),
    })
    c.parallel = ml_collections.ConfigDict({"backend": "none",    # none | shard_map | pmap | jit
                                            "mesh": {"data": -1, "fsdp": 1},    # jit: named axes (gspmd.py)
                                            # CPU devices: "auto" | N; N > 1 makes "none" data-parallel (layout.py)
                                            "cpu_devices": layout.AUTO}, type_safe=False)   # "auto" or a number
    c.precision = ml_collections.ConfigDict({                     # jaxml/train/precision.py
        "compute_dtype": "float32",                                # float32 | bfloat16 | float16
        "loss_scale_init": 2.0 ** 15, "loss_scale_period": 2000})  # float16's dynamic loss scale
    c.reports = ()                                                # end-of-run reports (jaxml/train/reports.py)
    return c


def _positive(config, path: str, *, allow_zero: bool = False) -> None:
    value = config
    for part in path.split("."):
        value = value[part]
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        raise ConfigError(f"config.{path} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def _accum_steps(config, num_devices: int) -> None:
    k = config.train.get("accum_steps", 1)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"config.train.accum_steps must be a whole number >= 1, got {k!r}")
    if k == 1:
        return
    rows = k * (num_devices if config.parallel.backend != "none" else _cpu_devices(config))
    if config.data.batch_size % rows:
        where = f"{num_devices} devices x " if rows != k else ""
        raise ConfigError(f"config.data.batch_size={config.data.batch_size} is not divisible by {where}"
                          f"config.train.accum_steps={k} microbatches")


def _cpu_devices(config) -> int:
    """``config.parallel.cpu_devices`` as a number (1 for "auto": resolved before JAX starts, jaxml/layout.py)."""
    try:
        n = layout.requested(config)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return 1 if n == layout.AUTO else n


def _precision(config) -> None:
    p = config.get("precision")
    if p is None:
        return
    if p.compute_dtype not in precision.DTYPES:
        raise ConfigError(f"config.precision.compute_dtype must be one of {list(precision.DTYPES)}, "
                          f"got {p.compute_dtype!r}")
    if not p.loss_scale_init >= 1.0:
        raise ConfigError(f"config.precision.loss_scale_init must be >= 1, got {p.loss_scale_init!r}")
    if isinstance(p.loss_scale_period, bool) or not isinstance(p.loss_scale_period, int) or p.loss_scale_period < 1:
        raise ConfigError(f"config.precision.loss_scale_period must be a whole number >= 1, got "
                          f"{p.loss_scale_period!r}")


def _profile_steps(config) -> None:
    steps = tuple(config.train.get("profile_steps", ()) or ())
    if steps and (len(steps) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) for s in steps)
                  or not 0 <= steps[0] < steps[1]):
        raise ConfigError(f"config.train.profile_steps must be () or (start, stop) with 0 <= start < stop, "
                          f"got {steps!r}")


def validate(config, *, num_devices: int = 1) -> None:
    """Raise ConfigError naming the first invalid field."""
    seed = config.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ConfigError(f"config.seed must be a whole number in [0, 2**63), got {seed!r}")
    if config.model.name not in models.REGISTRY:
        raise ConfigError(f"config.model.name: unknown model {config.model.name!r}; known: {sorted(models.REGISTRY)}")
    if config.data.name not in data.BUILDERS:
        raise ConfigError(f"config.data.name: unknown dataset {config.data.name!r}; known: {sorted(data.BUILDERS)} "
                          "(a task registers its datasets when its package, e.g. jaxml.tasks.<name>, is imported)")
    if config.objective not in objectives.OBJECTIVES:
        raise ConfigError(f"config.objective: unknown objective {config.objective!r}; "
                          f"known: {sorted(objectives.OBJECTIVES)}")
    if config.optimizer.name not in optim.OPTIMIZERS:
        raise ConfigError(f"config.optimizer.name: unknown optimizer {config.optimizer.name!r}; "
                          f"known: {list(optim.OPTIMIZERS)}")
    if config.optimizer.schedule not in optim.SCHEDULES:
        raise ConfigError(f"config.optimizer.schedule: unknown schedule {config.optimizer.schedule!r}; "
                          f"known: {list(optim.SCHEDULES)}")
    for path in ("optimizer.lr", "data.batch_size", "data.eval_batch_size", "train.log_every",
                 "train.keep_checkpoints", "train.sync_every"):
        _positive(config, path)
    for path in ("regularization.l1", "regularization.l2", "train.num_epochs", "train.num_steps", "train.prefetch",
                 "train.eval_every", "train.checkpoint_every", "train.checkpoint_every_s",
                 "optimizer.grad_clip", "optimizer.warmup_steps"):
        _positive(config, path, allow_zero=True)
    _accum_steps(config, num_devices)
    _precision(config)
    _profile_steps(config)
    shift = config.data.get("augment_shift", 0)
    if isinstance(shift, bool) or not isinstance(shift, int) or not 0 <= shift < 14:
        raise ConfigError(f"config.data.augment_shift must be a whole number of pixels in [0, 14), got {shift!r}")
    if shift and config.data.get("standardize", False):
        raise ConfigError("config.data.augment_shift fills vacated pixels with 0, the background of raw pixels: "
                          "it cannot be combined with config.data.standardize")
    for key in ("dropout",):
        if key in config.model and not 0.0 <= config.model[key] < 1.0:
            raise ConfigError(f"config.model.{key} must be in [0, 1), got {config.model[key]!r}")
    for key in ("widths", "hidden"):
        if key in config.model and any(int(w) <= 0 for w in config.model[key]):
            raise ConfigError(f"config.model.{key} must be positive sizes, got {tuple(config.model[key])}")
    es = config.train.early_stopping
    if es.metric:
        if es.mode not in ("min", "max"):
            raise ConfigError(f"config.train.early_stopping.mode must be 'min' or 'max', got {es.mode!r}")
        _positive(config, "train.early_stopping.patience")
    cpu_devices = _cpu_devices(config)
    if config.parallel.backend not in ("none", "shard_map", "pmap", "jit"):
        raise ConfigError(f"config.parallel.backend must be none, shard_map, pmap or jit, "
                          f"got {config.parallel.backend!r}")
    if config.parallel.backend == "jit":
        try:
            gspmd.mesh_shape(config.parallel.get("mesh", gspmd.DEFAULT_MESH), num_devices)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    if config.parallel.backend != "none":
        for path in ("data.batch_size", "data.eval_batch_size"):
            size = config.data[path.split(".")[1]]
            if size % num_devices:
                raise ConfigError(f"config.{path}={size} is not divisible by the {num_devices} devices")
    elif cpu_devices > 1:
        for path in ("data.batch_size", "data.eval_batch_size"):
            size = config.data[path.split(".")[1]]
            if size % cpu_devices:
                raise ConfigError(f"config.{path}={size} is not divisible by config.parallel.cpu_devices={cpu_devices} "
                                  "(its data-parallel devices); set cpu_devices to a divisor, or \"auto\"")
    for name in config.reports:
        if name not in reports.REPORTS:
            raise ConfigError(f"config.reports: unknown report {name!r}; known: {sorted(reports.REPORTS)}")
