"""The extension layer: every registered algorithm's step, the latent spec, evaluators, config
sections, the loop with a non-GAN algorithm, and the job toolkit (runs, tfds writer)."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from ganjax import evaluators, gans, losses, runs, train
from ganjax.config import apply_variant, base_config, validate
from ganjax.data import writer
from ganjax.data.core import DataInfo
from ganjax.errors import ConfigError, UserError
from ganjax.gans.base import Algorithm
from ganjax.latent import LatentSpec
from ganjax.train_state import NetState, RunState, init_step_and_rng
from tests.helpers import assert_trees_equal, load_config

INFO = DataInfo("fake", (32, 32, 1), 3, ("a", "b", "c"), 100)


# --------------------------------------------------------------------------------------------
# One step of every registered algorithm.
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def untrained_generator_workdir(tmp_path_factory):
    """A GAN's workdir as training leaves it (config, data record, a checkpoint), holding an
    untrained tiny InfoGAN for INFO's images: what a predictor is trained against."""
    from ganjax.checkpoint import Checkpointer

    workdir = tmp_path_factory.mktemp("generator")
    config = apply_variant(base_config("infogan"), "tiny")
    config.model.conv_impl = "native"
    gan = gans.create(config, INFO)
    runs.record_config(config, str(workdir), has_checkpoint=False)
    runs.write_data_info(str(workdir), INFO)
    with Checkpointer(str(workdir / "checkpoints"), 1) as checkpointer:
        checkpointer.save(0, gan.init_state(jax.random.PRNGKey(0)))
    return str(workdir)


@pytest.mark.parametrize("name", gans.names())
def test_one_step_of_every_registered_algorithm(name, request):
    """A new algorithm is covered by registering it: its tiny config, one jit-compiled step on
    a batch of the structure its input pipeline yields."""
    config = apply_variant(base_config(name), "tiny")
    config.model.conv_impl = "native"  # compiles faster; both forms are tested for equality
    if name == "predictor":  # trained against a GAN's workdir
        config.predictor.generator = request.getfixturevalue("untrained_generator_workdir")
    validate(config)
    gan = gans.create(config, INFO)
    state = gan.init_state(jax.random.PRNGKey(0))
    assert isinstance(state, RunState) and state.networks()
    batch = gan.example_batch(jax.random.PRNGKey(1), 4)
    new, metrics = jax.jit(gan.train_step)(state, batch)
    assert int(new.step) == 1
    metrics = jax.device_get(metrics)
    assert metrics and all(np.isfinite(v) for v in metrics.values()), metrics
    assert jax.tree.structure(new) == jax.tree.structure(state)
    moved = [float(jnp.abs(a - b).max()) for a, b in zip(
        jax.tree.leaves({k: n.params for k, n in state.networks().items()}),
        jax.tree.leaves({k: n.params for k, n in new.networks().items()}))]
    assert max(moved) > 0
    grid = gan.grid_inputs(jax.random.PRNGKey(2), 2) if gan.latent is not None else None
    if grid is not None:
        images = gan.grid(new, grid[0])
        assert images.shape[1:] == INFO.image_shape and images.shape[0] == grid[1] * 2
        assert float(jnp.abs(images).max()) <= 1.0


# --------------------------------------------------------------------------------------------
# The latent spec.
# --------------------------------------------------------------------------------------------


