"""SSIM / MS-SSIM against tf.image.ssim / tf.image.ssim_multiscale (the independent reference).

Tolerance: 1e-4 absolute on every value. Measured: <= 3e-7 on random images; up to 4e-5 on
structured images with flat regions, where sigma^2 = E[x^2] - mu^2 cancels in float32 -- that
is TF's own round-off (TF vs a float64 evaluation: 3.5e-5; ours vs float64: 2.5e-6).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax.metrics import ssim as ssim_lib

tf = pytest.importorskip("tensorflow")
tf.config.set_visible_devices([], "GPU")

ATOL = 1e-4


def _random_pair(shape, seed, noise=0.3):
    """Images in [-1, 1] (ganjax's range) and a correlated, noisy copy."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, shape).astype(np.float32)
    b = np.clip(a + noise * rng.normal(size=shape), -1, 1).astype(np.float32)
    return a, b


def _structured(shape):
    """Gradient, checkerboard, disc and stripes (one per batch entry, cycled), in [-1, 1]."""
    n, h, w, c = shape
    yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    patterns = [xx, np.where((np.arange(h)[:, None] // 4 + np.arange(w)[None] // 4) % 2, 1., -1.),
                np.where(xx**2 + yy**2 < 0.5, 0.8, -0.6), np.sin(6 * np.pi * yy)]
    images = np.stack([patterns[i % len(patterns)] for i in range(n)])
    images = np.repeat(images[..., None], c, axis=-1) * np.linspace(1.0, 0.7, c)
    return images.astype(np.float32)


def _structured_pair(shape):
    a = _structured(shape)
    b = np.clip(0.8 * np.roll(a, shift=(2, 1), axis=(1, 2)) + 0.1, -1, 1)  # shift, contrast, bias
    return a, b.astype(np.float32)


def _tf_ssim(a, b, **kw):
    return tf.image.ssim(a, b, max_val=2.0, **kw).numpy()


def _tf_ms_ssim(a, b, **kw):
    return tf.image.ssim_multiscale(a, b, max_val=2.0, **kw).numpy()


@pytest.mark.parametrize("shape", [(3, 32, 32, 1), (2, 33, 27, 3), (2, 48, 48, 1)])
@pytest.mark.parametrize("kind", ["random", "structured"])
def test_ssim_matches_tensorflow(shape, kind):
    a, b = _random_pair(shape, seed=sum(shape)) if kind == "random" else _structured_pair(shape)
    got = np.asarray(ssim_lib.ssim(a, b, max_val=2.0))
    expected = _tf_ssim(a, b)
    assert got.shape == (shape[0],)
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)
    # Non-default window and constants.
    kw = dict(filter_size=7, filter_sigma=1.0, k1=0.02, k2=0.05)
    np.testing.assert_allclose(ssim_lib.ssim(a, b, max_val=2.0, **kw), _tf_ssim(a, b, **kw),
                               rtol=0, atol=ATOL)


def test_ssim_closed_form_values():
    a, _ = _random_pair((2, 16, 16, 3), seed=0)
    np.testing.assert_allclose(ssim_lib.ssim(a, a, 2.0), 1.0, atol=1e-6)  # identical -> 1
    # Constant image vs itself shifted by d: cs = 1, l = (2m(m+d) + C1) / (m^2 + (m+d)^2 + C1).
    m, d, c1 = 0.2, 0.3, (0.01 * 2.0)**2
    x = np.full((1, 16, 16, 1), m, np.float32)
    expected = (2 * m * (m + d) + c1) / (m**2 + (m + d)**2 + c1)
    np.testing.assert_allclose(ssim_lib.ssim(x, x + d, 2.0), [expected], rtol=0, atol=ATOL)


@pytest.mark.parametrize("kind", ["random", "structured"])
@pytest.mark.parametrize("shape", [(2, 176, 176, 1), (2, 181, 167, 3)])  # odd sizes: padding
def test_ms_ssim_five_scales_matches_tensorflow(shape, kind):
    a, b = _random_pair(shape, seed=1) if kind == "random" else _structured_pair(shape)
    got = np.asarray(ssim_lib.ms_ssim(a, b, max_val=2.0))
    np.testing.assert_allclose(got, _tf_ms_ssim(a, b), rtol=0, atol=ATOL)


@pytest.mark.parametrize("shape,kw", [
    ((3, 48, 48, 1), dict(power_factors=ssim_lib.ms_ssim_power_factors(3))),      # FER
    ((2, 48, 48, 3), dict(power_factors=(0.2, 0.3, 0.5))),
    ((3, 28, 28, 1), dict(power_factors=ssim_lib.ms_ssim_power_factors(2))),      # MNIST
    ((3, 28, 28, 1), dict(power_factors=(0.3, 0.3, 0.4), filter_size=7, filter_sigma=1.0)),
    ((2, 64, 64, 3), dict(power_factors=ssim_lib.ms_ssim_power_factors(3))),
])
def test_ms_ssim_small_images_matches_tensorflow(shape, kw):
    for a, b in (_random_pair(shape, seed=2, noise=0.1), _structured_pair(shape)):
        got = np.asarray(ssim_lib.ms_ssim(a, b, max_val=2.0, **kw))
        np.testing.assert_allclose(got, _tf_ms_ssim(a, b, **kw), rtol=0, atol=ATOL)
        assert np.all(got > 0)  # a value test, not 0 == 0


def test_ms_ssim_clipped_terms_match_tensorflow_and_have_finite_gradients():
    # Anti-correlated images: negative contrast-structure terms are clipped to 0, as in TF.
    a, _ = _random_pair((2, 48, 48, 1), seed=3)
    b = -a
    kw = dict(power_factors=ssim_lib.ms_ssim_power_factors(3))
    got = np.asarray(ssim_lib.ms_ssim(a, b, 2.0, **kw))
    np.testing.assert_allclose(got, _tf_ms_ssim(a, b, **kw), rtol=0, atol=ATOL)
    assert np.all(got == 0.0)
    grad = jax.grad(lambda x: jnp.sum(ssim_lib.ms_ssim(x, b, 2.0, **kw)))(a)
    assert np.all(np.isfinite(grad))  # TF's pow gives NaN here; ours gives 0


def test_jit_grad_and_leading_dimensions():
    a, b = _random_pair((2, 3, 32, 32, 3), seed=4)
    kw = dict(power_factors=(0.5, 0.5))
    got = jax.jit(lambda x, y: ssim_lib.ms_ssim(x, y, 2.0, **kw))(a, b)
    assert got.shape == (2, 3)
    flat = _tf_ms_ssim(a.reshape(6, 32, 32, 3), b.reshape(6, 32, 32, 3), **kw)
    np.testing.assert_allclose(np.asarray(got).reshape(6), flat, rtol=0, atol=ATOL)
    # Gradient against a central finite difference (float64 off; loose 1e-2 relative).
    f = lambda x: jnp.sum(ssim_lib.ssim(x, b[0], 2.0))  # noqa: E731
    g = jax.jit(jax.grad(f))(a[0])
    direction = np.random.default_rng(5).normal(size=a[0].shape).astype(np.float32)
    eps = 1e-2
    fd = (f(a[0] + eps * direction) - f(a[0] - eps * direction)) / (2 * eps)
    np.testing.assert_allclose(float(jnp.vdot(g, direction)), float(fd), rtol=1e-2)


def test_integer_images_equal_rescaled_float_images():
    # SSIM is invariant to scaling images and max_val together (not to shifting them).
    rng = np.random.default_rng(6)
    a = rng.integers(0, 256, (2, 24, 24, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (2, 24, 24, 3), dtype=np.uint8)
    np.testing.assert_allclose(ssim_lib.ssim(a, b, 255),
                               ssim_lib.ssim(a / 255, b / 255, 1.0), rtol=0, atol=1e-5)
    np.testing.assert_allclose(ssim_lib.ssim(a, b, 255),
                               tf.image.ssim(a, b, max_val=255).numpy(), rtol=0, atol=ATOL)


def test_too_small_images_raise_clear_errors():
    a = np.zeros((1, 48, 48, 1), np.float32)
    with pytest.raises(ValueError, match=r"48x48.*3x3.*161x161.*ms_ssim_power_factors\(3\)"):
        ssim_lib.ms_ssim(a, a, 2.0)  # five default scales
    m = np.zeros((1, 28, 28, 1), np.float32)
    with pytest.raises(ValueError, match=r"28x28.*41x41.*filter_size <= 7"):
        ssim_lib.ms_ssim(m, m, 2.0, power_factors=ssim_lib.ms_ssim_power_factors(3))
    with pytest.raises(ValueError, match=r"8x8.*filter_size <= 8"):
        ssim_lib.ssim(np.zeros((1, 8, 8, 1)), np.zeros((1, 8, 8, 1)), 2.0)
    with pytest.raises(ValueError, match="same shape"):
        ssim_lib.ssim(np.zeros((1, 16, 16, 1)), np.zeros((1, 16, 16, 3)), 2.0)
    with pytest.raises(ValueError, match="power_factors"):
        ssim_lib.ms_ssim(a, a, 2.0, power_factors=())
    # TF fails on the same input too, only less clearly.
    with pytest.raises(tf.errors.InvalidArgumentError):
        _tf_ms_ssim(a, a)


def test_scale_helpers():
    assert [ssim_lib.max_num_scales(s) for s in (10, 28, 48, 64, 160, 161)] == [0, 2, 3, 3, 4, 5]
    assert ssim_lib.max_num_scales(28, filter_size=7) == 3
    assert ssim_lib.ms_ssim_power_factors(5) == ssim_lib.MS_SSIM_POWER_FACTORS
    factors = ssim_lib.ms_ssim_power_factors(3)
    np.testing.assert_allclose(sum(factors), 1.0)
    np.testing.assert_allclose(factors[1] / factors[0], 0.2856 / 0.0448)
