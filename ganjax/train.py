"""The one training loop: restore -> step -> report / sample / evaluate / checkpoint -> done.

Every algorithm in `ganjax/gans/` (GAN or not: the loop needs only the `Algorithm` protocol and
a state with `.step`) runs through `train_and_evaluate(config, workdir)`:

* the state is initialised, replicated on the mesh, and replaced by the latest checkpoint in
  `workdir/checkpoints` if there is one (re-running the same command resumes);
* `train_step` is jit-compiled once with the batch sharded on the data axis, the state
  replicated and donated;
* scalars go to the console, TensorBoard and `workdir/metrics.jsonl` every `log_every` steps,
  with steps/s and ETA from clu's `ReportProgress`;
* the algorithm's sample grid (fixed inputs; one row per class for conditional models) is
  written as PNG to `workdir/samples/` and to TensorBoard every `sample_every` steps and at the
  end;
* the evaluators of `config.evals` run at their own cadence and at the end (`eval/*` scalars,
  images as PNG under `workdir/evals/`);
* checkpoints every `checkpoint_every` steps, at the end, and when SIGTERM/SIGINT arrive
  (the loop saves and returns cleanly);
* a NaN or infinite loss stops the run with an error; the last good checkpoint stays.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from clu import metric_writers, periodic_actions

from ganjax import evaluators, gans, images, runs, sharding
from ganjax.checkpoint import Checkpointer
from ganjax.errors import TrainingError  # noqa: F401  (re-exported)
from ganjax.runs import RESUMABLE_KEYS, flatten, record_config  # noqa: F401  (RESUMABLE_KEYS re-exported)
from ganjax.train_state import RunState


# --------------------------------------------------------------------------------------------
# Metric writers.
# --------------------------------------------------------------------------------------------


def _rows_up_to(path: str, step: int) -> list[str]:
    """The well-formed rows of a metrics.jsonl with "step" <= `step` (a row cut short by a
    crash, or logged after the checkpoint a run resumes from, is dropped)."""
    kept = []
    with open(path) as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and row.get("step", step + 1) <= step:
                kept.append(json.dumps(row) + "\n")
    return kept


class JsonlWriter(metric_writers.MetricWriter):
    """One JSON object per step, {"step": s, name: value, ...}, written and flushed as it is
    logged (a killed run loses nothing it logged). Opened with `resume_step`, it first drops
    the rows past that step, so a resumed run's file reads as one uninterrupted run."""

    def __init__(self, path: str, resume_step: int = 0):
        if os.path.exists(path):
            kept = _rows_up_to(path, resume_step)
            with open(path + ".tmp", "w") as f:
                f.writelines(kept)
            os.replace(path + ".tmp", path)
        self._file = open(path, "a")

    def write_scalars(self, step, scalars):
        row = {"step": int(step), **{k: float(v) for k, v in scalars.items()}}
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def write_summaries(self, step, values, metadata=None):
        pass

    def write_images(self, step, images):
        pass

    def write_videos(self, step, videos):
        pass

    def write_audios(self, step, audios, *, sample_rate):
        pass

    def write_texts(self, step, texts):
        pass

    def write_histograms(self, step, arrays, num_buckets=None):
        pass

    def write_hparams(self, hparams):
        pass

    def flush(self):
        self._file.flush()

    def close(self):
        self._file.close()


def truncate_tensorboard(logdir: str, step: int) -> None:
    """Rewrites the event files in `logdir` without the summaries of steps past `step` (those
    a resumed run logs again), so TensorBoard shows every step once."""
    import tensorflow as tf
    from tensorboard.compat.proto.event_pb2 import Event

    if not os.path.isdir(logdir):
        return
    for name in sorted(os.listdir(logdir)):
        if not name.startswith("events.out.tfevents"):
            continue
        path = os.path.join(logdir, name)
        records = []
        try:
            for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
                records.append(record)
        except tf.errors.DataLossError:  # a record cut short by a crash: keep what precedes it
            pass
        events = [Event.FromString(r) for r in records]
        kept = [r for r, e in zip(records, events) if not e.HasField("summary") or e.step <= step]
        if len(kept) == len(records):
            continue
        with tf.io.TFRecordWriter(path + ".tmp") as w:
            for r in kept:
                w.write(r)
        os.replace(path + ".tmp", path)


