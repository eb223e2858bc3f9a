"""Checkpoints of a run's whole state (a `RunState` pytree) with orbax's `CheckpointManager`.

Saves are asynchronous (training goes on while the files are written); `close()` waits. What
this module guarantees on top of orbax:

* **Only finite states are saved.** `save` checks every floating leaf (parameters, optimizer
  states, batch statistics, pools) and raises `NonFiniteState` instead of writing a NaN or inf.
* **Silent corruption is detected.** Each checkpoint holds, beside the state, a SHA-256 digest of
  its bytes (`digest` item); `restore` recomputes it and treats a mismatch as damage.
* **Damaged checkpoints fall back.** A checkpoint that cannot be read (a truncated or deleted
  file) or whose digest does not match is reported as damaged, and the newest readable older
  one is restored instead, with a warning. A checkpoint whose saved shapes differ from this
  config's is a structure mismatch, reported as such (another model wrote it).
* **Incomplete step directories are skipped.** A step directory without orbax's commit marker
  (`commit_success.txt`; e.g. an empty or partly copied one) is ignored with a warning, and
  orbax's temporary directories of interrupted saves are removed when the manager starts.
  A training run (not a read-only one) moves damaged and incomplete step directories to
  `<workdir>/damaged_checkpoints/` rather than deleting them, so that its own saves can take
  their steps again.
* **The best checkpoint is kept beside the latest ones.** With `best_metric` (e.g. `fid`, an
  evaluator's scalar; `train.best_metric`), a save may carry that metric and orbax's
  preservation policies keep the `keep` newest checkpoints *and* the best one by it
  (`LatestN` or `BestN`); `best_step()` names it.
* **A full disk is one error.** A save that fails for lack of space raises `DiskFullError`,
  naming the directory and the last complete checkpoint, which stays intact.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import re
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from orbax.checkpoint.checkpoint_managers import preservation_policy as policies

from ganjax.errors import CheckpointError, TrainingError
from ganjax.train_state import RunState

COMMIT_MARKER = "commit_success.txt"
_ENOSPC = re.compile(r"No space left on device|os_error_code='28'|\[Errno 28\]|ENOSPC")


class NonFiniteState(TrainingError):
    """The state to be saved holds NaN or inf values."""


class DiskFullError(TrainingError):
    """A checkpoint could not be written for lack of disk space."""


def state_digest(host_state) -> str:
    """SHA-256 over the bytes, shapes and dtypes of every leaf, in tree order."""
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(host_state):
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def non_finite_leaves(host_state) -> list[str]:
    """Paths of the floating leaves that hold a NaN or an inf (e.g. `discriminator.params...`)."""
    bad = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(host_state)[0]:
        a = np.asarray(leaf)
        if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
            bad.append(jax.tree_util.keystr(path).lstrip("."))
    return bad


def _is_disk_full(error: BaseException) -> bool:
    while error is not None:
        if isinstance(error, OSError) and error.errno == 28:
            return True
        if _ENOSPC.search(str(error)):
            return True
        error = error.__cause__ or error.__context__
    return False


class _NoMetricsNotice(logging.logging.Filter):
    """Drops orbax's warning for each save without the tracked metric: most saves of a run
    that keeps its best checkpoint carry none (only those at an evaluation of the metric)."""

    def filter(self, record) -> bool:
        return "did not provide metrics" not in record.getMessage()


logging.get_absl_logger().addFilter(_NoMetricsNotice())


class Checkpointer:
    """Saves and restores a run's state in `directory`, keeping the last `keep` checkpoints
    and, with `best_metric`, the best one by that metric (lowest for `best_mode="min"`)."""

    def __init__(self, directory: str, keep: int, read_only: bool = False, best_metric: str = "",
                 best_mode: str = "min"):
        if best_mode not in ("min", "max"):
            raise ValueError(f"best_mode must be 'min' or 'max', got {best_mode!r}.")
        self.directory = os.path.abspath(directory)
        self.read_only = read_only
        self.best_metric, self.best_mode = best_metric, best_mode
        keep_options = {"max_to_keep": keep}
        if best_metric:
            metric = lambda metrics: float(metrics[best_metric])  # noqa: E731
            keep_options = {
                "best_fn": metric,
                "best_mode": best_mode,
                "preservation_policy": policies.AnyPreservationPolicy([
                    policies.LatestN(n=keep),
                    # BestN keeps the last n after sorting; reverse=True sorts descending.
                    policies.BestN(get_metric_fn=metric, reverse=best_mode == "min", n=1,
                                   keep_checkpoints_without_metrics=False),
                ]),
            }
        self.manager = ocp.CheckpointManager(
            self.directory,
            item_handlers={
                "state": ocp.StandardCheckpointHandler(),
                "digest": ocp.JsonCheckpointHandler(),
            },
            options=ocp.CheckpointManagerOptions(
                create=not read_only, read_only=read_only, cleanup_tmp_directories=not read_only,
                **keep_options,
            ),
        )
        self._pending: int | None = None  # step of the save in flight

    # ---------------------------------------------------------------------------------------
    # Which checkpoints there are.
    # ---------------------------------------------------------------------------------------

    def _complete(self, step: int) -> bool:
        return os.path.exists(os.path.join(self.directory, str(step), COMMIT_MARKER))

    def all_steps(self) -> list[int]:
        """Complete checkpoints, oldest first; incomplete step directories are skipped."""
        steps = sorted(self.manager.all_steps())
        incomplete = [s for s in steps if not self._complete(s) and s != self._pending]
        if incomplete:
            logging.warning(
                "Skipping step directories %s in %s: no %s (an interrupted or partial copy).",
                incomplete, self.directory, COMMIT_MARKER,
            )
            self._set_aside(incomplete)
        return [s for s in steps if s not in incomplete]

    def _set_aside(self, steps: list[int]) -> None:
        """Moves step directories to `../damaged_checkpoints/` (training runs only)."""
        if self.read_only or not steps:
            return
        aside = os.path.join(os.path.dirname(self.directory), "damaged_checkpoints")
        os.makedirs(aside, exist_ok=True)
        for s in steps:
            target = os.path.join(aside, f"{s}.{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(os.path.join(self.directory, str(s)), target)
            logging.warning("Moved step directory %d of %s to %s.", s, self.directory, target)
        self.manager.reload()

    def latest_step(self) -> int | None:
        steps = self.all_steps()
        return steps[-1] if steps else None

    def best_step(self) -> int | None:
        """The complete checkpoint with the best `best_metric`; None if none carries it."""
        if not self.best_metric:
            return None
        complete = set(self.all_steps())
        scored = []
        for step in complete:
            metrics = self.manager.metrics(step)
            if metrics and self.best_metric in metrics:
                scored.append((float(metrics[self.best_metric]), step))
        if not scored:
            return None
        return (min if self.best_mode == "min" else max)(scored)[1]

    def metrics(self, step: int) -> dict | None:
        """The metrics saved with checkpoint `step` (None if it carries none)."""
        return self.manager.metrics(step)

    # ---------------------------------------------------------------------------------------
    # Restore.
    # ---------------------------------------------------------------------------------------

    def _saved_shapes(self, step: int) -> list[tuple] | None:
        """Sorted shapes of the saved arrays (None if the metadata cannot be read)."""
        try:
            meta = self.manager.item_metadata(step)["state"]
            leaves = jax.tree.leaves(meta)
        except Exception:  # noqa: BLE001  (unreadable metadata is damage, not a mismatch)
            return None
        return sorted(tuple(m.shape) for m in leaves) if leaves else None

    def _restore_one(self, step: int, abstract) -> RunState:
        has_digest = os.path.isdir(os.path.join(self.directory, str(step), "digest"))
        args = {"state": ocp.args.StandardRestore(abstract)}
        if has_digest:
            args["digest"] = ocp.args.JsonRestore()
        restored = self.manager.restore(step, args=ocp.args.Composite(**args))
        if has_digest:
            want = restored.digest["sha256"]
            got = state_digest(jax.device_get(restored.state))
            if got != want:
                raise ValueError(f"the state's SHA-256 {got[:12]}... differs from the saved {want[:12]}...")
        return restored.state

    def restore(self, template: RunState, step: int | None = None) -> RunState:
        """Checkpoint `step` (default: the newest readable one) restored into `template`'s
        structure, or `template` itself if the directory holds no checkpoint.

        Raises CheckpointError if `step` is absent or damaged, if the checkpoint's shapes are
        not this config's (another model wrote it), or if every checkpoint is damaged.
        """
        steps = self.all_steps()
        if step is not None and step not in steps:
            raise CheckpointError(f"{self.directory} has no checkpoint of step {step}; it has {steps}.")
        candidates = [step] if step is not None else steps[::-1]
        if not candidates:
            return template
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
        expected = sorted(tuple(x.shape) for x in jax.tree.leaves(abstract))
        damaged = []
        for s in candidates:
            saved = self._saved_shapes(s)
            if saved is not None and saved != expected:
                raise CheckpointError(
                    f"The checkpoint at step {s} in {self.directory} does not fit this config (its "
                    f"arrays have other shapes). It was written by a different model or algorithm: "
                    "use a new --workdir, or run with the config that wrote it."
                )
            try:
                state = self._restore_one(s, abstract)
            except Exception as e:  # noqa: BLE001  (orbax raises many kinds on damaged files)
                if saved is not None and "tree structures do not match" in str(e):
                    # Readable metadata, the same shapes, another arrangement: not damage.
                    raise CheckpointError(
                        f"The checkpoint at step {s} in {self.directory} does not fit this config "
                        "(its state is arranged otherwise: another optimizer chain or algorithm "
                        "option wrote it): use a new --workdir, or run with the config that wrote it."
                    ) from None
                reason = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
                logging.warning("Checkpoint %d in %s is damaged (%s).", s, self.directory, reason)
                damaged.append((s, reason))
                continue
            if damaged:
                logging.warning(
                    "Damaged checkpoint(s) %s in %s; restored step %d, the newest readable one.",
                    [d for d, _ in damaged], self.directory, s,
                )
                self._set_aside([d for d, _ in damaged])
            return state
        detail = "; ".join(f"step {s}: {r}" for s, r in damaged)
        raise CheckpointError(
            f"Every checkpoint tried in {self.directory} is damaged ({detail}). Move the damaged "
            "step directories away to start over, or use a new --workdir."
        )

    # ---------------------------------------------------------------------------------------
    # Save.
    # ---------------------------------------------------------------------------------------

    def save(self, step: int, state: RunState, metrics: dict[str, float] | None = None) -> None:
        """Writes `state` as checkpoint `step` (asynchronously) with its digest, and `metrics`
        (e.g. `{"fid": 12.3}`; what the best checkpoint is chosen by).

        Raises NonFiniteState (nothing written) if any floating leaf is NaN or inf, and
        DiskFullError if this or the previous save ran out of space.
        """
        host = jax.device_get(state)
        bad = non_finite_leaves(host)
        if bad:
            shown = ", ".join(bad[:4]) + (f" and {len(bad) - 4} more" if len(bad) > 4 else "")
            raise self.non_finite_error(f"values in the state ({shown})", step)
        # A save that cannot fit is refused before it starts: an asynchronous write that runs
        # out of space fails in background threads, after the step it belongs to.
        needed = int(1.1 * sum(np.asarray(x).nbytes for x in jax.tree.leaves(host))) + (256 << 10)
        if shutil.disk_usage(self.directory).free < needed:
            self.wait_until_finished()
            self.raise_if_disk_full(OSError(errno.ENOSPC, f"{needed} bytes needed"), step)
        try:
            self.manager.save(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(state),
                    digest=ocp.args.JsonSave({"sha256": state_digest(host), "step": int(step)}),
                ),
                metrics=metrics,
                force=True,
            )
            self._pending = step
        except Exception as e:
            previous_failed = self._pending is not None and not self._complete(self._pending)
            self.raise_if_disk_full(e, self._pending if previous_failed else step)
            raise

    def non_finite_error(self, what: str, step: int) -> NonFiniteState:
        """The error for a NaN / inf at `step`, naming the newest complete (hence finite)
        checkpoint and how to go on."""
        self.wait_until_finished()
        last = self.latest_step()
        resume = (
            "re-run to resume from that checkpoint; if the resumed run stops again at once, its "
            "weights had already diverged: move the later step directories out of "
            f"{self.directory} to resume from an earlier one, or start afresh with a new --workdir"
            if last is not None else "re-run to start afresh"
        )
        return NonFiniteState(
            f"Non-finite {what} at step {step}. The run stopped without saving this state; the "
            f"last good checkpoint is {self._describe(last)}. Lower the learning rates "
            "(--config.optim.g_lr / --config.optim.d_lr) or clip the gradients "
            "(--config.optim.grad_clip_norm; all three may change on resume), add a "
            f"gradient penalty or spectral norm, and {resume}."
        )

    def _describe(self, step: int | None) -> str:
        return f"step {step} ({os.path.join(self.directory, str(step))})" if step is not None else (
            "none (nothing was saved yet)"
        )

    def raise_if_disk_full(self, error: BaseException, step: int | None = None) -> None:
        """DiskFullError (naming the last complete checkpoint) if `error` comes from a full
        disk: a failed save of checkpoint `step`, or any other write of the run (step None)."""
        if not _is_disk_full(error):
            return
        self._pending = None
        what = f"checkpoint {step}" if step is not None else "the run's files"
        raise DiskFullError(
            f"No space left on the disk of {self.directory} while writing {what}: the last "
            "complete checkpoint is "
            f"{self._describe(self.latest_step())}, intact. Free space (or move the workdir) and "
            "re-run the same command to resume."
        ) from None

    def wait_until_finished(self) -> None:
        """Blocks until the save in flight is written; DiskFullError if it ran out of space."""
        try:
            self.manager.wait_until_finished()
        except Exception as e:
            self.raise_if_disk_full(e, self._pending)
            raise
        self._pending = None

    def reached_preemption(self, step: int) -> bool:
        return self.manager.reached_preemption(step)

    def close(self) -> None:
        try:
            self.wait_until_finished()
        finally:
            self.manager.close()

    def __enter__(self) -> "Checkpointer":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close()
            return False
        try:  # an error is on its way out: let the save in flight finish, report that error
            self.close()
        except Exception as e:  # noqa: BLE001
            logging.warning("While stopping: %s", e)
        return False
