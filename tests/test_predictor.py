"""The predictor (image -> latent) against a frozen generator: job=train_predictor through
launch.py, the encoding contract (docs/encoding.md), exact resume, that it learns, conditional
generators, and the one-line errors."""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import gans, runs, train
from ganjax.errors import CheckpointError, ConfigError, TrainingError, UserError
from ganjax.gans import predictor
from tests.helpers import assert_trees_equal, launch, load_config, tiny_config


@pytest.fixture(scope="module")
def infogan_run(tmp_path_factory):
    """A tiny InfoGAN on the offline digits, trained once for the module. 120 steps: by then
    G's batch-norm running statistics (momentum 0.9) have left their initial values, so G's
    samples in inference mode depend on its input (after 6 steps they barely do). Without the
    config's DiffAugment: in 120 tiny steps it leaves G's samples depending on the code too
    little for the predictor's categorical test below."""
    config = tiny_config("infogan_mnist", 120)
    config.gan.diff_augment = ""
    workdir = str(tmp_path_factory.mktemp("infogan"))
    train.train_and_evaluate(config, workdir)
    return config, workdir


def _job_config(config, output, num_steps, **keys):
    """The GAN's config with job=train_predictor and small figures."""
    config = config.copy_and_resolve_references()
    config.job = "train_predictor"
    jc = config.jobs.train_predictor
    jc.output, jc.num_steps = str(output), num_steps
    jc.eval_count, jc.eval_samples, jc.grid_pairs = 16, 32, 8
    for k, v in keys.items():
        jc[k] = v
    return config


def test_job_through_launch_and_the_encoding_contract(repo_root, infogan_run):
    config, workdir = infogan_run
    result = launch(repo_root, "--config=configs/infogan_mnist.py:tiny", f"--workdir={workdir}",
                    "--config.job=train_predictor", "--config.model.conv_impl=native",
                    "--config.jobs.train_predictor.num_steps=4", "--config.jobs.train_predictor.eval_count=16",
                    "--config.jobs.train_predictor.eval_samples=32", "--config.jobs.train_predictor.grid_pairs=16")
    assert result.returncode == 0, result.stderr[-3000:]
    out = os.path.join(workdir, "predictor")
    summary = json.load(open(os.path.join(out, "predictor.json")))
    assert summary["predictor_step"] == 4 and summary["gan"] == "infogan" and summary["real_count"] == 16
    figures = summary["latent_on_samples"]
    for key in ("latent_loss", "z_mse", "z_relative_error", "cont_mse", "samples_mse"):
        assert np.isfinite(figures[key]), key
    assert set(summary["real"]) == set(summary["real_relaxed"]) == {"mse", "ssim", "ms_ssim"}
    assert os.path.exists(summary["grid"]) and os.path.exists(os.path.join(out, "checkpoints", "4"))
    rows = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl"))]
    assert any("train/latent_loss" in r and "train/real_mse" in r for r in rows)
    assert os.listdir(os.path.join(out, "samples"))

    # The contract: runs.load_trained(W + "/predictor").
    trained = runs.load_trained(out)
    algorithm, state = trained.algorithm, trained.state
    gan = runs.load_trained(workdir)
    assert algorithm.latent == gan.algorithm.latent and algorithm.gan.name == "infogan"
    assert state.predictor is not None
    assert_trees_equal(state.generator.params, gan.state.generator.params)  # frozen
    assert_trees_equal(state.generator.batch_stats, gan.state.generator.batch_stats)
    latent = algorithm.latent
    images = gan.algorithm.generate(gan.state, latent.sample(jax.random.PRNGKey(0), 5))
    parts = algorithm.encode(state, images)
    assert parts["z"].shape == (5, latent.noise) and parts["cont"].shape == (5, latent.continuous)
    assert parts["cat"].shape == (5, 1) and parts["cat"].dtype == jnp.int32
    assert parts["cat_logits"][0].shape == (5, latent.categorical[0])
    vector = algorithm.encode_vector(state, images)
    assert vector.shape == (5, latent.dim)
    np.testing.assert_allclose(latent.split(vector)["cat_logits"][0].sum(-1), 1.0, rtol=1e-5)  # softmax
    np.testing.assert_allclose(latent.split(vector)["z"], parts["z"])
    recon = algorithm.generate(state, parts)
    assert recon.shape == images.shape
    np.testing.assert_allclose(recon, gan.algorithm.generate(gan.state, parts), atol=1e-6)
    relaxed = algorithm.generate_vector(state, vector, latent.condition(parts))
    assert relaxed.shape == images.shape


