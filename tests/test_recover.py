"""Iterative latent recovery (ganjax/recover.py): it converges on G's own samples, the
optimisation of a batch is one compiled scan, restarts keep each image's best start, bounded
codes stay in their box, and job=recover runs end to end through launch.py (random starts, and
starts at the predictor of job=train_predictor) with its one-line errors."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import distances, recover, runs, train
from ganjax.errors import ConfigError, OutputExistsError
from ganjax.gans import predictor as predictor_lib
from tests.helpers import launch, tiny_config


@pytest.fixture(scope="module")
def dcgan(tmp_path_factory):
    """A tiny DCGAN (z of 8 dims, N(0, I)) trained 60 steps: by then G in inference mode draws
    images that depend on z (after 6 steps its batch-norm running statistics barely moved)."""
    workdir = str(tmp_path_factory.mktemp("dcgan"))
    train.train_and_evaluate(tiny_config("dcgan_mnist", 60), workdir)
    return runs.load_trained(workdir)


@pytest.fixture(scope="module")
def infogan(tmp_path_factory):
    """A tiny InfoGAN (uniform z, a 10-way code, 2 continuous codes) and its workdir, with a
    predictor in W/predictor trained by job=train_predictor (3 steps)."""
    config = tiny_config("infogan_mnist", 10)
    workdir = str(tmp_path_factory.mktemp("infogan"))
    train.train_and_evaluate(config, workdir)
    pconfig = config.copy_and_resolve_references()
    pconfig.job = "train_predictor"
    jc = pconfig.jobs.train_predictor
    jc.num_steps, jc.eval_count, jc.eval_samples, jc.grid_pairs = 3, 8, 16, 0
    predictor_lib.run(pconfig, workdir)
    return config, workdir


def _samples(trained, n, seed=5):
    parts = trained.algorithm.latent.sample(jax.random.PRNGKey(seed), n)
    return parts, trained.algorithm.generate(trained.state, parts)


def test_recovery_of_gs_own_samples_converges(dcgan):
    """8 samples of G, recovered from 2 random starts each in 150 Adam steps under MSE: the
    recovered images match G(z) to MSE < 1e-4 (from about 7e-3 at the start, 1% of it), and the
    latents are G's own (a generator need not be injective; this one nearly is)."""
    latent = dcgan.algorithm.latent
    parts, targets = _samples(dcgan, 8)
    settings = recover.Settings(steps=150, lr=0.1, restarts=2)
    recovery = recover.Recovery(latent, distances.get("mse", image_shape=targets.shape[1:]), settings)
    starts = recovery.random_starts(jax.random.PRNGKey(1), 8)
    result = jax.device_get(recovery(dcgan.state.generator, targets, None, starts, jax.random.PRNGKey(2)))
    initial = result["history"][0].mean()
    mse = np.mean((result["images"] - np.asarray(targets)) ** 2, axis=(1, 2, 3))
    assert initial > 1e-3, "G's samples must differ from each other for the test to mean anything"
    assert mse.max() < 1e-4 and mse.max() < 0.01 * initial, (mse, initial)
    np.testing.assert_allclose(result["distance"], mse, rtol=1e-4, atol=1e-9)
    assert np.abs(result["vector"] - np.asarray(parts["z"])).max() < 0.1
    # The loss falls along the way (the history is the distance before each update).
    assert result["history"][-1].mean() < 0.01 * initial


