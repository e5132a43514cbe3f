"""Orbax checkpoints of the TrainState plus a small JSON of loop bookkeeping, never bad.

Saving is synchronous and atomic (orbax writes a temporary directory, then renames it), so a run killed at any
moment leaves only whole checkpoints; ``max_to_keep`` old ones are kept. A state is saved only when every
parameter, model-state and optimizer-state value is finite, and its metadata carries ``state_sha256``, the
SHA-256 of the whole state (``state.params_sha256`` over the host copy). ``restore_latest_good`` restores the
newest step that restores *and* hashes to its digest; a step that fails either is reported by number, moved aside
to ``<directory>-damaged/<step>`` (never deleted), and the previous one is tried. Restoring takes an abstract
target (shapes/dtypes/shardings of a freshly initialised state) so the restored pytree has exactly the live
structure and placement.
"""
from __future__ import annotations

import os
import shutil
import sys

import jax
import numpy as np
from jax.experimental import multihost_utils

from jaxml import parallel
from jaxml.train.state import params_sha256


class DamagedCheckpointError(RuntimeError):
    """A checkpoint step did not restore or did not match its digest."""


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


class Checkpointer:
    def __init__(self, directory: str, *, max_to_keep: int = 3):
        ocp = _orbax()
        self.directory = os.path.abspath(directory)
        self.damaged_directory = self.directory + "-damaged"
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
        meta = {**meta, "state_sha256": params_sha256(host_state)}
        ocp = _orbax()
        self.manager.save(int(step), args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                             meta=ocp.args.JsonSave(meta)), force=True)
        self.manager.wait_until_finished()

    def restore(self, step: int, target_state):
        """(state, meta) of ``step``, verified against its digest; ``DamagedCheckpointError`` naming the step."""
        ocp = _orbax()
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target_state)
        try:
            out = self.manager.restore(int(step), args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
            state, meta = out["state"], dict(out["meta"])
        except Exception as e:  # noqa: BLE001 — any failure to read a step makes that step damaged
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
            raise DamagedCheckpointError(f"checkpoint step {step} in {self.directory} does not restore "
                                         f"({type(e).__name__}: {first})") from None
        digest = meta.get("state_sha256")
        if digest is not None and params_sha256(owned_copy(parallel.host_local_copy(state))) != digest:
            raise DamagedCheckpointError(f"checkpoint step {step} in {self.directory} does not match its digest "
                                         "(its files were changed after it was written)")
        return state, meta

    def restore_latest_good(self, target_state):
        """(state, meta, step) of the newest step that restores and verifies, or (None, {}, None) when none
        does; each damaged step on the way is logged and moved aside."""
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                state, meta = self.restore(step, target_state)
                return state, meta, step
            except DamagedCheckpointError as e:
                self._move_aside(step, str(e))
        return None, {}, None

    def _move_aside(self, step: int, reason: str) -> None:
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices(f"jaxml-damaged-{step}")   # every process has read the step
        target = os.path.join(self.damaged_directory, str(step))
        if jax.process_index() == 0:
            os.makedirs(self.damaged_directory, exist_ok=True)
            if os.path.exists(target):
                shutil.rmtree(target)
            shutil.move(os.path.join(self.directory, str(step)), target)
        print(f"jaxml: {reason}; moved it aside to {target}", file=sys.stderr, flush=True)
        self.manager.reload()

    def close(self) -> None:
        self.manager.close()