def test_resume_is_bit_exact_and_the_loss_keys_are_fixed(infogan_run, tmp_path):
    config, workdir = infogan_run
    straight_config = _job_config(config, tmp_path / "straight", 4)
    straight = train.train_and_evaluate(predictor.predictor_config(straight_config, workdir),
                                        str(tmp_path / "straight"))
    train.train_and_evaluate(predictor.predictor_config(_job_config(config, tmp_path / "resumed", 2), workdir),
                             str(tmp_path / "resumed"))
    summary = predictor.run(_job_config(config, tmp_path / "resumed", 4), workdir)  # the job resumes
    assert summary["predictor_step"] == 4
    resumed = runs.load_trained(str(tmp_path / "resumed")).state
    assert_trees_equal(jax.device_get(straight.predictor.params), resumed.predictor.params)
    assert_trees_equal(jax.device_get(straight.predictor.batch_stats), resumed.predictor.batch_stats)
    # A resumed predictor keeps its losses: another weight is refused, naming the key.
    with pytest.raises(TrainingError, match="predictor.latent_weight"):
        predictor.run(_job_config(config, tmp_path / "resumed", 6, latent_weight=0.5), workdir)


def test_the_predictor_learns_the_latents_of_g_samples(infogan_run):
    """Latent loss only: on a fixed draw of G's samples the latent loss falls to well under its
    initial value (measured: 0.46 of it after 80 steps at lr 1e-2; the categorical code's CE
    2.30 -> 0.32, the continuous codes' 0.33 -> 0.12; z's stays at the prior's level: this
    tiny G hardly uses its noise)."""
    config, workdir = infogan_run
    job = _job_config(config, "unused", 80, real_weight=0.0, learning_rate=1e-2)
    pconfig = predictor.predictor_config(job, workdir)
    algorithm = gans.create(pconfig, runs.read_data_info(workdir))
    state = algorithm.init_state(jax.random.PRNGKey(0))
    parts = algorithm.latent.sample(jax.random.PRNGKey(7), 256)
    images = algorithm.generate(state, parts)
    assert float(images.std(0).mean()) > 0.05  # G's samples depend on their latents
    latent_loss = jax.jit(lambda s: algorithm.latent_terms(algorithm.predict(s, images), parts))
    step = jax.jit(algorithm.train_step)
    before = latent_loss(state)
    for i in range(80):
        state, metrics = step(state, algorithm.example_batch(jax.random.PRNGKey(100 + i), 16))
    after = latent_loss(state)
    ratio = float(sum(after.values()) / sum(before.values()))
    assert ratio < 0.7, (before, after)
    assert float(after["cat"]) < 0.5 * float(before["cat"]), (before, after)


