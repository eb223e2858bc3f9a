"""Checkpoints of the whole `GANState` with orbax's `CheckpointManager`.

Saves are asynchronous (training goes on while the files are written); `close()` waits. On
restore the saved arrays are read against the shapes, dtypes and shardings of a freshly
initialised state, so a checkpoint written by another architecture is an error that says so.
"""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp

from ganjax.train_state import GANState


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used for this config; the message names the fix."""


class Checkpointer:
    def __init__(self, directory: str, keep: int):
        self.directory = os.path.abspath(directory)
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def restore(self, template: GANState) -> GANState:
        """The latest checkpoint restored into `template`'s structure (or `template` if none)."""
        step = self.manager.latest_step()
        if step is None:
            return template
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

    def save(self, step: int, state: GANState, force: bool = False) -> bool:
        return self.manager.save(
            step, args=ocp.args.Composite(state=ocp.args.StandardSave(state)), force=force
        )

    def reached_preemption(self, step: int) -> bool:
        return self.manager.reached_preemption(step)

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()