def create_writer(workdir: str, resume_step: int = 0) -> metric_writers.MetricWriter:
    """Console + TensorBoard + metrics.jsonl on process 0; nothing on the others. Rows and
    summaries past `resume_step` (logged by a run that was killed after its last checkpoint)
    are dropped first."""
    if jax.process_index() > 0:
        return metric_writers.MultiWriter([])
    logdir = os.path.join(workdir, "tensorboard")
    truncate_tensorboard(logdir, resume_step)
    return metric_writers.AsyncMultiWriter(
        [
            metric_writers.LoggingWriter(),
            metric_writers.SummaryWriter(logdir),
            JsonlWriter(os.path.join(workdir, "metrics.jsonl"), resume_step),
        ]
    )


# --------------------------------------------------------------------------------------------
# Stop requests (SIGTERM / SIGINT).
# --------------------------------------------------------------------------------------------


class StopRequest:
    """Turns SIGTERM and SIGINT into a flag the loop checks after each step; a second signal
    stops the process at once.

    The first signal asks for a checkpoint and a clean stop at the end of the step. Every
    signal is also seen by a watcher thread (through `signal.set_wakeup_fd`, which the
    interpreter writes to as each signal arrives, even while the main thread is inside a long
    XLA call and two signals would be one to a Python handler): at the second, it removes the
    temporary directory of a checkpoint save in flight, says so in one line, and ends the
    process (exit status 130). The complete checkpoints stay.
    """

    def __init__(self, checkpoint_dir: str | None = None):
        self.signal: int | None = None
        self.checkpoint_dir = checkpoint_dir
        self._previous = {}
        self._wakeup = None
        self._watcher: threading.Thread | None = None
        self._exiting = threading.Lock()

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)
        read, write = os.pipe()
        os.set_blocking(write, False)
        self._wakeup = (write, signal.set_wakeup_fd(write, warn_on_full_buffer=False))
        self._watcher = threading.Thread(
            target=self._watch, args=(read,), daemon=True, name="stop-watcher")
        self._watcher.start()
        return self

    def _handle(self, signum, frame):
        """The main thread's view: the first signal sets the flag; a second one that reaches
        it (the watcher normally stops first) stops the process as well."""
        del frame
        if self.signal is None:
            self.signal = signum
        else:
            self._stop_now()

    def _watch(self, read_fd: int) -> None:
        """Counts signals as they arrive; says so at the first (from this thread, so the line
        comes at once even while the main thread is inside a step) and stops at the second.
        Ends at end-of-file (`__exit__` closes the write end) and only then closes the read
        end: this thread owns it, so the fd number is never reused by another file (a tfrecord,
        a library's wake-up pipe) while this thread may still read from it."""
        try:
            self._count_signals(read_fd)
        finally:
            os.close(read_fd)

    def _count_signals(self, read_fd: int) -> None:
        seen = 0
        while True:
            try:
                data = os.read(read_fd, 64)
            except OSError:
                return
            if not data:
                return
            signals = [b for b in data if b in (signal.SIGINT, signal.SIGTERM)]
            if signals and seen == 0:
                logging.warning(
                    "Received %s: saving a checkpoint and stopping (a second one stops at once).",
                    signal.Signals(signals[0]).name,
                )
            seen += len(signals)
            if seen >= 2:
                self._stop_now()

    def _stop_now(self) -> None:
        if not self._exiting.acquire(blocking=False):
            return  # the other thread is already ending the process
        if self.checkpoint_dir and os.path.isdir(self.checkpoint_dir):
            for name in os.listdir(self.checkpoint_dir):
                if name.endswith(".orbax-checkpoint-tmp"):
                    shutil.rmtree(os.path.join(self.checkpoint_dir, name), ignore_errors=True)
        os.write(2, b"ganjax: stopped at once by a second signal; the complete checkpoints are "
                    b"kept (re-run the same command to resume).\n")
        os._exit(128 + signal.SIGINT)

    def __exit__(self, *exc):
        # Handlers first, then the watcher: a signal at any moment of the exit is still seen by
        # one of them. After a stop by signal, a further one during shutdown ends the process
        # quietly (SIG_DFL).
        for sig, handler in self._previous.items():
            signal.signal(sig, signal.SIG_DFL if self.signal is not None else handler)
        if self._wakeup is not None:
            write, previous_fd = self._wakeup
            signal.set_wakeup_fd(previous_fd)
            os.close(write)  # the watcher reads end-of-file, closes the read end and ends
            self._watcher.join(timeout=10)
        return False