def test_a_conditional_generator_is_told_the_images_labels(tmp_path):
    """cGAN: the predictor predicts z, the label comes from the data (training, the figures,
    `encode`)."""
    config = tiny_config("cgan_mnist", 6)
    workdir = str(tmp_path / "cgan")
    train.train_and_evaluate(config, workdir)
    summary = predictor.run(_job_config(config, tmp_path / "predictor", 2, distance="ssim"), workdir)
    assert all(np.isfinite(v) for v in summary["real"].values()) and "real_relaxed" not in summary
    trained = runs.load_trained(str(tmp_path / "predictor"))
    algorithm, state = trained.algorithm, trained.state
    assert algorithm.latent.num_classes == 10 and not algorithm.latent.categorical
    images = jnp.zeros((3, 28, 28, 1))
    with pytest.raises(ValueError, match="pass the images' own"):
        algorithm.encode(state, images)
    labels = jnp.array([1, 4, 7])
    parts = algorithm.encode(state, images, labels)
    assert parts["label"].tolist() == [1, 4, 7] and parts["z"].shape == (3, algorithm.latent.noise)
    assert algorithm.encode_vector(state, images).shape == (3, algorithm.latent.dim)
    assert algorithm.generate(state, parts).shape == (3, 28, 28, 1)
    rows = [json.loads(l) for l in open(tmp_path / "predictor" / "metrics.jsonl")]
    assert any("train/real_ssim" in r for r in rows)


def test_one_line_errors(infogan_run, tmp_path):
    config, workdir = infogan_run

    def error(kind, match, job_config, gan_dir):
        with pytest.raises(kind, match=match) as e:
            predictor.run(job_config, gan_dir)
        assert isinstance(e.value, UserError) and "\n" not in str(e.value)

    job = _job_config(config, tmp_path / "out", 2)
    empty = tmp_path / "empty"
    empty.mkdir()
    error(CheckpointError, "holds no trained GAN .*without --config.job=train_predictor", job, str(empty))
    untrained = tmp_path / "untrained"
    untrained.mkdir()
    for name in (runs.CONFIG_FILE, runs.DATA_INFO_FILE):
        shutil.copy(os.path.join(workdir, name), untrained / name)
    error(CheckpointError, "holds no checkpoint of the GAN", job, str(untrained))
    error(ConfigError, "unknown config.jobs.train_predictor.distance 'nope'",
          _job_config(config, tmp_path / "out", 2, distance="nope"), workdir)
    error(ConfigError, "unknown config.jobs.train_predictor.eval_distances",
          _job_config(config, tmp_path / "out", 2, eval_distances="mse,psnr"), workdir)
    error(ConfigError, "both 0", _job_config(config, tmp_path / "out", 2, latent_weight=0.0, real_weight=0.0),
          workdir)
    other = _job_config(load_config(None, "dcgan_mnist"), tmp_path / "out", 2)
    error(ConfigError, "holds a gan.name='infogan' run", other, workdir)
    assert not os.path.exists(tmp_path / "out")  # nothing was created
    # The algorithm itself, without the job.
    bare = predictor.predictor_config(job, workdir)
    bare.predictor.generator = ""
    with pytest.raises(ConfigError, match="config.predictor.generator is empty"):
        gans.create(bare, runs.read_data_info(workdir))


def test_info_began(tmp_path):
    """BEGAN's state (with k_t), its linear-output G (samples clipped to [-1, 1]) and Info-BEGAN's
    codes (plain BEGAN differs only by having none, as the cGAN above)."""
    from ganjax.config import apply_variant, base_config

    name = "infobegan"
    config = apply_variant(base_config(name), "tiny")
    config.model.conv_impl = "native"
    config.train.num_steps = config.train.checkpoint_every = 2
    workdir = str(tmp_path / name)
    gan_state = train.train_and_evaluate(config, workdir)
    summary = predictor.run(_job_config(config, tmp_path / "predictor", 2), workdir)
    assert summary["gan"] == name and all(np.isfinite(v) for v in summary["real"].values())
    trained = runs.load_trained(str(tmp_path / "predictor"))
    np.testing.assert_array_equal(trained.state.k_t, jax.device_get(gan_state.k_t))
    assert "real_relaxed" in summary and trained.algorithm.latent.categorical
    vector = trained.algorithm.encode_vector(trained.state, jnp.zeros((2, 28, 28, 1)))
    images = trained.algorithm.generate_vector(trained.state, 10.0 * vector)
    assert float(jnp.abs(images).max()) <= 1.0
