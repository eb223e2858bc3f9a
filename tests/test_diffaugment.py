"""DiffAugment: each transformation against its closed form, its gradient, and the GAN step with it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import diffaugment, gans
from ganjax.config import apply_variant, base_config
from ganjax.data.core import DataInfo
from ganjax.errors import ConfigError


def _dot(n=6, size=16):
    """n images with one bright pixel each (1.0) on a -1 ground, away from the border."""
    x = -np.ones((n, size, size, 1), np.float32)
    x[:, 8, 7] = 1.0
    return jnp.asarray(x)


def test_translation_is_an_integer_shift_with_zeros_coming_in():
    x = _dot(64)
    out = np.asarray(diffaugment.translation(x, jax.random.PRNGKey(0)))  # r = round(16 / 8) = 2
    shifts = set()
    for image in out[..., 0]:
        (y,), (xx,) = np.nonzero(image == 1.0)
        assert abs(y - 8) <= 2 and abs(xx - 7) <= 2
        shifts.add((y - 8, xx - 7))
        # What came in from outside is 0, the rest of the ground is still -1.
        assert set(np.unique(image).tolist()) <= {-1.0, 0.0, 1.0}
        zero_rows = np.all(image == 0.0, axis=1).sum()
        zero_cols = np.all(image == 0.0, axis=0).sum()
        assert zero_rows == abs(y - 8) and zero_cols == abs(xx - 7)
    assert len(shifts) > 10  # every image draws its own shift (25 possible)


def test_cutout_zeroes_one_square_of_half_the_size_and_passes_gradients():
    x = jnp.full((32, 16, 16, 1), 0.5)
    key = jax.random.PRNGKey(1)
    out = np.asarray(diffaugment.cutout(x, key))
    for image in out[..., 0]:
        rows, cols = np.nonzero(image == 0.0)
        assert rows.max() - rows.min() + 1 <= 8 and cols.max() - cols.min() + 1 <= 8
        assert len(rows) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # a rectangle
    assert max(np.sum(o == 0.0) for o in out) == 64  # an 8x8 square when it lies inside
    grad = np.asarray(jax.grad(lambda v: diffaugment.cutout(v, key).sum())(x))
    np.testing.assert_array_equal(grad, (out != 0.0).astype(np.float32))  # d out / d x = the mask


def test_color_matches_its_closed_form():
    x = jax.random.uniform(jax.random.PRNGKey(2), (4, 8, 8, 3), minval=-1, maxval=1)
    key = jax.random.PRNGKey(3)
    out = np.asarray(diffaugment.color(x, key))
    kb, ks, kc = jax.random.split(key, 3)
    b, s, c = (np.asarray(jax.random.uniform(k, (4, 1, 1, 1))) for k in (kb, ks, kc))
    y = np.asarray(x, np.float64) + (b - 0.5)
    m = y.mean(axis=3, keepdims=True)
    y = (y - m) * (2 * s) + m
    m = y.mean(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(out, (y - m) * (c + 0.5) + m, atol=1e-5)


def test_policy_parsing_and_the_gan_step_with_diff_augment():
    assert diffaugment.parse_policy("translation, cutout") == ("translation", "cutout")
    assert diffaugment.parse_policy("") == ()
    x = _dot(2)
    np.testing.assert_array_equal(diffaugment.diff_augment(x, jax.random.PRNGKey(0), ()), x)
    config = apply_variant(base_config("acgan", arch="dcgan"), "tiny")
    config.model.conv_impl = "native"
    info = DataInfo("digits", (16, 16, 1), 10, tuple("0123456789"), 100)
    config.gan.diff_augment = "translation,flip"
    with pytest.raises(ConfigError, match="unknown policy 'flip'"):
        gans.create(config, info)
    config.gan.diff_augment = "color,translation,cutout"
    gan = gans.create(config, info)
    state = gan.init_state(jax.random.PRNGKey(0))
    new, metrics = jax.jit(gan.train_step)(state, gan.example_batch(jax.random.PRNGKey(1), 8))
    assert all(np.isfinite(v) for v in jax.device_get(metrics).values())
    # D saw augmented images: its loss differs from the same step without DiffAugment.
    config.gan.diff_augment = ""
    plain = gans.create(config, info)
    _, plain_metrics = jax.jit(plain.train_step)(state, plain.example_batch(jax.random.PRNGKey(1), 8))
    assert float(metrics["d_loss"]) != float(plain_metrics["d_loss"])