# --------------------------------------------------------------------------------------------
# The loop.
# --------------------------------------------------------------------------------------------


def _check_finite(step: int, scalars: dict[str, float], checkpointer: Checkpointer) -> None:
    """A NaN or inf metric stops the run, naming the newest complete checkpoint (every saved
    state is finite: `Checkpointer.save` refuses others)."""
    bad = sorted(k for k, v in scalars.items() if not np.isfinite(v))
    if bad:
        raise checkpointer.non_finite_error(", ".join(bad), step)


def write_image(writer, directory: str, name: str, step: int, image: np.ndarray) -> str:
    """`image` (uint8 [H, W, C]) as `directory/<name>_<step>.png` and a TensorBoard image."""
    path = os.path.join(directory, f"{name}_{step:07d}.png")
    if jax.process_index() == 0:
        os.makedirs(directory, exist_ok=True)
        images.save_png(image, path)
        writer.write_images(step, {name: image[None]})
    return path


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> RunState:
    """Trains `config.gan.name` on its data in `workdir`, resuming if it holds a checkpoint."""
    workdir = os.path.abspath(workdir)
    mesh = sharding.make_mesh(config.mesh.num_devices)
    sharding.check_batch_size(config.data.batch_size, mesh)
    # The dataset's shape and classes decide the model, so the data comes first; the data, the
    # algorithm, its initial state and the evaluators are all checked before anything is
    # written to the workdir.
    info = gans.get(config.gan.name).data_info(config)
    gan = gans.create(config, info)
    scheduled = evaluators.from_config(config, gan, workdir)
    state = gan.init_state(jax.random.PRNGKey(config.seed))
    runs.make_workdir(workdir)
    with runs.WorkdirLock(workdir), Checkpointer(
        os.path.join(workdir, "checkpoints"), config.train.keep_checkpoints,
        best_metric=config.train.best_metric, best_mode=config.train.best_mode,
    ) as checkpointer:
        try:
            return _train(config, workdir, mesh, gan, info, state, scheduled, checkpointer)
        except OSError as e:  # e.g. metrics or a sample grid on a full disk
            checkpointer.raise_if_disk_full(e)
            raise