def test_latent_spec_sample_vector_split():
    spec = LatentSpec(noise=5, categorical=(10, 3), continuous=2, num_classes=4)
    assert spec.dim == 5 + 13 + 2
    key = jax.random.PRNGKey(0)
    parts = spec.sample(key, 2000)
    assert parts["z"].shape == (2000, 5) and parts["cont"].shape == (2000, 2)
    assert parts["cat"].shape == (2000, 2) and parts["label"].shape == (2000,)
    # Priors: z ~ N(0, 1), codes ~ U(-1, 1) (not a normal: the InfoGAN slip), categories uniform.
    assert abs(float(parts["z"].std()) - 1.0) < 0.05
    assert float(parts["cont"].min()) >= -1.0 and float(parts["cont"].max()) <= 1.0
    assert abs(float(parts["cont"].std()) - 1 / np.sqrt(3)) < 0.02  # U(-1, 1): std 0.577
    counts = np.bincount(np.asarray(parts["cat"][:, 0]), minlength=10)
    assert counts.min() > 150 and counts.max() < 250
    assert set(np.unique(parts["cat"][:, 1]).tolist()) == {0, 1, 2}
    # vector -> split round trip; the condition is not in the vector.
    v = spec.vector(parts)
    assert v.shape == (2000, spec.dim)
    np.testing.assert_array_equal(v[:, 5:15].sum(-1), 1.0)
    back = spec.split(v)
    np.testing.assert_array_equal(back["z"], parts["z"])
    np.testing.assert_array_equal(back["cat"], parts["cat"])
    np.testing.assert_array_equal(back["cont"], parts["cont"])
    assert [l.shape[-1] for l in back["cat_logits"]] == [10, 3]
    assert spec.condition(parts) is parts["label"]
    # Fixed parts are kept; noise alone is exactly jax.random.normal(key, ...).
    fixed = spec.sample(key, 4, label=jnp.array([3, 2, 1, 0]))
    assert fixed["label"].tolist() == [3, 2, 1, 0]
    np.testing.assert_array_equal(fixed["z"], parts["z"][:4] * 0 + jax.random.normal(key, (4, 5)))
    only_noise = LatentSpec(noise=7)
    np.testing.assert_array_equal(only_noise.vector(only_noise.sample(key, 3)), jax.random.normal(key, (3, 7)))
    uniform = LatentSpec(noise=3, noise_prior="uniform").sample(key, 500)["z"]
    assert float(uniform.min()) >= -1 and float(uniform.max()) <= 1
    attributes = LatentSpec(noise=2, num_attributes=40).sample(key, 100)["attributes"]
    assert attributes.shape == (100, 40) and set(np.unique(attributes).tolist()) == {0.0, 1.0}


