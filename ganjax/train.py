"""The one training loop: restore -> step -> report / sample / evaluate / checkpoint -> done.

Every algorithm in `ganjax/gans/` runs through `train_and_evaluate(config, workdir)`:

* the state is initialised, replicated on the mesh, and replaced by the latest checkpoint in
  `workdir/checkpoints` if there is one (re-running the same command resumes);
* `train_step` is jit-compiled once with the batch sharded on the data axis, the state
  replicated and donated;
* scalars go to the console, TensorBoard and `workdir/metrics.jsonl` every `log_every` steps,
  with steps/s and ETA from clu's `ReportProgress`;
* a fixed-noise sample grid (one row per class for conditional models) is written as PNG to
  `workdir/samples/` and to TensorBoard every `sample_every` steps and at the end;
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
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from clu import metric_writers, periodic_actions

from ganjax import gans, images, sharding
from ganjax.checkpoint import Checkpointer
from ganjax.data import pipeline
from ganjax.train_state import GANState

# Keys that may change between a run and its resumption without invalidating checkpoints.
RESUMABLE_KEYS = (
    "train.", "eval.", "mesh.", "distributed", "translate.",
    "data.data_dir", "data.download", "data.manual_dir", "data.preview", "data.folder",
)


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a NaN loss); the message says what to change."""


# --------------------------------------------------------------------------------------------
# Workdir: config record and compatibility.
# --------------------------------------------------------------------------------------------


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def record_config(config: ml_collections.ConfigDict, workdir: str, has_checkpoint: bool) -> None:
    """Writes workdir/config.json; refuses to resume a checkpoint under a different model.

    Only `RESUMABLE_KEYS` (steps, intervals, devices, data location) may differ from the config
    that wrote the checkpoints; anything else would silently mix two experiments.
    """
    path = os.path.join(workdir, "config.json")
    new = json.loads(config.to_json_best_effort())
    if has_checkpoint and os.path.exists(path):
        with open(path) as f:
            old = _flatten(json.load(f))
        flat = _flatten(new)
        # Keys the recorded config lacks were added to ganjax later, with defaults that keep
        # the old behaviour: only keys present in both are compared.
        changed = sorted(
            k
            for k in set(old) & set(flat)
            if old[k] != flat[k] and not k.startswith(RESUMABLE_KEYS)
        )
        if changed:
            details = ", ".join(f"{k}: {old.get(k)!r} -> {flat.get(k)!r}" for k in changed[:8])
            raise TrainingError(
                f"{workdir} holds checkpoints of a run with another config ({details}). "
                "Resume with the same config, or choose a new --workdir."
            )
    with open(path + ".tmp", "w") as f:
        json.dump(new, f, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)


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


def write_samples(writer, workdir: str, step: int, grid: np.ndarray) -> str:
    path = os.path.join(workdir, "samples", f"samples_{step:07d}.png")
    if jax.process_index() == 0:
        images.save_png(grid, path)
        writer.write_images(step, {"samples": grid[None]})
    return path


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> GANState:
    """Trains `config.gan.name` on `config.data` in `workdir`, resuming if it holds a checkpoint."""
    workdir = os.path.abspath(workdir)
    mesh = sharding.make_mesh(config.mesh.num_devices)
    # The dataset's shape and classes decide the model, so the data comes first; both are
    # checked before anything is written to the workdir.
    gan_class = gans.get(config.gan.name)
    if hasattr(gan_class, "data_info"):  # e.g. two-domain algorithms (CycleGAN)
        info = gan_class.data_info(config)
    else:
        info = pipeline.load_split(config.data)[1]
    gan = gans.create(config, info)
    os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), config.train.keep_checkpoints)
    start_checkpoint = checkpointer.latest_step()
    record_config(config, workdir, has_checkpoint=start_checkpoint is not None)
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
    if hasattr(gan, "train_batches"):  # an algorithm with its own input (e.g. two domains)
        batches = gan.train_batches(mesh, start_step)
    else:
        _, batches = pipeline.build_train_data(
            config, mesh, n_micro=gan.n_micro, start_step=start_step
        )

    repl, batch_sh = sharding.replicated(mesh), sharding.batch_sharding(mesh, batch_axis=1)
    train_step = jax.jit(
        gan.train_step, in_shardings=(repl, batch_sh), out_shardings=(repl, repl), donate_argnums=0
    )
    generate = jax.jit(gan.generate, out_shardings=repl)
    grid_inputs, grid_rows = gan.sample_inputs(
        jax.random.PRNGKey(config.seed + 1), config.train.sample_cols
    )
    label_accuracy = None
    if config.eval.label_accuracy:
        from ganjax.evaluation import LabelAccuracy

        label_accuracy = LabelAccuracy(config.data)

    writer = create_writer(workdir)
    if start_step == 0:
        writer.write_hparams(_flatten(json.loads(config.to_json_best_effort())))
    progress = periodic_actions.ReportProgress(num_train_steps=num_steps, writer=writer)
    pending: list[dict[str, jax.Array]] = []
    last_checkpoint = start_checkpoint
    t_start, steps_done = time.time(), 0

    def evaluate(step: int) -> None:
        grid = images.make_grid(jax.device_get(generate(state, grid_inputs)), grid_rows)
        write_samples(writer, workdir, step, grid)
        if label_accuracy is not None:
            writer.write_scalars(step, {"eval/label_accuracy": _score_labels(step)})

    def _score_labels(step: int) -> float:
        n = config.eval.num_samples
        labels = jnp.arange(n, dtype=jnp.int32) % label_accuracy.num_classes
        key = jax.random.fold_in(jax.random.PRNGKey(config.seed + 2), step)
        samples = jax.device_get(generate(state, gan.random_inputs(key, labels)))
        return label_accuracy.score(samples, np.asarray(labels))

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
            if step % config.train.sample_every == 0 or last:
                evaluate(step)
            elif config.eval.every and step % config.eval.every == 0 and label_accuracy:
                writer.write_scalars(step, {"eval/label_accuracy": _score_labels(step)})
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
