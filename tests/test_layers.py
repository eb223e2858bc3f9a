"""The stride-1 forms of the DCGAN up/down-sampling layers compute exactly the textbook maps.

Reference: a brute-force numpy loop of PyTorch's ConvTranspose2d / Conv2d (k=4, s=2, p=1).
Tolerances: float32 sums of <= 4*4*16 products of N(0,1) values, so |error| <= 1e-4.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax.models import layers, winograd
from ganjax.models.dcgan import Discriminator, Generator


def numpy_conv_transpose(x, w):
    """y[2m - 1 + kh, 2n - 1 + kw] += x[m, n] @ w[kh, kw], output 2H x 2W (PyTorch
    ConvTranspose2d, stride 2, padding 1; output_padding 1 for a 3x3 kernel, 0 for 4x4)."""
    n, h, wd, _ = x.shape
    k = w.shape[0]
    y = np.zeros((n, 2 * h + 2, 2 * wd + 2, w.shape[-1]))
    for m in range(h):
        for q in range(wd):
            for kh in range(k):
                for kw in range(k):
                    y[:, 2 * m + kh, 2 * q + kw] += x[:, m, q] @ w[kh, kw]
    return y[:, 1 : 1 + 2 * h, 1 : 1 + 2 * wd]


def numpy_conv(x, w):
    """y[o, p] = sum_k x_pad[2o + kh, 2p + kw] @ w[kh, kw] (PyTorch Conv2d, stride 2, pad 1)."""
    k = w.shape[0]
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    ho, wo = (x.shape[1] + 2 - k) // 2 + 1, (x.shape[2] + 2 - k) // 2 + 1
    y = np.zeros((x.shape[0], ho, wo, w.shape[-1]))
    for o in range(ho):
        for p in range(wo):
            patch = xp[:, 2 * o : 2 * o + k, 2 * p : 2 * p + k]
            y[:, o, p] = np.einsum("nhwc,hwcd->nd", patch, w)
    return y


@pytest.mark.parametrize("shape", [(2, 5, 7, 3), (1, 4, 4, 6)])
def test_up_conv_forms_match_pytorch_semantics(shape):
    kx, kw = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(kx, shape)
    w = jax.random.normal(kw, (4, 4, shape[-1], 5))
    expected = numpy_conv_transpose(np.asarray(x, np.float64), np.asarray(w, np.float64))
    for fn in (layers.conv_transpose_4x4_s2, layers.conv_transpose_4x4_s2_phase):
        np.testing.assert_allclose(fn(x, w), expected, atol=1e-4)


@pytest.mark.parametrize("shape", [(2, 8, 6, 3), (1, 4, 4, 5)])
def test_down_conv_forms_match_pytorch_semantics(shape):
    kx, kw = jax.random.split(jax.random.PRNGKey(1))
    x = jax.random.normal(kx, shape)
    w = jax.random.normal(kw, (4, 4, shape[-1], 7))
    expected = numpy_conv(np.asarray(x, np.float64), np.asarray(w, np.float64))
    for fn in (layers.conv_4x4_s2, layers.conv_4x4_s2_fast):
        np.testing.assert_allclose(fn(x, w), expected, atol=1e-4)


@pytest.mark.parametrize("conv,kernel_shape", [
    (layers.conv_valid_gemm_grad, (2, 2, 4, 6)),
    (layers.conv_valid_shift_add, (2, 2, 4, 6)),
    (layers.conv_valid_shift_add, (3, 2, 4, 1)),
    (winograd.conv3x3, (3, 3, 4, 6)),
    (layers.conv_valid, (2, 3, 4, 1)),  # dispatches to shift-add
    (layers.conv_valid, (2, 2, 4, 9)),  # to gemm-grad
    (layers.conv_valid, (3, 3, 4, 9)),  # to Winograd
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_custom_conv_gradients_match_autodiff_of_lax_conv(conv, kernel_shape):
    """Each stride-1 form's hand-written backward pass (matrix products, shifted pads,
    Winograd transforms) equals lax's gradients, also for a second derivative (as a gradient
    penalty takes)."""
    kx, kw, kg = jax.random.split(jax.random.PRNGKey(2), 3)
    x = jax.random.normal(kx, (3, 6, 8, 4))
    w = jax.random.normal(kw, kernel_shape)
    kh, kwid, _, c_out = kernel_shape
    g = jax.random.normal(kg, (3, 7 - kh, 9 - kwid, c_out))

    def lax_conv(x, w):
        return jax.lax.conv_general_dilated(x, w, (1, 1), "VALID",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    y = lax_conv(x, w)  # |y| ~ 10: atol 5e-5 is ~5 float32 ulps (Winograd F(4x4) rounding)
    np.testing.assert_allclose(conv(x, w), y, atol=5e-5)
    ours = jax.grad(lambda x, w: jnp.sum(conv(x, w) * g), argnums=(0, 1))(x, w)
    ref = jax.grad(lambda x, w: jnp.sum(lax_conv(x, w) * g), argnums=(0, 1))(x, w)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, atol=1e-4)

    def penalty(conv):
        # ||d/dx sum(conv(x, w)^2)||^2, differentiated w.r.t. w: reverse over reverse.
        gx = lambda w: jax.grad(lambda x: jnp.sum(conv(x, w) ** 2))(x)
        return jax.grad(lambda w: jnp.sum(gx(w) ** 2))(w)

    ref = penalty(lax_conv)  # entries up to ~5e5: atol relative to the largest
    np.testing.assert_allclose(penalty(conv), ref, rtol=1e-4, atol=1e-6 * float(jnp.abs(ref).max()))


@pytest.mark.parametrize("x_shape,tile", [
    ((2, 14, 14, 16), 4),  # 12x12 output: F(4x4), whole tiles
    ((2, 10, 6, 5), 4),  # 8x4
    ((2, 6, 8, 5), 2),  # 4x6: F(2x2), whole tiles
    ((2, 9, 9, 3), 2),  # 7x7: F(2x2), padded to 8x8 and cropped
    ((2, 4, 5, 3), 2),  # 2x3: padded to 2x4
])
def test_winograd_tile_sizes_match_lax_conv(x_shape, tile):
    """F(4x4, 3x3) and F(2x2, 3x3), whole or padded tiles, against lax.conv: values and both
    gradients (the input gradient runs on the rotated, padded dy with its own tile size).
    Tolerance: relative 1e-5 of the largest entry (the F(4x4) transforms scale by up to 8 and
    1/24; float32 rounding stays below that here)."""
    kx, kw, kg = jax.random.split(jax.random.PRNGKey(5), 3)
    x = jax.random.normal(kx, x_shape)
    w = jax.random.normal(kw, (3, 3, x_shape[-1], 12))
    assert winograd._tile_size(x_shape[1] - 2, x_shape[2] - 2) == tile
    lax_conv = lambda x, w: jax.lax.conv_general_dilated(
        x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    y = lax_conv(x, w)
    g = jax.random.normal(kg, y.shape)
    rel = lambda a, b: float(jnp.abs(a - b).max() / jnp.abs(b).max())
    assert rel(winograd.conv3x3(x, w), y) < 1e-5
    ours = jax.vjp(winograd.conv3x3, x, w)[1](g)
    ref = jax.vjp(lax_conv, x, w)[1](g)
    for a, b in zip(ours, ref):
        assert a.shape == b.shape and rel(a, b) < 1e-5


def test_winograd_rejects_what_it_cannot_compute():
    with pytest.raises(ValueError, match="3x3 kernel and an input of at least 3x3"):
        winograd.conv3x3(jnp.zeros((1, 2, 8, 1)), jnp.zeros((3, 3, 1, 1)))
    with pytest.raises(ValueError, match="3x3 kernel"):
        winograd.conv3x3(jnp.zeros((1, 8, 8, 1)), jnp.zeros((2, 2, 1, 1)))


@pytest.mark.parametrize("image_size,channels", [(28, 1), (64, 3)])
def test_fast_and_native_models_are_the_same_function(image_size, channels):
    """Same parameters, same outputs and gradients, whichever conv implementation runs."""
    z = jax.random.normal(jax.random.PRNGKey(3), (4, 16))
    labels = jnp.arange(4) % 3
    kw = dict(image_size=image_size, channels=channels, width=8, num_classes=3)
    g_fast, g_native = Generator(conv_impl="fast", **kw), Generator(conv_impl="native", **kw)
    variables = g_fast.init(jax.random.PRNGKey(4), z, labels, train=False)
    out_fast = g_fast.apply(variables, z, labels, train=False)
    out_native = g_native.apply(variables, z, labels, train=False)
    assert out_fast.shape == (4, image_size, image_size, channels)
    np.testing.assert_allclose(out_fast, out_native, atol=1e-5)

    d_kw = dict(width=8, num_classes=3, batch_norm=False)
    d_fast = Discriminator(conv_impl="fast", **d_kw)
    d_native = Discriminator(conv_impl="native", **d_kw)
    d_vars = d_fast.init(jax.random.PRNGKey(5), out_fast, labels, train=False)

    def d_loss(model, params, x):
        return jnp.sum(model.apply({"params": params}, x, labels, train=False)["score"] ** 2)

    for argnum in (1, 2):
        gf = jax.grad(lambda p, x: d_loss(d_fast, p, x), argnums=argnum - 1)(d_vars["params"], out_fast)
        gn = jax.grad(lambda p, x: d_loss(d_native, p, x), argnums=argnum - 1)(d_vars["params"], out_fast)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), gf, gn)


def test_radford_dcgan64_has_the_classic_parameter_count():
    """G 3,576,704 and D 2,765,568 parameters as PyTorch's DCGAN tutorial (ngf = ndf = 64),
    counting BN scale/shift; ours adds no biases where BN follows."""
    g = Generator(image_size=64, channels=3, width=64)
    d = Discriminator(width=64)
    gv = jax.eval_shape(lambda k: g.init(k, jnp.zeros((1, 100)), train=False), jax.random.PRNGKey(0))
    dv = jax.eval_shape(lambda k: d.init(k, jnp.zeros((1, 64, 64, 3)), train=False), jax.random.PRNGKey(0))
    count = lambda v: sum(x.size for x in jax.tree.leaves(v["params"]))
    assert count(gv) == 3_576_704 + 3  # + the output layer's bias (PyTorch's has none)
    assert count(dv) == 2_765_568 + 1  # + the head's bias
