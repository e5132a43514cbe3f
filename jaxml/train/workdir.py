"""What keeps a workdir consistent across runs: one run at a time, and one config.

``WorkdirLock``: ``<workdir>/LOCK`` holds the holder's pid, host and start time, created atomically
(``O_EXCL``); a second run in the same workdir fails naming the holder, and a lock left by a process that no
longer exists on this host is taken over with a message. ``check_config``: the first run stores its config as
``<workdir>/config.json``; a later run with a different config is refused with a field-by-field diff. Only fields
that say *how* a run goes on (``RESUMABLE``: optimizer, regularization, train, reports, parallel settings) may
change, each named in ``allow`` (e.g. ``optimizer.lr`` to fine-tune) — or freely while no checkpoint exists, as
there is nothing to resume; a change of what is trained (model, data, objective, seed) needs a new workdir.
``record_config`` stores an allowed change once the stored state has been restored (the checkpointer refuses a
state whose structure the new config does not build, before anything is written). Both act on process 0 only:
the processes of a multi-host run share one workdir.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from typing import Sequence

import jax

from jaxml import models
from jaxml.train.config import ConfigError, base_config

# Fields that never change what a run computes: they may differ between a run and its resumption.
RUNTIME_FIELDS = ("train.progress_bar", "train.sync_every", "train.checkpoint_every", "train.checkpoint_every_s",
                  "train.keep_checkpoints", "data.data_dir", "train.prefetch", "train.profile_steps",
                  "parallel.cpu_devices")   # the machine's layout (jaxml/layout.py): float32 rounding only
# Fields (and prefixes of fields) that say how a run goes on, not what it trains: a resumed run may change them
# when ``--allow_config_change`` names them (the checkpointer still refuses one that changes the state's structure).
RESUMABLE = ("optimizer", "regularization", "train", "reports", "parallel", "data.eval_batch_size")


class WorkdirBusyError(RuntimeError):
    """Another live run holds the workdir's lock."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkdirLock:
    """``with WorkdirLock(workdir):`` — hold ``<workdir>/LOCK`` for the duration of a run (process 0)."""

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, "LOCK")
        self.held = False

    def __enter__(self):
        if jax.process_index() != 0:
            return self
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            return self
        raise WorkdirBusyError(f"could not take the lock {self.path}")

    def _take_over_if_stale(self) -> None:
        try:
            with open(self.path) as f:
                holder = json.load(f)
        except (OSError, ValueError):
            holder = {}
        pid, host = holder.get("pid"), holder.get("host")
        if host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
            print(f"jaxml: taking over the stale lock {self.path} of pid {pid} (no longer running)", file=sys.stderr)
            os.remove(self.path)
            return
        if not holder:
            raise WorkdirBusyError(f"{self.path} exists but cannot be read; if no run uses this workdir, delete it")
        raise WorkdirBusyError(
            f"workdir {os.path.dirname(self.path)} is in use by pid {pid} on host {host} since "
            f"{holder.get('started')}; wait for it, use another --workdir, or delete {self.path} if that run is dead")

    def __exit__(self, *exc):
        if self.held:
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
            self.held = False
        return False


