"""A run's workdir as jobs read it: its recorded config and data, its checkpoints, its networks.

A training run leaves in its workdir `config.json` (the resolved config), `data_info.json`
(the shape, classes and attributes the networks were built for) and `checkpoints/<step>/`. From
those alone a job rebuilds the trained algorithm, without the dataset and without the config
file that started the run:

    trained = runs.load_trained("workdirs/cgan_mnist")            # latest checkpoint
    images = trained.algorithm.generate(trained.state, trained.algorithm.latent.sample(key, 16))

and a new run starts some of its networks from another run's (`init_from`), e.g. a predictor
trained against a frozen generator.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import socket
from typing import Any

import jax
import ml_collections

from ganjax.errors import CheckpointError, ConfigError, TrainingError

# Keys that may change between a run and its resumption without invalidating checkpoints:
# cadences and lengths, evaluators and their settings, the jobs' own settings and the checkpoint
# they restore, devices, where the data lives, and the learning rates (lowered, e.g., to resume
# after a NaN stop).
RESUMABLE_KEYS = (
    "train.", "evals.", "eval.", "jobs.", "job", "restore", "mesh.", "distributed", "optim.g_lr", "optim.d_lr",
    "optim.grad_clip_norm",
    "data.data_dir", "data.download", "data.manual_dir", "data.preview", "data.folder",
)

CONFIG_FILE = "config.json"
DATA_INFO_FILE = "data_info.json"


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


# --------------------------------------------------------------------------------------------
# The workdir itself.
# --------------------------------------------------------------------------------------------


def check_workdir(workdir: str) -> None:
    """ConfigError, before anything is created, if `workdir` is a file, lies under a file, or
    its nearest existing directory cannot be written."""
    workdir = os.path.abspath(workdir)
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ConfigError(f"--workdir {workdir} is a file, not a directory: choose another --workdir.")
    existing = workdir
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ConfigError(f"--workdir {workdir} lies under {existing}, which is a file: choose another --workdir.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"--workdir {workdir}: {existing} is not writable: choose a writable --workdir.")


def make_workdir(workdir: str) -> None:
    """Creates `workdir` and checks that files can be written in it (ConfigError if not)."""
    check_workdir(workdir)
    try:
        os.makedirs(workdir, exist_ok=True)
        probe = os.path.join(workdir, f".write_test.{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise ConfigError(
            f"cannot write in --workdir {workdir} ({e.strerror or e}): choose a writable --workdir."
        ) from None


class WorkdirLock:
    """Holds an exclusive lock on `workdir/.lock` while a run uses the workdir.

    A second run on the same workdir is refused with a TrainingError naming the process that
    holds it. The lock is the kernel's (`flock`): it goes away with its process, however that
    process ends (kill -9 included), so it is never left stuck.
    """

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, ".lock")
        self._file = None

    def __enter__(self) -> "WorkdirLock":
        f = open(self.path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise TrainingError(
                f"{os.path.dirname(self.path)} is in use by {holder}: wait for that run to end "
                "(or stop it), or choose another --workdir."
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"process {os.getpid()} on {socket.gethostname()}")
        f.flush()
        self._file = f
        return self

    def __exit__(self, *exc) -> bool:
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
        return False


# --------------------------------------------------------------------------------------------
# Config and data records.
# --------------------------------------------------------------------------------------------


def record_config(config: ml_collections.ConfigDict, workdir: str, has_checkpoint: bool) -> None:
    """Writes workdir/config.json; refuses to resume a checkpoint under a different model.

    Only `RESUMABLE_KEYS` may differ from the config that wrote the checkpoints; anything else
    would silently mix two experiments.
    """
    path = os.path.join(workdir, CONFIG_FILE)
    new = json.loads(config.to_json_best_effort())
    if has_checkpoint and os.path.exists(path):
        with open(path) as f:
            old = flatten(json.load(f))
        flat = flatten(new)
        # A key the recorded config lacks was added to ganjax after the run was written, with a
        # default that keeps the old behaviour: the run had that default, and only it resumes.
        defaults = flatten(json.loads(_base_config_of(old).to_json_best_effort()))
        recorded = {**{k: defaults[k] for k in set(flat) - set(old) if k in defaults}, **old}
        changed = sorted(
            k
            for k in set(recorded) & set(flat)
            if recorded[k] != flat[k] and not k.startswith(RESUMABLE_KEYS)
        )
        if changed:
            def was(k):
                return repr(old[k]) if k in old else f"absent (before the key existed: its default {recorded[k]!r})"

            details = ", ".join(f"{k}: {was(k)} -> {flat[k]!r}" for k in changed[:8])
            raise TrainingError(
                f"{workdir} holds checkpoints of a run with another config ({details}). "
                "Resume with the same config, or choose a new --workdir."
            )
    _write_json(path, new)


def _base_config_of(recorded: dict[str, Any]) -> ml_collections.ConfigDict:
    """Today's `base_config` of a flattened recorded config's algorithm and architecture: the
    schema it is read into, and the defaults of keys added to ganjax after it was written."""
    from ganjax.config import base_config

    return base_config(recorded.get("gan.name", "dcgan"), recorded.get("model.arch"))


def read_config(workdir: str) -> ml_collections.ConfigDict:
    """The config a run recorded, on today's schema: `base_config` of its algorithm and
    architecture with the recorded values of every key that still exists."""
    from ganjax.config import update_flattened

    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise ConfigError(f"{workdir} holds no {CONFIG_FILE}: it is not the workdir of a ganjax run.")
    with open(path) as f:
        recorded = flatten(json.load(f))
    config = _base_config_of(recorded)
    update_flattened(config, {k: v for k, v in recorded.items() if not k.startswith("evals.")})
    return config


def write_data_info(workdir: str, info) -> None:
    """Records the `DataInfo` the networks were built for (workdir/data_info.json)."""
    _write_json(os.path.join(workdir, DATA_INFO_FILE), dataclasses.asdict(info))


def read_data_info(workdir: str):
    """The recorded `DataInfo`, or None for a run that did not record it."""
    from ganjax.data.core import DataInfo

    path = os.path.join(workdir, DATA_INFO_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        fields = json.load(f)
    return DataInfo(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


def _write_json(path: str, value) -> None:
    with open(path + ".tmp", "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)


# --------------------------------------------------------------------------------------------
# Trained runs.
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Trained:
    """A trained run rebuilt from its workdir."""

    workdir: str
    config: ml_collections.ConfigDict
    algorithm: Any  # a `gans.base.Algorithm`
    state: Any  # its `RunState`
    step: int


def parse_restore(restore: str | int) -> int | str | None:
    """"latest" -> None, "best" -> "best", "1200" or 1200 -> 1200; a ConfigError otherwise."""
    if restore in ("latest", "", None):
        return None
    if restore == "best":
        return "best"
    try:
        return int(restore)
    except (TypeError, ValueError):
        raise ConfigError(
            f"config.restore must be 'latest', 'best' or a step number, got {restore!r}."
        ) from None


def load_trained(
    workdir: str, restore: str | int = "latest", config: ml_collections.ConfigDict | None = None
) -> Trained:
    """Rebuilds the algorithm of the run in `workdir` and restores one of its checkpoints.

    Args:
      workdir: the training run's workdir.
      restore: "latest", "best" (the checkpoint kept for the run's `train.best_metric`) or a
        step number.
      config: the config to build the algorithm from (default: the run's recorded one); a job
        started with the training config passes it so that its overrides apply.

    Returns:
      `Trained(workdir, config, algorithm, state, step)`.
    """
    from ganjax import gans
    from ganjax.checkpoint import Checkpointer

    workdir = os.path.abspath(workdir)
    config = config if config is not None else read_config(workdir)
    directory = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(directory):
        raise CheckpointError(
            f"No checkpoints in {directory}: train first (config.job=train with that --workdir), "
            "or name the workdir of a trained run."
        )
    info = read_data_info(workdir) or gans.get(config.gan.name).data_info(config)
    algorithm = gans.create(config, info)
    # "best" is by the metric of the run that wrote the checkpoints (its recorded config).
    recorded = read_config(workdir) if os.path.exists(os.path.join(workdir, CONFIG_FILE)) else config
    best_metric = recorded.train.get("best_metric", "")
    checkpointer = Checkpointer(directory, config.train.keep_checkpoints, read_only=True,
                                best_metric=best_metric, best_mode=recorded.train.get("best_mode", "min"))
    try:
        step = parse_restore(restore)
        if step == "best":
            step = checkpointer.best_step()
            if step is None:
                raise CheckpointError(
                    f"No checkpoint in {directory} carries a best metric "
                    f"(train.best_metric={best_metric!r}): train with --config.train.best_metric=fid "
                    "and an fid evaluator, or use --config.restore=latest."
                )
        step = checkpointer.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(
                f"No checkpoint in {directory}: train first (config.job=train with that "
                "--workdir), or name the workdir of a trained run."
            )
        state = checkpointer.restore(algorithm.init_state(jax.random.PRNGKey(config.seed)), step)
    finally:
        checkpointer.close()
    return Trained(workdir, config, algorithm, state, int(step))


def init_from(state, workdir: str, networks: tuple[str, ...], restore: str | int = "latest"):
    """`state` with the parameters and batch statistics of `networks` (field names, e.g.
    `("generator",)`) taken from the run in `workdir`; optimizer states stay this run's."""
    source = load_trained(workdir, restore).state
    updates = {}
    for name in networks:
        mine, theirs = getattr(state, name, None), getattr(source, name, None)
        if mine is None or theirs is None:
            raise ConfigError(f"network {name!r} is not in both this run's state and {workdir}'s.")
        shapes = lambda net: jax.tree.map(lambda x: (x.shape, x.dtype), (net.params, net.batch_stats))
        if shapes(mine) != shapes(theirs):
            raise CheckpointError(
                f"network {name!r} of {workdir} (step {int(source.step)}) has other shapes than "
                "this run's: build this run with the architecture keys of that run's config.json."
            )
        updates[name] = mine.replace(params=theirs.params, batch_stats=theirs.batch_stats)
    return state.replace(**updates)


def match_codes(trained: Trained, split: str = "test"):
    """InfoGAN (any algorithm with a Q head, `recover_codes`): which of the run's classes each
    value of the first categorical code draws, by Hungarian matching of the codes Q reads from
    the real images of `split` to their labels (`metrics.codes.categorical_code_accuracy`).
    Q reads them with the batch-norm statistics the run's `code_accuracy` evaluator uses
    (`evals.<name>.batch_stats`: `real` re-estimates D's on the training images; `running`,
    also without such an evaluator, keeps D's own), so the names agree with the reported accuracy.

    Returns the `CodeMatch`: `mapping` {code value: run class} (values left unmatched are
    absent) and the matched `accuracy`. Used by job=synthesize (labels of the export) and
    job=edit (the class an edited code draws).
    """
    from ganjax.data import pipeline
    from ganjax.evaluators import code_accuracy

    algorithm, state, data = trained.algorithm, trained.state, trained.config.data
    if not algorithm.info.num_classes:
        raise ConfigError("Naming InfoGAN's codes by class needs a dataset with class labels.")
    images, labels = pipeline.load_arrays(data, split)[:2]
    if code_accuracy.configured_batch_stats(trained.config) == "real" and state.discriminator.batch_stats:
        state = code_accuracy.with_real_batch_stats(state, pipeline.load_arrays(data, data.split)[0])
    return code_accuracy.match_codes(algorithm, state, images, labels)
