"""Orbax checkpoints of the TrainState plus a small JSON of loop bookkeeping, never bad.

Saving is synchronous and atomic (orbax writes a temporary directory, then renames it), so a run killed at any
moment leaves only whole checkpoints; ``max_to_keep`` old ones are kept. A state is saved only when every
parameter, model-state and optimizer-state value is finite, and its metadata carries ``state_sha256``, the
SHA-256 of the whole state (``state.params_sha256`` over the host copy). ``restore_latest_good`` restores the
newest step that restores *and* hashes to its digest; a step that fails either (or has no digest) is reported in
one line, moved aside to ``<directory>-damaged/<step>`` (``<step>.1``, ... when taken; never deleted or
overwritten), its full error appended to ``<workdir>/errors.log``, and the previous one is tried. Damage is
integrity, never a config change: when no step's recorded structure (leaf paths, shapes, dtypes) is the one the
current config builds, ``IncompatibleCheckpointError`` is raised before anything is read or moved. A step
records how many devices its state spanned: resuming on another count says that the result will equal an
uninterrupted run to float32 rounding only (the gradient sums change order). Restoring
takes an abstract target (shapes/dtypes/shardings of a freshly initialised state) so the restored pytree has
exactly the live structure and placement.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import sys
import traceback

import jax
import numpy as np
from jax.experimental import multihost_utils

from jaxml import parallel
from jaxml.train.config import ConfigError
from jaxml.train.state import params_sha256

_NOISY_LOGGERS = ("absl", "orbax", "tensorstore", "asyncio")


class DamagedCheckpointError(RuntimeError):
    """A checkpoint step did not restore or did not match its digest."""


class IncompatibleCheckpointError(ConfigError):
    """The stored checkpoints hold a state of another structure than the current config builds."""


@contextlib.contextmanager
def quiet_orbax():
    """Orbax, TensorStore and asyncio log nothing below CRITICAL inside: a failed read or write is reported by
    jaxml in one line (its full error goes to the workdir's errors.log)."""
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def log_error(workdir: str, what: str, exc: BaseException) -> None:
    """Append ``what`` and the full traceback of ``exc`` to ``<workdir>/errors.log`` (best effort: the disk may
    be full)."""
    try:
        with open(os.path.join(workdir, "errors.log"), "a") as f:
            f.write(f"--- {what}\n{''.join(traceback.format_exception(exc))}\n")
    except OSError:
        pass


def layout_devices(tree) -> int:
    """How many devices the arrays of ``tree`` span (1 for host arrays): the run's data-parallel layout."""
    return max([len(leaf.sharding.device_set) for leaf in jax.tree.leaves(tree) if hasattr(leaf, "sharding")]
               or [1])


def _key_name(key) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def leaf_specs(tree) -> dict:
    """{"a.b.c": (shape, dtype name)} of every array leaf of ``tree`` (live arrays, abstract ones or orbax
    metadata), paths spelled the same for dicts, tuples and named tuples."""
    return {".".join(_key_name(k) for k in path): (tuple(leaf.shape), np.dtype(leaf.dtype).name)
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def first_difference(stored: dict, target: dict) -> str:
    """The first leaf in which two ``leaf_specs`` differ, in words."""
    for path in sorted(set(stored) | set(target)):
        a, b = stored.get(path), target.get(path)
        if a != b:
            def say(spec):
                return "no such leaf" if spec is None else f"shape {spec[0]} {spec[1]}"
            return f"{path}: stored {say(a)}, this config builds {say(b)}"
    return "no difference"


def owned_copy(tree):
    """A host copy that shares no memory with device buffers (``np.asarray`` of a CPU array may alias its buffer,
    and a state the next step donates must not stay referenced from the host)."""
    return jax.tree.map(lambda a: np.array(a, copy=True), tree)


def non_finite_leaves(tree) -> list[str]:
    """Paths of the floating-point leaves of a host pytree that hold a NaN or an infinity."""
    bad = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        arr = np.asarray(leaf)
        if np.issubdtype(arr.dtype, np.inexact) and not np.all(np.isfinite(arr)):
            bad.append(jax.tree_util.keystr(path))
    return bad


def _orbax():
    """orbax.checkpoint, imported when a checkpoint is first made or read: start-up that a command which never
    checkpoints (naive Bayes, K-means) would otherwise pay (bench/README.md)."""
    import orbax.checkpoint as ocp
    return ocp


def _is_disk_full(e: BaseException) -> bool:
    while e is not None:
        if getattr(e, "errno", None) == errno.ENOSPC or "No space left" in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False


class Checkpointer:
    def __init__(self, directory: str, *, max_to_keep: int = 3):
        ocp = _orbax()
        self.directory = os.path.abspath(directory)
        if os.path.lexists(self.directory) and not os.path.isdir(self.directory):
            raise FileExistsError(f"{self.directory} exists and is not a directory: checkpoints are kept there; move "
                                  "it away or use another --workdir")
        self.damaged_directory = self.directory + "-damaged"
        with quiet_orbax():   # it reads every step's metadata: a damaged one is reported by the restore instead
            self.manager = ocp.CheckpointManager(
                self.directory,
                options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                                     enable_async_checkpointing=False))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, meta: dict, *, host_state=None) -> None:
        """Save ``state`` (the driver's saveable layout) at ``step`` with ``meta`` and the state's digest;
        ``host_state`` is its host copy (computed when not given). A non-finite value is refused with
        ``FloatingPointError`` naming the leaves, and nothing is written."""
        host_state = owned_copy(parallel.host_local_copy(state) if host_state is None else host_state)
        bad = non_finite_leaves(host_state)
        if bad:
            raise FloatingPointError(f"the state at step {step} is not finite ({', '.join(bad[:4])}"
                                     f"{' ...' if len(bad) > 4 else ''}); it was not saved")
        meta = {**meta, "state_sha256": params_sha256(host_state), "devices": layout_devices(state)}
        if not os.path.isdir(self.directory):
            raise FileNotFoundError(f"{self.directory} has gone during the run (its workdir was deleted or moved); "
                                    f"step {step} cannot be saved, stopping")
        ocp = _orbax()
        try:
            with quiet_orbax():
                self.manager.save(int(step), args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                                     meta=ocp.args.JsonSave(meta)), force=True)
                self.manager.wait_until_finished()
        except Exception as e:
            if not _is_disk_full(e):
                raise
            log_error(os.path.dirname(self.directory), f"saving step {step}", e)
            raise OSError(errno.ENOSPC, f"no space left on the device of {self.directory}: step {step} was not "
                                        "saved (earlier checkpoints are intact); free space and run again to resume"
                          ) from None

    def restore(self, step: int, target_state):
        """(state, meta) of ``step``, verified against its digest; ``DamagedCheckpointError`` naming the step."""
        ocp = _orbax()
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target_state)
        try:
            with quiet_orbax():
                out = self.manager.restore(int(step), args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
            state, meta = out["state"], dict(out["meta"])
        except Exception as e:  # noqa: BLE001 — any failure to read a step makes that step damaged
            log_error(os.path.dirname(self.directory), f"restoring step {step} of {self.directory}", e)
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
            raise DamagedCheckpointError(f"checkpoint step {step} in {self.directory} does not restore "
                                         f"({type(e).__name__}: {first})") from None
        digest = meta.get("state_sha256")
        if digest is None:
            raise DamagedCheckpointError(f"checkpoint step {step} in {self.directory} has no digest (state_sha256) "
                                         "in its metadata, so it cannot be verified")
        if params_sha256(owned_copy(parallel.host_local_copy(state))) != digest:
            raise DamagedCheckpointError(f"checkpoint step {step} in {self.directory} does not match its digest "
                                         "(its files were changed after it was written)")
        return state, meta

    def stored_specs(self, step: int) -> dict | None:
        """``leaf_specs`` of the state recorded at ``step`` (from its metadata, no array read), or None when
        that metadata does not read."""
        ocp = _orbax()
        try:
            with quiet_orbax():
                metadata = ocp.StandardCheckpointer().metadata(os.path.join(self.directory, str(step), "state"))
            return leaf_specs(getattr(metadata, "item_metadata", metadata)) or None   # {}: nothing recorded
        except Exception:  # noqa: BLE001 — unreadable metadata: the step's restore will decide
            return None

    def check_compatible(self, target_state) -> None:
        """Raise ``IncompatibleCheckpointError`` when steps exist, at least one records its structure, and none
        records the structure of ``target_state``: the config changed what is trained, which is no damage."""
        steps = sorted(self.manager.all_steps(), reverse=True)
        specs = {step: self.stored_specs(step) for step in steps}
        target = leaf_specs(target_state)
        readable = [step for step in steps if specs[step] is not None]
        if readable and not any(specs[step] == target for step in readable):
            raise IncompatibleCheckpointError(
                f"the checkpoints in {self.directory} hold a state that this config does not build "
                f"({first_difference(specs[readable[0]], target)}): this config cannot resume that run; use a new "
                "--workdir (nothing in this one was changed)")

    def restore_latest_good(self, target_state):
        """(state, meta, step) of the newest step that restores and verifies, or (None, {}, None) when none
        does; each damaged step on the way is logged and moved aside. A state of another structure is refused
        first (``check_compatible``)."""
        with quiet_orbax():
            self.check_compatible(target_state)
            for step in sorted(self.manager.all_steps(), reverse=True):
                try:
                    state, meta = self.restore(step, target_state)
                    saved_on, now_on = meta.get("devices"), layout_devices(target_state)
                    if saved_on is not None and saved_on != now_on and jax.process_index() == 0:
                        print(f"jaxml: resuming step {step}, saved on {saved_on} device(s), on {now_on}: the steps "
                              "from here sum gradients in another order, so the result equals an uninterrupted "
                              "run to float32 rounding, not bit for bit", file=sys.stderr, flush=True)
                    return state, meta, step
                except DamagedCheckpointError as e:
                    self._move_aside(step, str(e))
        return None, {}, None

    def _free_name(self, step: int) -> str:
        """``<damaged>/<step>``, or ``<step>.1``, ``<step>.2``, ... when taken: nothing moved aside is replaced."""
        target, n = os.path.join(self.damaged_directory, str(step)), 0
        while os.path.lexists(target):
            n += 1
            target = os.path.join(self.damaged_directory, f"{step}.{n}")
        return target

    def _move_aside(self, step: int, reason: str) -> None:
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices(f"jaxml-damaged-{step}")   # every process has read the step
        target = self._free_name(step)
        if jax.process_index() == 0:
            os.makedirs(self.damaged_directory, exist_ok=True)
            shutil.move(os.path.join(self.directory, str(step)), target)
        print(f"jaxml: {reason}; moved it aside to {target}", file=sys.stderr, flush=True)
        self.manager.reload()

    def close(self) -> None:
        self.manager.close()
