"""The controllable generators: ACGAN / WACGAN (label and multi-label), InfoGAN and its
extensions, and the evaluators that measure them."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import gans, losses, train
from ganjax.data.core import DataInfo
from ganjax.errors import ConfigError
from ganjax.metrics import codes
from tests.helpers import assert_trees_equal, assert_trees_match_across_devices, launch, load_config, tiny_algorithm_config

LABELS = DataInfo("digits", (28, 28, 1), 10, tuple("0123456789"), 100)
ATTRIBUTES = DataInfo("faces", (32, 32, 3), 0, (), 100, attribute_names=("a", "b", "c", "d"))
BOTH = DataInfo("digit_attributes", (28, 28, 1), 10, tuple("0123456789"), 100,
                attribute_names=("even", "large", "loop", "straight"))


def _step(gan, batch_size=8):
    state = gan.init_state(jax.random.PRNGKey(0))
    batch = gan.example_batch(jax.random.PRNGKey(1), batch_size)
    new, metrics = jax.jit(gan.train_step)(state, batch)
    return state, new, jax.device_get(metrics), batch


# --------------------------------------------------------------------------------------------
# ACGAN / WACGAN.
# --------------------------------------------------------------------------------------------


def test_acgan_head_is_chosen_by_the_data():
    assert gans.create(tiny_algorithm_config("acgan"), LABELS).aux_head == "softmax"
    multi = gans.create(tiny_algorithm_config("acgan"), ATTRIBUTES)
    assert multi.aux_head == "sigmoid" and multi.latent.num_attributes == 4
    # Data with both (digits + derived attributes): auto takes the multi-label view.
    assert gans.create(tiny_algorithm_config("acgan"), BOTH).aux_head == "sigmoid"
    assert gans.create(tiny_algorithm_config("acgan", **{"acgan.aux_head": "softmax"}), BOTH).latent.num_classes == 10


@pytest.mark.parametrize("info, head, needle", [
    (ATTRIBUTES, "softmax", "multi-label"),
    (LABELS, "sigmoid", "only class labels"),
    (LABELS, "bce", "must be one of"),
])
def test_acgan_bad_combinations_are_config_errors(info, head, needle):
    with pytest.raises(ConfigError, match=needle):
        gans.create(tiny_algorithm_config("acgan", **{"acgan.aux_head": head}), info)


def test_acgan_class_terms_enter_d_and_g_from_logits():
    """L_D's class part is CE(aux(x), y) + CE(aux(G(z, y)), y), recomputed here; D is not told
    the label (no label map in D); the multi-label head is the mean sigmoid BCE."""
    gan = gans.create(tiny_algorithm_config("acgan", **{"model.d_dropout": 0.0}), LABELS)
    state, new, metrics, batch = _step(gan)
    assert "label_dense" not in str(jax.tree.structure(state.discriminator.params))
    key = state.step_key()
    k_z, _ = jax.random.split(jax.random.fold_in(key, 0))
    parts = gan.latent.sample(k_z, 8, label=batch["label"][0])
    fake = gan.generator.apply(state.generator.variables, gan.latent.vector(parts), parts["label"],
                               train=True, mutable=["batch_stats"])[0]
    d = lambda x: state.discriminator.apply_fn(state.discriminator.variables, x, None, train=False)
    real_aux, fake_aux = d(batch["image"][0])["aux"], d(fake)["aux"]
    np.testing.assert_allclose(metrics["d_aux_real"], losses.categorical_cross_entropy(real_aux, batch["label"][0]), rtol=1e-4)
    np.testing.assert_allclose(metrics["d_aux_fake"], losses.categorical_cross_entropy(fake_aux, parts["label"]), rtol=1e-4)
    assert 0.0 <= metrics["d_aux_accuracy"] <= 1.0 and np.isfinite(metrics["g_aux"])
    # The class term is in the total: d_loss > d's adversarial part alone.
    assert metrics["d_loss"] > metrics["d_aux_real"] + metrics["d_aux_fake"] - 1e-6

    multi = gans.create(tiny_algorithm_config("acgan"), ATTRIBUTES)
    logits, targets = jnp.array([[2.0, -1.0, 0.5, 0.0]]), jnp.array([[1.0, 0.0, 0.0, 1.0]])
    expected = np.mean(np.log1p(np.exp(-np.array([2.0, 1.0, -0.5, 0.0]))))
    np.testing.assert_allclose(multi.class_loss(logits, targets), expected, rtol=1e-6)
    np.testing.assert_allclose(multi.class_accuracy(logits, targets), 0.5)
    _, _, metrics, _ = _step(multi)
    assert np.isfinite(metrics["d_aux_real"]) and np.isfinite(metrics["g_aux"])


def test_wacgan_is_acgan_with_the_wasserstein_loss_and_clipping():
    gan = gans.create(tiny_algorithm_config("acgan", **{"gan.loss": "wasserstein", "gan.weight_clip": 0.01,
                                         "gan.d_steps": 2}), LABELS)
    _, new, metrics, _ = _step(gan)
    assert all(np.isfinite(v) for v in metrics.values())
    assert max(float(jnp.abs(x).max()) for x in jax.tree.leaves(new.discriminator.params)) <= 0.01 + 1e-7


# --------------------------------------------------------------------------------------------
# InfoGAN.
# --------------------------------------------------------------------------------------------


def test_infogan_latent_q_head_and_info_terms():
    gan = gans.create(tiny_algorithm_config("infogan"), LABELS)
    latent = gan.latent
    assert latent.categorical == (10,) and latent.continuous == 2 and latent.noise_prior == "uniform"
    parts = latent.sample(jax.random.PRNGKey(0), 4000)
    assert float(parts["cont"].min()) >= -1 and float(parts["cont"].max()) <= 1  # U(-1, 1), not N
    np.testing.assert_allclose(float(jnp.var(parts["cont"])), 1 / 3, atol=0.03)
    state, new, metrics, _ = _step(gan)
    assert state.discriminator.params["head_q"]["kernel"].shape[-1] == 12  # 10 logits + 2 means
    # At initialisation Q knows nothing: the categorical CE is about log 10.
    assert abs(metrics["d_info_cat"] - np.log(10)) < 0.3
    assert {"d_info_cat", "d_info_cont", "g_info_cat", "g_info_cont"} <= set(metrics)
    # Q's output cut back into parts, and the information loss from them by hand.
    q = jnp.arange(2 * 12, dtype=jnp.float32).reshape(2, 12) / 10
    p = {"cat": jnp.array([[3], [7]]), "cont": jnp.array([[0.5, -0.5], [0.1, 0.2]])}
    terms = gan.info_terms(q, p)
    np.testing.assert_allclose(terms["info_cat"][1], losses.categorical_cross_entropy(q[:, :10], p["cat"][:, 0]), rtol=1e-6)
    np.testing.assert_allclose(terms["info_cont"][1], np.mean(0.5 * np.sum((np.asarray(q[:, 10:]) - np.asarray(p["cont"])) ** 2, -1)), rtol=1e-6)


def test_infogan_extensions_learned_variance_noise_head_and_q_learning_rate():
    gan = gans.create(tiny_algorithm_config("infogan", **{"infogan.cont_std": "learned", "infogan.lambda_noise": 0.1}), LABELS)
    state, _, metrics, _ = _step(gan)
    z = gan.latent.noise
    assert state.discriminator.params["head_q"]["kernel"].shape[-1] == 10 + 2 + 2 + z
    assert "d_info_noise" in metrics and np.isfinite(metrics["g_info_noise"])
    # Learned variance: the term is the Gaussian NLL with Q's log-std (sign and variance term).
    q = jnp.zeros((1, 14 + z)).at[0, 12:14].set(jnp.log(2.0))
    p = {"cat": jnp.array([[0]]), "cont": jnp.array([[1.0, -2.0]]), "z": jnp.zeros((1, z))}
    nll = sum(0.5 * (c / 2.0) ** 2 + np.log(2.0) + 0.5 * np.log(2 * np.pi) for c in (1.0, -2.0))
    np.testing.assert_allclose(gan.info_terms(q, p)["info_cont"][1], nll, rtol=1e-6)

    # infogan.q_lr: the Q head learns at its own rate, D's trunk at optim.d_lr (here ~0).
    gan = gans.create(tiny_algorithm_config("infogan", **{"infogan.q_lr": 1e-2, "optim.d_lr": 1e-12}), LABELS)
    state, new, _, _ = _step(gan)
    moved = lambda name: float(jnp.abs(new.discriminator.params[name]["kernel"]
                                      - state.discriminator.params[name]["kernel"]).max())
    assert moved("head_q") > 1e-3 and moved("head_q_hidden") > 1e-3
    assert moved("head") < 1e-9 and moved("hidden") < 1e-9


@pytest.mark.parametrize("overrides, needle", [
    ({"infogan.categorical": 0}, "at least 2 values"),
    ({"infogan.cont_std": "free"}, "cont_std"),
    ({"infogan.q_lr": -1.0}, "q_lr"),
])
def test_infogan_bad_configs_are_config_errors(overrides, needle):
    with pytest.raises(ConfigError, match=needle):
        gans.create(tiny_algorithm_config("infogan", **overrides), LABELS)


def test_recover_codes_reads_q():
    gan = gans.create(tiny_algorithm_config("infogan"), LABELS)
    state = gan.init_state(jax.random.PRNGKey(0))
    out = gan.recover_codes(state, jnp.zeros((3, 28, 28, 1)))
    assert out["cat"].shape == (3, 1) and out["cont"].shape == (3, 2) and out["cat_logits"][0].shape == (3, 10)


def test_code_accuracy_reads_real_digits_with_real_batch_statistics(tmp_path):
    from ganjax import evaluators, runs
    from ganjax.data import pipeline

    config = load_config(None, "infogan_mnist")
    config.evals = {}
    config.train.num_steps = 3
    train.train_and_evaluate(config, str(tmp_path))
    trained = runs.load_trained(str(tmp_path))
    gan, state = trained.algorithm, trained.state
    test_x, test_y = pipeline.load_arrays(config.data, "test", limit=100)[:2]
    train_x = pipeline.load_arrays(config.data, config.data.split)[0]

    def by_hand(s, x=test_x, y=test_y):
        logits = np.asarray(gan.recover_codes(s, x)["cat_logits"][0])
        return codes.categorical_code_accuracy(logits, y, num_codes=10, num_classes=10).accuracy

    d_real = state.discriminator.with_data_batch_stats(
        train_x, None, batch_size=min(500, len(train_x)), rngs={"dropout": jax.random.PRNGKey(0)})
    before, after = state.discriminator.batch_stats, d_real.batch_stats
    assert not np.allclose(jax.tree.leaves(before)[0], jax.tree.leaves(after)[0])
    accuracy = {"real": by_hand(state.replace(discriminator=d_real)), "running": by_hand(state)}
    for mode, other in [("real", "running"), ("running", "real")]:
        entry = evaluators.entry("code_accuracy", num_images=100, batch_stats=mode)
        out = dict(evaluators.get("code_accuracy")("codes", entry, config, gan, str(tmp_path)).run(state, 3))
        assert out["codes"] == pytest.approx(accuracy[mode]) and out[f"codes_{other}"] == pytest.approx(accuracy[other])
        assert out["codes_confusion"].ndim == 3 and f"codes_{mode}" not in out
    with pytest.raises(ConfigError, match="batch_stats='mixed'"):
        evaluators.get("code_accuracy")("codes", evaluators.entry("code_accuracy", batch_stats="mixed"),
                                        config, gan, str(tmp_path))
    # job=synthesize / edit name the codes with the statistics of the run's evaluator (whole split).
    whole = pipeline.load_arrays(config.data, "test")[:2]
    for mode, s in [("running", state), ("real", state.replace(discriminator=d_real))]:
        trained.config.evals = {"codes": evaluators.entry("code_accuracy", batch_stats=mode)}
        assert runs.match_codes(trained, "test").accuracy == pytest.approx(by_hand(s, *whole))
    trained.config.evals = {}
    assert runs.match_codes(trained, "test").accuracy == pytest.approx(by_hand(state, *whole))


# --------------------------------------------------------------------------------------------
# Factor measures of the traversal evaluator.
# --------------------------------------------------------------------------------------------


def _stroke(shear: float, width: int) -> np.ndarray:
    image = -np.ones((28, 28, 1), np.float32)
    for row in range(4, 24):
        col = int(round(14 + shear * (row - 14)))
        image[row, col - width // 2:col - width // 2 + width, 0] = 1.0
    return image


def test_slant_and_ink_mass_measure_shear_and_thickness():
    shears = np.linspace(-0.5, 0.5, 7)
    images = np.stack([_stroke(s, 2) for s in shears])
    measured = codes.slant(images)
    np.testing.assert_allclose(measured, shears, atol=0.06)  # mu11 / mu02 recovers the shear
    assert codes.ink_mass(np.stack([_stroke(0, w) for w in (1, 2, 3)])).tolist() == sorted(
        codes.ink_mass(np.stack([_stroke(0, w) for w in (1, 2, 3)])).tolist())
    rows = np.stack([measured, -measured, np.ones(7)])
    # Rows of +1 and -1 correlation; the constant row is skipped.
    assert codes.traversal_correlation(rows, shears) == pytest.approx(0.0)
    assert codes.traversal_correlation(rows[:1], shears) == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------
# Through launch.py, resume and the mesh.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config_name, evals", [
    ("acgan_mnist", ["label_accuracy", "label_accuracy/judge_test_accuracy"]),
    ("infogan_mnist", ["code_accuracy", "traversals/c0_slant", "class_coverage/min_fraction"]),
    ("acgan_digit_attributes", ["attribute_accuracy", "attribute_accuracy/loop"]),
    ("wacgan_mnist", ["curves/collapse_step", "label_accuracy"]),
    ("quickstart_mnist", ["label_accuracy", "fid", "ms_ssim", "ms_ssim/real", "memorisation/nn_distance"]),
])
def test_launch_tiny_controllable_configs(repo_root, tmp_path, config_name, evals):
    result = launch(repo_root, f"--config=configs/{config_name}.py:tiny", f"--workdir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
    last = {k: v for r in rows for k, v in r.items()}
    for key in evals:
        assert np.isfinite(last[f"eval/{key}"]), key
    assert os.listdir(tmp_path / "evals") and os.listdir(tmp_path / "samples")
    assert os.path.exists(tmp_path / "judges")


def _params(state):
    return {k: n.params for k, n in state.networks().items()}


@pytest.mark.parametrize("config_name", ["acgan_mnist", "infogan_mnist"])
def test_resume_is_bit_exact_and_four_devices_match_one(tmp_path, config_name):
    config = load_config(None, config_name)
    config.evals = {}
    config.optim.schedule = "constant"
    config.train.checkpoint_every = 100
    config.mesh.num_devices = 1
    straight = train.train_and_evaluate(config, str(tmp_path / "straight"))
    config.train.num_steps = 3
    train.train_and_evaluate(config, str(tmp_path / "resumed"))
    config.train.num_steps = 6
    resumed = train.train_and_evaluate(config, str(tmp_path / "resumed"))
    assert_trees_equal(_params(straight), _params(resumed))
    assert jax.device_count() == 4
    config.mesh.num_devices = 4
    four = train.train_and_evaluate(config, str(tmp_path / "four"))
    lr = max(config.optim.g_lr, config.optim.d_lr)
    assert_trees_match_across_devices(_params(straight), _params(four), max_drift=2 * lr * config.train.num_steps)


@pytest.mark.parametrize("config_name", ["acgan_celeba64", "wacgan_celeba64"])
def test_celeba_attribute_configs_train_on_celeb_a_files(tmp_path, config_name):
    """The 40-attribute configs through the real tfds `celeb_a` builder (its data faked by
    `tfds.testing.mock_data`, as tests/test_data_celeb_a.py): G told the 40-vector, D's
    40-sigmoid head, the attribute evaluator with its judge."""
    import tensorflow_datasets as tfds

    from tests.test_data_celeb_a import fake_celeb_a

    config = load_config(None, config_name)
    config.data.download = True  # under mock_data download_and_prepare is a no-op
    config.data.image_size = 32  # the 64 px networks are tested in tests/test_models_resnet.py
    config.data.batch_size = 4
    config.train.num_steps = 2
    config.evals.attribute_accuracy.num_samples = 8
    with tfds.testing.mock_data(as_dataset_fn=fake_celeb_a, policy=tfds.testing.MockPolicy.USE_CODE):
        state = train.train_and_evaluate(config, str(tmp_path))
    assert state.discriminator.params["head_aux"]["kernel"].shape[-1] == 40
    rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
    smiling = [r["eval/attribute_accuracy/Smiling"] for r in rows if "eval/attribute_accuracy/Smiling" in r]
    assert smiling and 0.0 <= smiling[-1] <= 1.0