def test_the_optimisation_of_a_batch_is_one_compiled_scan(dcgan):
    latent = dcgan.algorithm.latent
    _, targets = _samples(dcgan, 6)
    settings = recover.Settings(steps=5, lr=0.05, restarts=3)
    recovery = recover.Recovery(latent, distances.get("mse", image_shape=targets.shape[1:]), settings)
    g = dcgan.state.generator
    for seed in range(3):  # other images and starts, same shapes: traced (compiled) once
        starts = recovery.random_starts(jax.random.PRNGKey(seed), 6)
        recovery(g, targets[::-1] if seed % 2 else targets, None, starts, jax.random.PRNGKey(seed))
    assert recovery.traces == 1
    recovery(g, targets[:4], None, recovery.random_starts(jax.random.PRNGKey(0), 4), jax.random.PRNGKey(0))
    assert recovery.traces == 2  # a new batch shape compiles once more
    # The whole optimisation is one scan over the steps (not a Python loop of updates).
    starts = recovery.random_starts(jax.random.PRNGKey(0), 6)
    jaxpr = jax.make_jaxpr(recovery._optimise)(g, targets, None, starts, jax.random.PRNGKey(0))
    scans = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "scan"]
    assert len(scans) == 1 and scans[0].params["length"] == 5


def test_restarts_keep_each_images_best_start(dcgan):
    """Per image, one start is G's true latent and the other a far one that 3 steps cannot
    bring back; which of the two is true alternates between images. The result keeps the true
    start for every image, with its distance, the minimum over starts."""
    latent = dcgan.algorithm.latent
    parts, targets = _samples(dcgan, 6)
    z = np.asarray(parts["z"])
    far = -3.0 * np.ones_like(z)
    true_first = np.arange(6) % 2 == 0
    starts = np.where(true_first[:, None, None], np.stack([z, far], 1), np.stack([far, z], 1))
    settings = recover.Settings(steps=3, lr=0.01, restarts=2)
    recovery = recover.Recovery(latent, distances.get("mse", image_shape=targets.shape[1:]), settings)
    result = jax.device_get(recovery(dcgan.state.generator, targets, None, starts, jax.random.PRNGKey(0)))
    np.testing.assert_array_equal(result["best"], np.where(true_first, 0, 1))
    np.testing.assert_allclose(result["distance"], result["distances"].min(1))
    assert result["distances"].max(1).min() > 100 * result["distance"].max()  # the far start stays far
    np.testing.assert_allclose(result["vector"], z, atol=0.05)
    # One start only (the far one): what restarts saved us from.
    single = recover.Recovery(latent, recovery.distance, recover.Settings(steps=3, lr=0.01, restarts=1))
    alone = jax.device_get(single(dcgan.state.generator, targets, None, far[:, None], jax.random.PRNGKey(0)))
    assert alone["distance"].min() > 100 * result["distance"].max()


def test_codes_relaxed_then_one_hot_and_bounded_coordinates_stay_in_their_box(infogan):
    """InfoGAN: the categorical block enters G as a softmax, one-hot for the last `snap` of the
    steps; z ~ U(-1, 1) and the continuous codes stay in [-1, 1] under stochastic or hard
    clipping, even with a learning rate that throws them out."""
    config, workdir = infogan
    trained = runs.load_trained(workdir)
    latent = trained.algorithm.latent
    _, targets = _samples(trained, 4)
    distance = distances.get("mse", image_shape=targets.shape[1:])
    v = {"z": jnp.zeros((2, latent.noise)), "logits": jnp.array([[0.0] * 9 + [2.0], [1.0] + [0.0] * 9]),
         "cont": jnp.zeros((2, 2))}
    soft, hard = recover.relaxed_vector(latent, v, False), recover.relaxed_vector(latent, v, True)
    np.testing.assert_allclose(soft[:, latent.noise:latent.noise + 10], jax.nn.softmax(v["logits"]), rtol=1e-6)
    np.testing.assert_array_equal(hard[:, latent.noise:latent.noise + 10], jax.nn.one_hot(jnp.array([9, 0]), 10))
    for clip in ("stochastic", "hard"):
        settings = recover.Settings(steps=8, lr=5.0, restarts=2, clip=clip, snap=0.25)
        recovery = recover.Recovery(latent, distance, settings)
        result = jax.device_get(recovery(trained.state.generator, targets, None,
                                         recovery.random_starts(jax.random.PRNGKey(0), 4), jax.random.PRNGKey(1)))
        vec = result["vector"]
        cat = vec[:, latent.noise:latent.noise + 10]
        assert np.all(np.abs(vec[:, :latent.noise]) <= 1.0) and np.all(np.abs(vec[:, -2:]) <= 1.0), clip
        np.testing.assert_array_equal(np.sort(cat, 1)[:, -1], 1.0)  # one-hot after the snap
        np.testing.assert_array_equal(cat.sum(1), 1.0)


