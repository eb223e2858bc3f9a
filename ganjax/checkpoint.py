"""Checkpoints of a run's whole state (a `RunState` pytree) with orbax's `CheckpointManager`.

Saves are asynchronous (training goes on while the files are written); `close()` waits. On
restore the saved arrays are read against the shapes, dtypes and shardings of a freshly
initialised state, so a checkpoint written by another architecture is an error that says so.
"""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp

from ganjax.errors import CheckpointError
from ganjax.train_state import RunState


class Checkpointer:
    def __init__(self, directory: str, keep: int):
        self.directory = os.path.abspath(directory)
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def restore(self, template: RunState, step: int | None = None) -> RunState:
        """Checkpoint `step` (default: the latest) restored into `template`'s structure, or
        `template` itself if the directory holds no checkpoint."""
        if step is None:
            step = self.manager.latest_step()
        if step is None:
            return template
        if step not in self.manager.all_steps():
            raise CheckpointError(
                f"{self.directory} has no checkpoint of step {step}; it has {self.all_steps()}."
            )
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
        try:
            restored = self.manager.restore(
                step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
            )
        except Exception as e:  # orbax raises ValueError/KeyError/... on a mismatch
            raise CheckpointError(
                f"The checkpoint at step {step} in {self.directory} does not fit this config "
                f"({type(e).__name__}: {str(e)[:300]}). It was written by a different model or "
                "algorithm: use a new --workdir, or run with the config that wrote it."
            ) from e
        return restored.state

    def save(self, step: int, state: RunState, force: bool = False) -> bool:
        return self.manager.save(
            step, args=ocp.args.Composite(state=ocp.args.StandardSave(state)), force=force
        )

    def reached_preemption(self, step: int) -> bool:
        return self.manager.reached_preemption(step)

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()
