"""Orbax checkpoints of the TrainState plus a small JSON of loop bookkeeping.

Saving is synchronous and atomic (orbax writes a temporary directory, then renames it), so a run
killed at any moment leaves only whole checkpoints; ``max_to_keep`` old ones are kept. Restoring
takes an abstract target (shapes/dtypes/shardings of a freshly initialised state) so the restored
pytree has exactly the live structure and placement.
"""
from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp


class Checkpointer:
    def __init__(self, directory: str, *, max_to_keep: int = 3):
        self.directory = os.path.abspath(directory)
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                                 enable_async_checkpointing=False))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, meta: dict) -> None:
        self.manager.save(int(step), args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                             meta=ocp.args.JsonSave(meta)), force=True)
        self.manager.wait_until_finished()

    def restore(self, step: int, target_state):
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target_state)
        out = self.manager.restore(int(step), args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                                                      meta=ocp.args.JsonRestore()))
        return out["state"], dict(out["meta"])

    def close(self) -> None:
        self.manager.close()
