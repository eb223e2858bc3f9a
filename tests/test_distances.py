"""Per-example image distances by name (ganjax/distances.py): zero for identical images and
positive otherwise, one value per image, against independent computations (numpy for mse and
l1; tf.image.ssim / tf.image.ssim_multiscale with the same window and power factors, 1e-4
absolute, as tests/test_metrics_ssim.py), finite gradients with respect to the images, the
feature distances (VGG-16 on random weights written by the test; a judge trained for a few
steps on the offline digits) inside `jax.jit` and `lax.scan`, and the errors.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import config as config_lib
from ganjax import distances, judges
from ganjax.errors import ConfigError
from ganjax.metrics import ssim as ssim_lib
from ganjax.models import vgg

SSIM_ATOL = 1e-4
SHAPE = (3, 28, 28, 1)  # the digits' size: 2 MS-SSIM scales with the 11-px window


def _pair(shape, seed=0, noise=0.3):
    """Images in [-1, 1] and a correlated, noisy copy."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, shape).astype(np.float32)
    b = np.clip(a + noise * rng.normal(size=shape), -1, 1).astype(np.float32)
    return a, b


@pytest.fixture(scope="module")
def vgg_weights(tmp_path_factory):
    """Random VGG-16 variables (He-normal kernels, small biases), as a converted .npz."""
    shapes = jax.eval_shape(vgg.VGG16Features(vgg.LAYERS).init, jax.random.key(0),
                            jax.ShapeDtypeStruct((1, 16, 16, 3), jnp.float32))
    rng = np.random.default_rng(0)
    variables = jax.tree.map(
        lambda s: (rng.normal(size=s.shape) * (np.sqrt(2 / np.prod(s.shape[:-1])) if len(s.shape)
                                                > 1 else 0.01)).astype(np.float32), shapes)
    path = tmp_path_factory.mktemp("vgg") / "vgg16_features.npz"
    vgg.save_variables(variables, path)
    return str(path)


@pytest.fixture(scope="module")
def config(vgg_weights):
    c = config_lib.base_config()  # data: the offline digits (28x28x1, 10 classes)
    c.eval.vgg16_weights = vgg_weights
    c.eval.vgg16_layers = "conv1_1,conv1_2,conv3_2,conv4_2"  # Image2StyleGAN's layers
    c.eval.judge_distance_steps = 20
    return c


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def all_distances(config, workdir):
    return {name: distances.get(name, config, workdir, image_shape=SHAPE[1:])
            for name in distances.names()}


def test_names():
    assert distances.names() == ("mse", "l1", "ssim", "ms_ssim", "vgg", "judge")
    assert distances.FEATURE_DISTANCES == ("vgg", "judge")


def test_zero_for_identical_positive_otherwise(all_distances):
    a, b = _pair(SHAPE)
    for name, distance in all_distances.items():
        same = np.asarray(jax.jit(distance)(a, a))
        other = np.asarray(jax.jit(distance)(a, b))
        assert same.shape == other.shape == (SHAPE[0],), name
        np.testing.assert_allclose(same, 0.0, atol=1e-6, err_msg=name)
        assert np.all(other > 1e-4), (name, other)


def test_pixel_distances_against_numpy():
    a, b = _pair((4, 9, 7, 3), seed=1)
    mse = distances.get("mse", image_shape=(9, 7, 3))(a, b)
    l1 = distances.get("l1", image_shape=(9, 7, 3))(a, b)
    d = (a.astype(np.float64) - b).reshape(4, -1)
    np.testing.assert_allclose(mse, np.mean(d**2, axis=1), rtol=1e-6)
    np.testing.assert_allclose(l1, np.mean(np.abs(d), axis=1), rtol=1e-6)


@pytest.mark.parametrize("shape, window, scales", [
    ((3, 28, 28, 1), 11, 2),  # digits
    ((2, 48, 48, 1), 11, 3),  # FER2013 faces
    ((2, 64, 64, 3), 11, 3),  # CelebA at 64 px
    ((2, 9, 10, 1), 9, 1),  # under 11 px: the largest odd window that fits
])
def test_ssim_and_ms_ssim_against_tensorflow(shape, window, scales):
    tf = pytest.importorskip("tensorflow")
    tf.config.set_visible_devices([], "GPU")
    a, b = _pair(shape, seed=sum(shape))
    factors = ssim_lib.ms_ssim_power_factors(scales)
    assert len(factors) == scales and abs(sum(factors) - 1) < 1e-6
    ssim = distances.get("ssim", image_shape=shape[1:])(a, b)
    ms_ssim = distances.get("ms_ssim", image_shape=shape[1:])(a, b)
    expected_ssim = 1 - tf.image.ssim(a, b, max_val=2.0, filter_size=window).numpy()
    expected_ms = 1 - tf.image.ssim_multiscale(
        a, b, max_val=2.0, power_factors=factors, filter_size=window).numpy()
    np.testing.assert_allclose(ssim, expected_ssim, atol=SSIM_ATOL)
    np.testing.assert_allclose(ms_ssim, expected_ms, atol=SSIM_ATOL)


def test_gradients_are_finite(all_distances):
    """jax.grad of each distance with respect to the images, at different and at identical
    images (ms_ssim at 28x28 included: its clipped terms must not give NaN)."""
    a, b = _pair(SHAPE, seed=2)
    for name, distance in all_distances.items():
        grad = jax.jit(jax.grad(lambda x, y: jnp.sum(distance(x, y))))  # one compilation
        g, g_same = np.asarray(grad(a, b)), np.asarray(grad(a, a))
        assert g.shape == a.shape and np.all(np.isfinite(g)) and np.any(g != 0), name
        assert np.all(np.isfinite(g_same)), name