def check_output_dir(path: str, names: Sequence[str]) -> None:
    """Make the folder ``path`` and check that ``names`` can be written in it, before any work: ``path`` not a
    file, writable, and no name taken by a folder. Fails with ``ValueError`` naming the path."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise ValueError(f"--workdir {path!r} exists and is not a directory; give a folder for the outputs")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--workdir {path!r} cannot be made ({e.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"--workdir {path!r} is not writable")
    for name in names:
        if os.path.isdir(os.path.join(path, name)):
            raise ValueError(f"{os.path.join(path, name)!r} is a directory; the output file cannot be written there")


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_diff(stored: dict, current: dict) -> dict:
    """{field: (stored value, current value)} of every leaf field that differs (missing: None)."""
    a, b = _flatten(stored), _flatten(current)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def added_at_default(stored: dict, current: dict) -> set[str]:
    """Fields the stored config predates (a workdir written by an older jaxml) that the current config leaves at
    their ``base_config`` default, or a ``model.*`` field at its model's ``make`` default — the stored run
    behaved that way, so they are no change."""
    defaults = _flatten(json.loads(base_config().to_json_best_effort(sort_keys=True)))
    model_defaults = models.defaults(current.get("model", {}).get("name", ""))
    defaults.update(_flatten({"model": json.loads(json.dumps(model_defaults, default=str))}))
    old, new = _flatten(stored), _flatten(current)
    return {k for k, v in new.items() if k not in old and k in defaults and v == defaults[k]}


def _checkpoint_steps(workdir: str) -> list[str]:
    """The step directories in ``<workdir>/checkpoints``; a ``checkpoints`` that is not a directory is refused."""
    path = os.path.join(workdir, "checkpoints")
    if os.path.lexists(path) and not os.path.isdir(path):
        raise ConfigError(f"{path} exists and is not a directory: this run keeps its checkpoints there; move it away "
                          "or use another --workdir")
    return sorted(n for n in os.listdir(path) if n.isdigit()) if os.path.isdir(path) else []


def _read_stored(path: str) -> dict:
    try:
        with open(path) as f:
            stored = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not a readable JSON config ({type(e).__name__}: {e}): it records the config "
                          "of the run in this workdir; restore it (or rewrite it as that run's config) to resume, "
                          "or use a new --workdir") from None
    if not isinstance(stored, dict):
        raise ConfigError(f"{path} does not hold a config (a JSON object); restore it or use a new --workdir")
    return stored


def _has_records(workdir: str) -> bool:
    path = os.path.join(workdir, "metrics.jsonl")
    return os.path.exists(path) and os.path.getsize(path) > 0


def resumable(field: str) -> bool:
    """True when ``field`` (e.g. ``optimizer.lr``) may change between a run and its resumption."""
    return field in RUNTIME_FIELDS or any(field == p or field.startswith(p + ".") for p in RESUMABLE)


def check_config(workdir: str, config, allow: Sequence[str] = ()) -> None:
    """Refuse a run whose config cannot continue the run stored in ``workdir``, before anything is written: a
    differing field outside ``RESUMABLE`` (a new --workdir is needed), or a resumable one not in ``allow`` while
    a checkpoint exists; a corrupt ``config.json``, or checkpoints without one, are refused naming the file.
    The first run's config is stored at once; an allowed change is stored by ``record_config``."""
    path = os.path.join(workdir, "config.json")
    steps = _checkpoint_steps(workdir)
    current = json.loads(config.to_json_best_effort(sort_keys=True))
    if not os.path.lexists(path):
        if steps:
            raise ConfigError(f"{workdir} holds checkpoints (steps {', '.join(steps)}) but no config.json: the "
                              f"config that wrote them is unknown, so this run cannot be checked against it; restore "
                              f"{path}, or use a new --workdir")
        record_config(workdir, config)
        return
    stored = _read_stored(path)
    added = added_at_default(stored, current)
    diff = {k: v for k, v in config_diff(stored, current).items() if k not in RUNTIME_FIELDS and k not in added}
    fixed = {k: v for k, v in diff.items() if not resumable(k)}
    if diff and not steps and not _has_records(workdir):
        print(f"jaxml: {workdir} holds no checkpoint and no metric record: starting afresh with the changed config "
              f"({', '.join(diff)})", file=sys.stderr)
        record_config(workdir, config)
        return
    if fixed:
        lines = "; ".join(f"config.{k}: {a!r} -> {b!r}" for k, (a, b) in fixed.items())
        raise ConfigError(f"{workdir} holds a run of another config ({lines}): a run cannot continue with another "
                          "model, data, objective or seed; use a new --workdir for this config")
    refused = {k: v for k, v in diff.items() if k not in allow}
    if refused and steps:
        lines = "; ".join(f"config.{k}: {a!r} -> {b!r}" for k, (a, b) in refused.items())
        raise ConfigError(f"{workdir} holds a run with another config ({lines}). To resume that run with the "
                          f"change, pass --allow_config_change={','.join(refused)}; or use a new --workdir")
    if refused:
        print(f"jaxml: {workdir} has no checkpoint, so nothing to resume: starting again with the changed config "
              f"({', '.join(refused)})", file=sys.stderr)
        record_config(workdir, config)


def record_config(workdir: str, config) -> None:
    """Store ``config`` as ``<workdir>/config.json`` (atomically, process 0) unless it is stored already."""
    path = os.path.join(workdir, "config.json")
    current = json.loads(config.to_json_best_effort(sort_keys=True))
    if jax.process_index() != 0:
        return
    if os.path.exists(path):
        try:
            with open(path) as f:
                if json.load(f) == current:
                    return
        except ValueError:
            pass
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(current, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