def _train(config, workdir, mesh, gan, info, state, scheduled, checkpointer) -> RunState:
    """The loop of `train_and_evaluate` on a locked workdir."""
    num_steps = config.train.num_steps
    start_checkpoint = checkpointer.latest_step()
    if start_checkpoint is not None and start_checkpoint > num_steps:
        raise TrainingError(
            f"{workdir} holds a checkpoint of step {start_checkpoint}, past "
            f"train.num_steps={num_steps}: raise --config.train.num_steps to train on, or "
            "choose a new --workdir."
        )
    record_config(config, workdir, has_checkpoint=start_checkpoint is not None)
    runs.write_data_info(workdir, info)
    state = checkpointer.restore(sharding.replicate(state, mesh))
    start_step = int(state.step)
    if start_step == num_steps:
        logging.info("%s is already trained to train.num_steps=%d: nothing to do.", workdir, num_steps)
    logging.info(
        "%s on %s %s (%d classes), %d devices; parameters: %s; %s at step %d.",
        config.gan.name, info.name, info.image_shape, info.num_classes, mesh.devices.size,
        {k: v.num_params for k, v in state.networks().items()},
        "resuming" if start_checkpoint is not None else "starting", start_step,
    )
    batches = gan.train_batches(mesh, start_step)

    repl, batch_sh = sharding.replicated(mesh), sharding.batch_sharding(mesh, batch_axis=1)
    train_step = jax.jit(
        gan.train_step, in_shardings=(repl, batch_sh), out_shardings=(repl, repl), donate_argnums=0
    )
    grid = gan.grid_inputs(jax.random.PRNGKey(config.seed + 1), config.train.sample_cols)
    render_grid = jax.jit(gan.grid, out_shardings=repl)

    writer = create_writer(workdir, start_step)
    if start_step == 0:
        writer.write_hparams(flatten(json.loads(config.to_json_best_effort())))
    progress = periodic_actions.ReportProgress(num_train_steps=num_steps, writer=writer)
    pending: list[dict[str, jax.Array]] = []
    t_start, steps_done = time.time(), 0

    def sample_grid(step: int) -> None:
        grid_inputs, rows = grid
        picture = images.make_grid(jax.device_get(render_grid(state, grid_inputs)), rows)
        write_image(writer, os.path.join(workdir, "samples"), "samples", step, picture)

    def evaluate(step: int, last: bool) -> dict[str, float]:
        """Runs the evaluators due at `step`; returns their scalars (keys without `eval/`)."""
        scalars = {}
        for s in scheduled:
            if not s.due(step, last):
                continue
            for key, value in s.evaluator.run(state, step):
                if np.ndim(value) == 3:  # an image
                    write_image(writer, os.path.join(workdir, "evals"), key, step, np.asarray(value))
                else:
                    scalars[key] = float(value)
                    writer.write_scalars(step, {f"eval/{key}": float(value)})
        return scalars

    with StopRequest(checkpointer.directory) as stop, metric_writers.ensure_flushes(writer):
        step = start_step
        in_flight = None  # the previous step's metrics: at most one step runs ahead
        stopping = stop.signal is not None  # read once per step: a stop saves the step it ends on
        while step < num_steps and not stopping:
            with jax.profiler.StepTraceAnnotation("train", step_num=step):
                batch = next(batches)
                state, metrics = train_step(state, batch)
                # Wait for step k-1 once step k is queued. The host still prepares the next
                # batch while the devices compute, and the queue stays one step deep: XLA's
                # CPU runtime (jaxlib 0.10) can deadlock when a program with collectives over
                # several devices is dispatched tens of steps ahead (one device never reaches
                # the all-reduce; the process aborts after 40 s).
                if in_flight is not None:
                    jax.block_until_ready(in_flight)
                in_flight = metrics
            step += 1
            steps_done += 1
            pending.append(metrics)
            progress(step)
            last = step == num_steps
            if step % config.train.log_every == 0 or last:
                scalars = {
                    k: float(v) for k, v in jax.device_get(jax.tree.map(
                        lambda *xs: jnp.mean(jnp.stack(xs)), *pending)).items()
                }
                pending.clear()
                _check_finite(step, scalars, checkpointer)
                writer.write_scalars(step, {f"train/{k}": v for k, v in scalars.items()})
            if grid is not None and (step % config.train.sample_every == 0 or last):
                sample_grid(step)
            evaluated = evaluate(step, last)
            # A state scored by the best-checkpoint metric is saved with its score, so that
            # orbax can keep the best one beside the latest.
            best = config.train.best_metric
            scored = {best: evaluated[best]} if best in evaluated else None
            stopping = stop.signal is not None
            if (
                step % config.train.checkpoint_every == 0
                or last
                or scored
                or stopping
                or checkpointer.reached_preemption(step)
            ):
                checkpointer.save(step, state, metrics=scored)
            if checkpointer.reached_preemption(step):
                logging.warning("Preemption at step %d: checkpoint saved, stopping.", step)
                break
    checkpointer.wait_until_finished()
    if steps_done:
        logging.info(
            "Trained steps %d..%d in %.1fs; workdir %s", start_step + 1, step,
            time.time() - t_start, workdir,
        )
    return state