@pytest.mark.parametrize("name", ["vgg", "judge"])
def test_feature_distance_under_jit_and_scan(all_distances, name):
    """As the latent recovery job uses it: gradient steps on the images inside `lax.scan`
    under `jax.jit`, the feature network closed over as constant weights."""
    distance = all_distances[name]
    target, start = _pair(SHAPE, seed=3, noise=0.5)

    @jax.jit
    def descend(x):
        def step(x, _):
            value, grad = jax.value_and_grad(lambda x: jnp.sum(distance(x, target)))(x)
            return x - 0.02 * grad / (jnp.abs(grad).max() + 1e-12), value
        return jax.lax.scan(step, x, None, length=5)

    x, values = descend(start)
    assert np.all(np.isfinite(values)) and values[-1] < values[0], (name, values)


def test_vgg_distance_formula(config, vgg_weights):
    """sum_l w_l mean_elements (phi_l(a) - phi_l(b))^2 per example, plus the pixel term."""
    c = config.copy_and_resolve_references()
    c.eval.vgg16_layers, c.eval.vgg16_layer_weights = "conv1_2, conv4_3", "0.5,2"
    c.eval.vgg16_pixel_weight = 3.0
    a, b = _pair((2, 16, 16, 3), seed=4)
    got = distances.get("vgg", c, None, image_shape=(16, 16, 3))(a, b)
    fa, fb = (vgg.feature_fn(vgg.load_variables(vgg_weights), ("conv1_2", "conv4_3"))(x) for x in (a, b))
    expected = sum(w * np.mean((np.asarray(x, np.float64) - np.asarray(y)) ** 2, axis=(1, 2, 3))
                   for w, x, y in zip((0.5, 2.0), fa, fb))
    expected += 3.0 * np.mean((a.astype(np.float64) - b) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_vgg_config_errors(config):
    c = config.copy_and_resolve_references()
    c.eval.vgg16_layer_weights = "1,2"
    with pytest.raises(ConfigError, match="2 weights for 4 layers"):
        distances.get("vgg", c, None, image_shape=(28, 28, 1))
    c.eval.vgg16_layer_weights = "1,x"
    with pytest.raises(ConfigError, match="comma-separated numbers"):
        distances.get("vgg", c, None, image_shape=(28, 28, 1))
    c.eval.vgg16_layer_weights, c.eval.vgg16_layers = "", "conv4_3,conv5_3"
    with pytest.raises(ConfigError, match="at least 16 px.*vgg16_resize"):
        distances.get("vgg", c, None, image_shape=(12, 12, 1))
    c.eval.vgg16_resize = 32  # resized up first: fits
    assert distances.get("vgg", c, None, image_shape=(12, 12, 1))(
        *_pair((1, 12, 12, 1))).shape == (1,)
    c.eval.vgg16_layers = "pool4"
    with pytest.raises(ConfigError, match="eval.vgg16_layers.*pool4"):
        distances.get("vgg", c, None, image_shape=(28, 28, 1))


def test_judge_distance(config, workdir, all_distances, monkeypatch):
    """The mean squared difference of the judge's 128 penultimate features; the judge is the
    one cached in <workdir>/judges/ (the evaluators' cache), loaded again without training."""
    base = os.path.join(workdir, "judges", "judge_label")
    assert os.path.isfile(base + ".msgpack") and os.path.isfile(base + ".json")
    judge = judges.load_or_train(os.path.join(workdir, "judges"), config.data, "label",
                                 seed=config.seed, steps=20, progress=False)
    a, b = _pair(SHAPE, seed=5)
    fa, fb = judge.features(a).astype(np.float64), judge.features(b)
    assert fa.shape == (3, 128)
    np.testing.assert_allclose(all_distances["judge"](a, b), np.mean((fa - fb) ** 2, axis=1),
                               rtol=1e-4, atol=1e-7)

    monkeypatch.setattr(judges, "train_judge", lambda *a, **k: pytest.fail("not cached"))
    c = config.copy_and_resolve_references()
    c.eval.judge_distance_pixel_weight = 2.0
    with_pixels = distances.get("judge", c, workdir, image_shape=SHAPE[1:])(a, b)
    np.testing.assert_allclose(
        with_pixels, np.mean((fa - fb) ** 2, axis=1) + 2.0 * np.mean((a - b) ** 2, axis=(1, 2, 3)),
        rtol=1e-4)
    with pytest.raises(ConfigError, match=r"data's shape \(28, 28, 1\).*\(32, 32, 1\)"):
        distances.get("judge", c, workdir, image_shape=(32, 32, 1))
    with pytest.raises(ValueError, match="workdir"):
        distances.get("judge", c, None, image_shape=SHAPE[1:])


def test_unknown_name_and_missing_config():
    with pytest.raises(ValueError, match=r"unknown distance 'lpips'.*'mse'.*'vgg', 'judge'"):
        distances.get("lpips", image_shape=(28, 28, 1))
    for name in distances.FEATURE_DISTANCES:
        with pytest.raises(ValueError, match="needs the run's config"):
            distances.get(name, None, None, image_shape=(28, 28, 1))