def test_recover_job_through_launch_and_its_one_line_errors(repo_root, infogan, tmp_path):
    """init=both on the tiny InfoGAN: the predictor alone, recovery from random starts, and
    recovery started at the predictor's latent (W/predictor, from job=train_predictor)."""
    config, workdir = infogan
    out = tmp_path / "recover"
    args = ["--config=configs/infogan_mnist.py:tiny", f"--workdir={workdir}", "--config.job=recover",
            "--config.model.conv_impl=native", "--config.jobs.recover.num_images=10",
            "--config.jobs.recover.steps=6", "--config.jobs.recover.restarts=2", "--config.jobs.recover.init=both",
            "--config.jobs.recover.batch_size=4", "--config.jobs.recover.grid_images=3",
            f"--config.jobs.recover.output={out}"]
    result = launch(repo_root, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.load(open(out / "recover.json"))
    assert summary["methods"] == ["predictor", "recovery", "predictor + recovery"] and summary["num_images"] == 10
    assert summary["columns"] == ["original", "predictor", "recovery", "predictor + recovery"]
    for method in summary["methods"]:
        assert set(summary["table"][method]) == {"mse", "ssim", "ms_ssim"}
        assert all(np.isfinite(v["mean"]) for v in summary["table"][method].values())
    # Recovery started at the predictor's latent ends no worse than the predictor alone.
    assert summary["final_loss"]["predictor + recovery"] <= summary["final_loss"]["predictor"] + 1e-6
    assert "| predictor + recovery |" in open(out / "recover.md").read()
    assert "recovery: 10/10 images" in result.stderr  # progress in the log
    saved = np.load(out / "latents.npz")
    latent = runs.load_trained(workdir).algorithm.latent
    assert saved["recovery/vector"].shape == (10, latent.dim) and saved["recovery/cat"].shape == (10, 1)
    assert saved["predictor_recovery/z"].shape == (10, latent.noise) and saved["label"].shape == (10,)
    # The predictor column is the predictor's latent with its codes at their argmax.
    p = runs.load_trained(os.path.join(workdir, "predictor"))
    images = recover.real_images(config, "test", "", 10, (28, 28, 1), ()).images
    want = p.algorithm.latent.vector(p.algorithm.encode(p.state, images))
    np.testing.assert_allclose(saved["predictor/vector"], want, atol=1e-5)
    from PIL import Image

    assert Image.open(out / "recover_grid.png").size == (2 + 4 * 30, 2 + 3 * 30)  # 3 rows x 4 columns
    again = launch(repo_root, *args)
    assert again.returncode == 2, again.stderr[-2000:]
    assert again.stderr.strip().splitlines()[-1].startswith("ganjax: error:") and "already holds results" in again.stderr

    # One-line errors (UserErrors, which launch.py prints as one line), before anything is written.
    def error(kind, match, **keys):
        c = config.copy_and_resolve_references()
        c.job = "recover"
        c.jobs.recover.update({"output": str(tmp_path / "never"), "num_images": 2, "steps": 1, **keys})
        with pytest.raises(kind, match=match):
            recover.run(c, workdir)
        assert not os.path.exists(tmp_path / "never" / "recover.json")

    error(ConfigError, r"config.jobs.recover.distance='psnr': unknown distance", distance="psnr")
    error(ConfigError, "init must be one of", init="encoder")
    error(ConfigError, "No predictor in .*train_predictor", init="predictor", predictor=str(tmp_path / "none"))
    error(ConfigError, "clip must be one of", clip="soft")
    error(ConfigError, "steps and restarts must be >= 1", restarts=0)
    error(OutputExistsError, "already holds results", output=str(out))