def test_latent_spec_grids_and_errors():
    key = jax.random.PRNGKey(1)
    parts, rows = LatentSpec(noise=4, num_classes=3).grid(key, 5)
    assert rows == 3 and parts["label"].tolist() == [0] * 5 + [1] * 5 + [2] * 5
    parts, rows = LatentSpec(noise=4, categorical=(6,), continuous=1).grid(key, 2)
    assert rows == 6 and parts["cat"][:, 0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    parts, rows = LatentSpec(noise=4).grid(key, 3)
    assert rows == 3 and parts["z"].shape == (9, 4)
    spec = LatentSpec(noise=4, categorical=(5,), continuous=2)
    values = jnp.linspace(-2, 2, 4)
    parts, rows = spec.traversal(key, 3, values, code=1)
    assert rows == 3 and parts["cont"].shape == (12, 2)
    np.testing.assert_allclose(parts["cont"][:, 1], np.tile(values, 3))
    # Along a row only the swept code changes.
    np.testing.assert_array_equal(parts["z"][0], parts["z"][3])
    np.testing.assert_array_equal(parts["cont"][0, 0], parts["cont"][3, 0])
    assert float(jnp.abs(parts["z"][0] - parts["z"][4]).max()) > 0
    parts, _ = spec.traversal(key, 2, jnp.arange(5), kind="cat")
    assert parts["cat"][:, 0].tolist() == [0, 1, 2, 3, 4] * 2
    with pytest.raises(ValueError, match="continuous code 2 does not exist"):
        spec.traversal(key, 2, values, code=2)
    with pytest.raises(ValueError, match="label or an attribute vector, not both"):
        LatentSpec(num_classes=3, num_attributes=2)
    with pytest.raises(ValueError, match="noise prior"):
        LatentSpec(noise_prior="cauchy")
    with pytest.raises(ValueError, match="has 11 entries, got 3"):
        spec.split(jnp.zeros((2, 3)))


# --------------------------------------------------------------------------------------------
# The two-player step's hooks: an auxiliary term is added, weighted, without copying the step.
# --------------------------------------------------------------------------------------------


class _AuxGAN(gans.get("dcgan")):
    """The DCGAN step plus an ACGAN-style class head on D (a test of the hooks only)."""

    weight = 0.5

    def d_heads(self):
        return (("aux", self.info.num_classes),)

    def d_conditional(self):
        return False

    def d_aux_terms(self, real, fake, batch, parts):
        return {"class": (self.weight, losses.categorical_cross_entropy(real["aux"], batch["label"])
                          + losses.categorical_cross_entropy(fake["aux"], parts["label"]))}

    def g_aux_terms(self, fake, parts):
        return {"class": (self.weight, losses.categorical_cross_entropy(fake["aux"], parts["label"]))}


def test_auxiliary_terms_enter_both_losses():
    config = apply_variant(base_config(), "tiny")
    config.gan.conditional = True
    config.model.d_batch_norm = False
    gan = _AuxGAN(config, INFO)
    state = gan.init_state(jax.random.PRNGKey(0))
    assert "head_aux" in state.discriminator.params
    batch = gan.example_batch(jax.random.PRNGKey(1), 8)
    new, metrics = jax.jit(gan.train_step)(state, batch)
    # The D loss is the adversarial loss of the scores plus 0.5 x the class term, recomputed
    # here from the heads of the state the step started from.
    key = state.step_key()
    k_z, k_d = jax.random.split(jax.random.fold_in(key, 0))
    parts = gan.latent.sample(k_z, 8, label=batch["label"][0])
    fake = gan.generator.apply(state.generator.variables, gan.latent.vector(parts), parts["label"],
                               train=True, mutable=["batch_stats"])[0]
    _, _, k_drop, _ = jax.random.split(k_d, 4)
    d = lambda x: state.discriminator.apply_fn(state.discriminator.variables, x, None, train=True,
                                                 rngs={"dropout": k_drop}, mutable=["batch_stats"])[0]
    real_out, fake_out = d(batch["image"][0]), d(fake)
    adv = losses.minimax_discriminator_loss(real_out["score"], fake_out["score"])  # non-saturating D loss
    cls = (losses.categorical_cross_entropy(real_out["aux"], batch["label"][0])
           + losses.categorical_cross_entropy(fake_out["aux"], parts["label"]))
    np.testing.assert_allclose(metrics["d_class"], cls, rtol=1e-5)
    np.testing.assert_allclose(metrics["d_loss"], adv + 0.5 * cls, rtol=1e-5)
    assert np.isfinite(float(metrics["g_class"])) and float(metrics["g_class"]) > 0
    # Without the term the head gets no gradient: the hook is what trains it.
    plain = gans.get("dcgan")(config, INFO)
    assert "head_aux" not in plain.init_state(jax.random.PRNGKey(0)).discriminator.params
    assert float(jnp.abs(new.discriminator.params["head_aux"]["kernel"]
                         - state.discriminator.params["head_aux"]["kernel"]).max()) > 0


# --------------------------------------------------------------------------------------------
# Evaluators and config sections.
# --------------------------------------------------------------------------------------------


def test_an_evaluator_the_algorithm_cannot_serve_is_a_config_error_before_training(tmp_path):
    config = load_config(None, "cyclegan_digits")
    config.evals.label_accuracy = evaluators.entry("label_accuracy", every=2)
    with pytest.raises(ConfigError, match=r"config.evals.label_accuracy \(label_accuracy\) needs a generator told a class label.*'cyclegan'"):
        train.train_and_evaluate(config, str(tmp_path / "w"))
    assert not (tmp_path / "w").exists()
    config = load_config(None, "dcgan_mnist")  # unconditional: would score chance
    config.evals.acc = evaluators.entry("label_accuracy")
    with pytest.raises(ConfigError, match="gan.conditional=True"):
        train.train_and_evaluate(config, str(tmp_path / "w"))
    assert not (tmp_path / "w").exists()


def test_evaluator_entries_and_config_sections():
    entry = evaluators.entry("label_accuracy", every=7)
    assert entry.type == "label_accuracy" and entry.every == 7 and entry.num_samples == 1000
    with pytest.raises(ConfigError, match="unknown evaluator type 'fid9'"):
        evaluators.entry("fid9")
    with pytest.raises(ConfigError, match="has no key 'cols'"):
        evaluators.entry("label_accuracy", cols=3)
    c = base_config()
    c.evals.bad = ml_collections.ConfigDict({"type": "label_accuracy", "every": 1, "num_samples": 5, "x": 1})
    with pytest.raises(ConfigError, match=r"config.evals.bad has unknown keys \['x'\]"):
        validate(c)
    # Each algorithm brings its own section and architecture keys, and its tiny values.
    cyc, dc = base_config("cyclegan"), base_config("dcgan")
    assert "cyclegan" in cyc and "cyclegan" not in dc
    assert "z_dim" in dc.model and "z_dim" not in cyc.model and dc.model.arch == "dcgan"
    assert "translate" in cyc.jobs and "translate" in dc.jobs
    tiny = apply_variant(base_config("cyclegan"), "tiny")
    assert tiny.cyclegan.g_width == 8 and tiny.data.batch_size == 4 and tiny.train.num_steps == 6
    tiny = load_config(None, "cgan_mnist")
    assert tiny.model.z_dim == 8 and tiny.evals.label_accuracy.num_samples == 100
    # Section errors are one-line ConfigErrors.
    dc.gan.name = "cyclegan"
    with pytest.raises(ConfigError, match="needs the config.cyclegan section"):
        validate(dc)
    dc.gan.name = "bogus"
    with pytest.raises(ConfigError, match="unknown config.gan.name 'bogus'"):
        validate(dc)
    dc.gan.name, dc.model.arch = "dcgan", "resnet9000"
    with pytest.raises(ConfigError, match="unknown config.model.arch 'resnet9000'"):
        validate(dc)
    assert issubclass(ConfigError, UserError)


# --------------------------------------------------------------------------------------------
# The loop runs a non-GAN algorithm: a classifier gets checkpoints, resume and metrics.
# --------------------------------------------------------------------------------------------


class _Classifier(Algorithm):
    """Logistic regression on the pixels: the smallest algorithm that is not a GAN."""

    @classmethod
    def default_config(cls):
        return ml_collections.ConfigDict({"lr": 0.1})

    config_section = "test_classifier"

    def __init__(self, config, data_info):
        super().__init__(config, data_info)
        self.net = nn.Dense(data_info.num_classes)

    def init_state(self, rng):
        step, base = init_step_and_rng(self.config.seed)
        x = jnp.zeros((1, int(np.prod(self.info.image_shape))))
        net = NetState.create(self.net.apply, self.net.init(rng, x), optax.sgd(self.config.test_classifier.lr))
        return _ClassifierState(step=step, rng=base, classifier=net)

    def train_step(self, state, batch):
        x = batch["image"][0].reshape(batch["image"].shape[1], -1)

        def loss_fn(params):
            return losses.categorical_cross_entropy(self.net.apply({"params": params}, x), batch["label"][0])

        loss, grads = jax.value_and_grad(loss_fn)(state.classifier.params)
        return state.replace(step=state.step + 1, classifier=state.classifier.apply_gradients(grads)), {"loss": loss}


from flax import struct  # noqa: E402


@struct.dataclass
class _ClassifierState(RunState):
    classifier: NetState


@pytest.fixture
def classifier_algorithm():
    gans.register("test_classifier")(_Classifier)
    yield
    gans.unregister("test_classifier")


def test_the_loop_trains_and_resumes_an_algorithm_that_is_not_a_gan(tmp_path, classifier_algorithm):
    config = apply_variant(base_config("test_classifier"), "tiny")
    config.data.name = "mnist_offline"
    config.train.num_steps = 4
    straight = train.train_and_evaluate(config, str(tmp_path / "straight"))
    assert int(straight.step) == 4 and set(straight.networks()) == {"classifier"}
    config.train.num_steps = 2
    train.train_and_evaluate(config, str(tmp_path / "resumed"))
    config.train.num_steps = 4
    resumed = train.train_and_evaluate(config, str(tmp_path / "resumed"))
    assert_trees_equal(jax.device_get(straight.classifier.params), jax.device_get(resumed.classifier.params))
    rows = [json.loads(l) for l in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "train/loss" in r] == [2, 4]
    assert not (tmp_path / "resumed" / "samples").exists()  # no latent, no grid


# --------------------------------------------------------------------------------------------
# The job toolkit: a trained run rebuilt from its workdir, networks from another run, tfds.
# --------------------------------------------------------------------------------------------


def test_load_trained_and_init_from(tmp_path):
    config = load_config(None, "cgan_mnist")
    del config.evals["label_accuracy"]
    config.train.num_steps = 2
    config.train.checkpoint_every = 1
    workdir = str(tmp_path / "run")
    final = train.train_and_evaluate(config, workdir)
    info = runs.read_data_info(workdir)
    assert info.image_shape == (28, 28, 1) and info.num_classes == 10 and info.class_names[3] == "3"
    # From the workdir alone (config.json + data_info.json + checkpoints).
    trained = runs.load_trained(workdir)
    assert trained.step == 2 and trained.config.gan.conditional and trained.config.model.z_dim == 8
    assert_trees_equal(jax.device_get(trained.state.generator.params), jax.device_get(final.generator.params))
    parts = trained.algorithm.latent.sample(jax.random.PRNGKey(0), 10, label=jnp.arange(10))
    images = trained.algorithm.generate(trained.state, parts)
    assert images.shape == (10, 28, 28, 1)
    assert runs.load_trained(workdir, restore="1").step == 1
    with pytest.raises(UserError, match="no checkpoint of step 7"):
        runs.load_trained(workdir, restore=7)
    with pytest.raises(ConfigError, match="'latest', 'best' or a step number"):
        runs.load_trained(workdir, restore="best-ish")
    with pytest.raises(UserError, match="No checkpoints in"):
        runs.load_trained(str(tmp_path / "nothing"), config=config)
    # A new run's generator from that run; its discriminator and optimizer states its own.
    fresh = trained.algorithm.init_state(jax.random.PRNGKey(5))
    started = runs.init_from(fresh, workdir, ("generator",))
    assert_trees_equal(jax.device_get(started.generator.params), jax.device_get(final.generator.params))
    assert_trees_equal(jax.device_get(started.discriminator.params), jax.device_get(fresh.discriminator.params))
    assert int(started.generator.opt_state[0].count) == 0
    other = load_config(None, "cgan_mnist")
    other.model.g_width = 16
    bigger = gans.create(other, info).init_state(jax.random.PRNGKey(0))
    with pytest.raises(UserError, match="other shapes"):
        runs.init_from(bigger, workdir, ("generator",))


def test_write_image_dataset_loads_with_tfds(tmp_path):
    import tensorflow_datasets as tfds

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 8, 8, 1), dtype=np.uint8)
    attributes = rng.integers(0, 2, (6, 3))
    path = writer.write_image_dataset(
        str(tmp_path), "synthetic_digits", images, [0, 1, 2, 2, 1, 0], ("zero", "one", "two"),
        attributes=attributes, attribute_names=("Smiling", "Young", "Male"), description="test",
    )
    builder = tfds.builder_from_directory(path)
    assert builder.info.features["label"].names == ["zero", "one", "two"]
    examples = list(builder.as_dataset(split="train").as_numpy_iterator())
    by_label = sorted((int(e["label"]), e["image"].tobytes(), tuple(int(e["attributes"][a]) for a in ("Smiling", "Young", "Male")))
                      for e in examples)
    want = sorted((l, im.tobytes(), tuple(int(v) for v in a)) for l, im, a in zip([0, 1, 2, 2, 1, 0], images, attributes))
    assert by_label == want
    assert writer.safe_name("Neutral -> Happy!") == "Neutral_-_Happy_"


def test_launch_turns_user_errors_into_one_line(repo_root, tmp_path):
    from tests.helpers import launch

    workdir = tmp_path / "w"
    result = launch(repo_root, "--config=configs/dcgan_mnist.py:tiny", f"--workdir={workdir}",
                    "--config.gan.name=bogus")
    errors = [l for l in result.stderr.splitlines() if l.startswith("ganjax: error:")]
    assert result.returncode == 2 and len(errors) == 1 and "unknown config.gan.name 'bogus'" in errors[0]
    assert "Traceback" not in result.stderr and not workdir.exists()
