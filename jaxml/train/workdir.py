"""What keeps a workdir consistent across runs: one run at a time, and one config.

``WorkdirLock``: ``<workdir>/LOCK`` holds the holder's pid, host and start time, created atomically
(``O_EXCL``); a second run in the same workdir fails naming the holder, and a lock left by a process that no
longer exists on this host is taken over with a message. ``check_config``: the first run stores its config as
``<workdir>/config.json``; a later run with a different config is refused with a field-by-field diff unless
every differing field is named in ``allow`` (e.g. ``optimizer.lr`` to fine-tune). Both act on process 0 only:
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

from jaxml.train.config import ConfigError, base_config

# Fields that never change what a run computes: they may differ between a run and its resumption.
RUNTIME_FIELDS = ("train.progress_bar", "train.sync_every", "train.checkpoint_every", "train.checkpoint_every_s",
                  "train.keep_checkpoints", "data.data_dir", "train.prefetch", "train.profile_steps")


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
    their ``base_config`` default — the stored run behaved that way, so they are no change."""
    defaults = _flatten(json.loads(base_config().to_json_best_effort(sort_keys=True)))
    old, new = _flatten(stored), _flatten(current)
    return {k for k, v in new.items() if k not in old and k in defaults and v == defaults[k]}


def check_config(workdir: str, config, allow: Sequence[str] = ()) -> None:
    """Store ``config`` as ``<workdir>/config.json`` on the first run; refuse a resumption whose config differs
    outside ``RUNTIME_FIELDS`` and ``allow``, listing each field; record the allowed change."""
    path = os.path.join(workdir, "config.json")
    current = json.loads(config.to_json_best_effort(sort_keys=True))
    if os.path.exists(path):
        with open(path) as f:
            stored = json.load(f)
        added = added_at_default(stored, current)
        diff = {k: v for k, v in config_diff(stored, current).items() if k not in RUNTIME_FIELDS and k not in added}
        refused = {k: v for k, v in diff.items() if k not in allow}
        if refused:
            lines = "; ".join(f"config.{k}: {a!r} -> {b!r}" for k, (a, b) in refused.items())
            raise ConfigError(f"{workdir} holds a run with another config ({lines}). Use a new --workdir, or "
                              f"allow the change with --allow_config_change={','.join(refused)}")
        if not diff:
            return
    if jax.process_index() == 0:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(current, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
