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


class JsonlWriter(metric_writers.MetricWriter):
    """Appends one JSON object per step, {"step": s, name: value, ...}, to a file."""

    def __init__(self, path: str):
        self._file = open(path, "a")

    def write_scalars(self, step, scalars):
        row = {"step": int(step), **{k: float(v) for k, v in scalars.items()}}
        self._file.write(json.dumps(row) + "\n")

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


def create_writer(workdir: str) -> metric_writers.MetricWriter:
    """Console + TensorBoard + metrics.jsonl on process 0; nothing on the others."""
    if jax.process_index() > 0:
        return metric_writers.MultiWriter([])
    return metric_writers.AsyncMultiWriter(
        [
            metric_writers.LoggingWriter(),
            metric_writers.SummaryWriter(os.path.join(workdir, "tensorboard")),
            JsonlWriter(os.path.join(workdir, "metrics.jsonl")),
        ]
    )


# --------------------------------------------------------------------------------------------
# Stop requests (SIGTERM / SIGINT).
# --------------------------------------------------------------------------------------------


class StopRequest:
    """Turns SIGTERM and SIGINT into a flag the loop checks after each step."""

    def __init__(self):
        self.signal: int | None = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        del frame
        if self.signal is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self.signal = signum
        logging.warning("Received %s: saving a checkpoint and stopping.", signal.Signals(signum).name)

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


# --------------------------------------------------------------------------------------------
# The loop.
# --------------------------------------------------------------------------------------------


def _check_finite(step: int, scalars: dict[str, float], last_checkpoint: int | None) -> None:
    bad = sorted(k for k, v in scalars.items() if not np.isfinite(v))
    if bad:
        raise TrainingError(
            f"Non-finite {', '.join(bad)} at step {step}. The run stopped without saving this "
            f"state; the last good checkpoint is step {last_checkpoint}. Lower the learning "
            "rates (config.optim.g_lr / d_lr), add a gradient penalty or spectral norm, and "
            "re-run the same command to resume from that checkpoint."
        )


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
    # The dataset's shape and classes decide the model, so the data comes first; the data, the
    # algorithm and the evaluators are all checked before anything is written to the workdir.
    info = gans.get(config.gan.name).data_info(config)
    gan = gans.create(config, info)
    scheduled = evaluators.from_config(config, gan)
    os.makedirs(workdir, exist_ok=True)
    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), config.train.keep_checkpoints)
    start_checkpoint = checkpointer.latest_step()
    record_config(config, workdir, has_checkpoint=start_checkpoint is not None)
    runs.write_data_info(workdir, info)
    state = sharding.replicate(gan.init_state(jax.random.PRNGKey(config.seed)), mesh)
    state = checkpointer.restore(state)
    start_step = int(state.step)
    num_steps = config.train.num_steps
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

    writer = create_writer(workdir)
    if start_step == 0:
        writer.write_hparams(flatten(json.loads(config.to_json_best_effort())))
    progress = periodic_actions.ReportProgress(num_train_steps=num_steps, writer=writer)
    pending: list[dict[str, jax.Array]] = []
    last_checkpoint = start_checkpoint
    t_start, steps_done = time.time(), 0

    def sample_grid(step: int) -> None:
        grid_inputs, rows = grid
        picture = images.make_grid(jax.device_get(render_grid(state, grid_inputs)), rows)
        write_image(writer, os.path.join(workdir, "samples"), "samples", step, picture)

    def evaluate(step: int, last: bool) -> None:
        for s in scheduled:
            if not s.due(step, last):
                continue
            for key, value in s.evaluator.run(state, step):
                if np.ndim(value) == 3:  # an image
                    write_image(writer, os.path.join(workdir, "evals"), key, step, np.asarray(value))
                else:
                    writer.write_scalars(step, {f"eval/{key}": float(value)})

    with StopRequest() as stop, metric_writers.ensure_flushes(writer):
        step = start_step
        while step < num_steps and stop.signal is None:
            with jax.profiler.StepTraceAnnotation("train", step_num=step):
                batch = next(batches)
                state, metrics = train_step(state, batch)
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
                _check_finite(step, scalars, last_checkpoint)
                writer.write_scalars(step, {f"train/{k}": v for k, v in scalars.items()})
            if grid is not None and (step % config.train.sample_every == 0 or last):
                sample_grid(step)
            evaluate(step, last)
            if (
                step % config.train.checkpoint_every == 0
                or last
                or stop.signal is not None
                or checkpointer.reached_preemption(step)
            ):
                checkpointer.save(step, state, force=True)
                last_checkpoint = step
            if checkpointer.reached_preemption(step):
                logging.warning("Preemption at step %d: checkpoint saved, stopping.", step)
                break
    checkpointer.close()
    if steps_done:
        logging.info(
            "Trained steps %d..%d in %.1fs; workdir %s", start_step + 1, step,
            time.time() - t_start, workdir,
        )
    return state
