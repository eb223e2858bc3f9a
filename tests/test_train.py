"""The training backbone end to end: launch.py, the loop, checkpoints, resume, the mesh."""

import json
import os

import jax
import numpy as np
import pytest
from ml_collections import config_flags  # noqa: F401  (config files import ganjax.config)

from ganjax import train
from ganjax.config import ConfigError, apply_variant, base_config
from tests.helpers import assert_trees_equal, launch, load_config, start_launch, wait_for_rows


def params_of(state):
    return jax.device_get({"g": state.generator.params, "d": state.discriminator.params,
                           "gs": state.generator.batch_stats, "go": state.generator.opt_state,
                           "do": state.discriminator.opt_state})


def test_launch_tiny_config_end_to_end(repo_root, tmp_path):
    workdir = tmp_path / "run"
    result = launch(repo_root, "--config=configs/cgan_mnist.py:tiny", f"--workdir={workdir}",
                    "--config.train.num_steps=4", "--config.train.sample_every=2")
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["train"]["num_steps"] == 4 and saved["gan"]["conditional"] is True
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    steps = sorted({r["step"] for r in rows if "train/g_loss" in r})
    assert steps == [2, 4]
    assert all(np.isfinite(r["train/d_loss"]) for r in rows if "train/d_loss" in r)
    assert any("eval/label_accuracy" in r for r in rows)
    assert sorted(os.listdir(workdir / "checkpoints")) == ["3", "4"]
    assert sorted(os.listdir(workdir / "samples")) == ["samples_0000002.png", "samples_0000004.png"]
    from PIL import Image

    grid = np.asarray(Image.open(workdir / "samples" / "samples_0000004.png"))
    # One row per class (10) of sample_cols (4) 28x28 digits with 2 px gaps.
    assert grid.shape == (10 * 30 + 2, 4 * 30 + 2)
    assert os.listdir(workdir / "tensorboard")


@pytest.mark.parametrize(
    "override,needle",
    [
        ("--config.optim.no_such_key=1", "no_such_key"),
        ("--config.train.num_steps=abc", "num_steps"),
        ("--config.train.num_steps=-3", "config.train.num_steps must be > 0"),
        ("--config.gan.loss=bogus", "Unknown adversarial loss 'bogus'"),
    ],
)
def test_bad_overrides_are_one_line_errors(repo_root, tmp_path, override, needle):
    result = launch(repo_root, "--config=configs/cgan_mnist.py:tiny", f"--workdir={tmp_path}", override)
    assert result.returncode != 0
    errors = [l for l in result.stderr.splitlines() if l.startswith("ganjax: error:")]
    assert len(errors) == 1 and needle in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "checkpoints").exists()


def test_missing_config_file_and_missing_dataset(repo_root, tmp_path):
    result = launch(repo_root, "--config=configs/nope.py")
    assert result.returncode != 0 and "nope.py" in result.stderr and "Traceback" not in result.stderr
    empty = tmp_path / "empty_tfds"
    empty.mkdir()
    result = launch(repo_root, "--config=configs/cgan_mnist.py:tiny", f"--workdir={tmp_path / 'w'}",
                    "--config.data.name=mnist", f"--config.data.data_dir={empty}")
    assert result.returncode == 2
    line = [l for l in result.stderr.splitlines() if l.startswith("ganjax: error:")][0]
    assert "'mnist' is not prepared in" in line and "mnist_offline" in line and "download" in line


def test_resume_gives_the_same_parameters(repo_root, tmp_path):
    """6 steps in one go == 3 steps, stop, re-run to 6 (bit for bit).

    The interruption is simulated by a first run with num_steps=3; a decaying learning-rate
    schedule depends on num_steps, so this shortcut needs the constant one (a real preemption
    re-runs the same config, where any schedule resumes exactly).
    """
    config = load_config(repo_root, "cgan_mnist")
    config.optim.schedule = "constant"
    del config.evals["label_accuracy"]
    config.train.checkpoint_every = 100
    straight = train.train_and_evaluate(config, str(tmp_path / "straight"))

    config.train.num_steps = 3
    first = train.train_and_evaluate(config, str(tmp_path / "resumed"))
    assert int(first.step) == 3
    config.train.num_steps = 6
    resumed = train.train_and_evaluate(config, str(tmp_path / "resumed"))
    assert int(resumed.step) == 6
    assert_trees_equal(params_of(straight), params_of(resumed))
    assert sorted(os.listdir(tmp_path / "resumed" / "checkpoints")) == ["3", "6"]


def test_resume_refuses_a_different_model(repo_root, tmp_path):
    config = load_config(repo_root, "dcgan_mnist")
    config.train.num_steps = 2
    train.train_and_evaluate(config, str(tmp_path))
    config.model.g_width = 16
    with pytest.raises(train.TrainingError, match="model.g_width"):
        train.train_and_evaluate(config, str(tmp_path))
    assert os.listdir(tmp_path / "checkpoints") == ["2"]
    # A key the recorded config lacks (a run written before ganjax had it) resumes only at its
    # default: the value that run had.
    recorded = json.loads((tmp_path / "config.json").read_text())
    default_b1 = recorded["optim"].pop("b1")
    (tmp_path / "config.json").write_text(json.dumps(recorded))
    config = load_config(repo_root, "dcgan_mnist")
    config.train.num_steps = 2
    config.optim.b1 = 0.9
    with pytest.raises(train.TrainingError, match=rf"optim.b1: absent \(.*its default {default_b1}\) -> 0.9"):
        train.train_and_evaluate(config, str(tmp_path))
    assert os.listdir(tmp_path / "checkpoints") == ["2"]
    assert "b1" not in json.loads((tmp_path / "config.json").read_text())["optim"]  # not rewritten
    config.optim.b1 = default_b1
    config.train.num_steps = 3
    assert int(train.train_and_evaluate(config, str(tmp_path)).step) == 3


def test_four_devices_match_one_device(repo_root, tmp_path):
    """The batch sharded over 4 devices gives the 1-device result; differences come only from
    the order of float32 reductions (tolerance 1e-4 after 3 steps of Adam)."""
    assert jax.device_count() == 4
    config = load_config(repo_root, "dcgan_mnist")
    config.train.num_steps = 3
    config.model.d_batch_norm = True  # batch statistics must cover the global batch
    config.mesh.num_devices = 1
    one = train.train_and_evaluate(config, str(tmp_path / "one"))
    config.mesh.num_devices = 4
    four = train.train_and_evaluate(config, str(tmp_path / "four"))
    assert len(jax.tree.leaves(four.generator.params)[0].sharding.device_set) == 4
    assert_trees_equal(params_of(one), params_of(four), atol=1e-4)


def test_a_long_run_over_four_devices_does_not_deadlock(repo_root, tmp_path):
    """The loop keeps at most one step in flight. Queued further ahead, XLA's CPU runtime
    (jaxlib 0.10) deadlocked in the all-reduce of the 4-device step: one device never arrived
    and the process aborted (before this fix, 2 runs of 400 steps out of 2 did, in the first
    ~100 steps). The collective timeout is cut from 40 s to 10 s so a regression fails fast."""
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_cpu_collective_call_terminate_timeout_seconds=10"
    steps = 300
    result = launch(
        repo_root, "--config=configs/dcgan_mnist.py:tiny", f"--workdir={tmp_path}",
        f"--config.train.num_steps={steps}",
        *(f"--config.train.{k}={steps}" for k in ("log_every", "sample_every", "checkpoint_every")),
        env={"XLA_FLAGS": flags},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in rows) == steps


def test_nan_loss_stops_with_a_clear_error(repo_root, tmp_path):
    config = load_config(repo_root, "dcgan_mnist")
    config.optim.d_lr = 1e30  # diverges at once
    config.optim.g_lr = 1e30
    config.train.checkpoint_every = 2
    with pytest.raises(train.TrainingError, match="Non-finite .* at step 2.*last good checkpoint is none"):
        train.train_and_evaluate(config, str(tmp_path))


def test_sigterm_saves_and_exits_cleanly(repo_root, tmp_path):
    workdir = tmp_path / "run"
    proc = start_launch(
        repo_root, "--config=configs/dcgan_mnist.py:tiny", f"--workdir={workdir}",
        "--config.train.num_steps=100000", "--config.train.log_every=1",
        "--config.train.checkpoint_every=100000", "--config.train.sample_every=100000",
    )
    wait_for_rows(workdir / "metrics.jsonl", 3)
    proc.send_signal(__import__("signal").SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-3000:]
    assert "Received SIGTERM" in out
    saved = [int(s) for s in os.listdir(workdir / "checkpoints")]
    assert len(saved) == 1 and 3 <= saved[0] < 100000


def test_config_validation_and_variants():
    c = base_config()
    with pytest.raises(ConfigError, match="unknown config variant"):
        apply_variant(c, "huge")
    from ganjax.config import validate

    c.data.channels = 2
    with pytest.raises(ConfigError, match="channels"):
        validate(c)
