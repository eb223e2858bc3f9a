"""Shared layers: the DCGAN up/down-sampling convolutions in two exactly equivalent forms.

The classic DCGAN (Radford et al. 2015) up-samples with a transposed convolution of kernel 4,
stride 2, padding 1 (PyTorch's `ConvTranspose2d(c_in, c_out, 4, 2, 1)`) and down-samples with
`Conv2d(c_in, c_out, 4, 2, 1)`. On XLA's CPU backend the kernel gradient of a transposed
convolution (and the input gradient of a strided one) is several times slower than a plain
stride-1 convolution, so each layer also has an exactly equivalent form, selected by `impl`,
whose slow parts are stride-1 convolutions and matrix products:

* `UpConv(impl="fast")`: sub-pixel / phase decomposition. Output pixel (2i + a, 2j + b) only
  sees kernel taps of one parity, so the layer is one 2x2 stride-1 convolution producing
  4 * c_out channels (one group per phase (a, b)), followed by a depth-to-space shuffle.
* `DownConv(impl="fast")`: the forward pass is XLA's strided convolution, but its input
  gradient (a stride-2 transposed convolution) goes through the phase form above.

Both keep the parameter `kernel` in the native [4, 4, c_in, c_out] layout, so checkpoints do not
depend on `impl` and the two forms can be compared on the same parameters (tests/test_layers.py).
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganjax.models import winograd

Array = jax.Array
Initializer = Callable[..., Array]

_DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")

# For the 2x up-sampling transposed conv (k=4, s=2, p=1): output row 2i + a receives input row
# m through tap k = 2 (i - m) + a + 1. Phase a = 0 reads rows (i - 1, i) through taps (3, 1);
# phase a = 1 reads rows (i, i + 1) through taps (2, 0).
_PHASE_TAPS = ((3, 1), (2, 0))


def dcgan_init(stddev: float = 0.02) -> Initializer:
    """N(0, stddev) weights, as in Radford et al. 2015 and the reference implementations."""
    return nn.initializers.normal(stddev)


def _conv_valid(x: Array, kernel: Array) -> Array:
    return jax.lax.conv_general_dilated(
        x, kernel, window_strides=(1, 1), padding="VALID", dimension_numbers=_DIMENSION_NUMBERS
    )


# Below this many output channels `conv_valid` uses the shift-and-add form.
NARROW_OUTPUT_CHANNELS = 8


def conv_valid(x: Array, kernel: Array) -> Array:
    """Stride-1 VALID convolution (NHWC, HWIO) in the fastest exact form for XLA's CPU backend.

    Narrow outputs (c_out < `NARROW_OUTPUT_CHANNELS`, e.g. an image or a patch-score layer)
    use `conv_valid_shift_add`; 3x3 kernels with even output sides `winograd.conv3x3`; all
    others `conv_valid_gemm_grad`. Same values up to float rounding, twice differentiable
    (WGAN-GP differentiates a gradient). benchmarks/conv_forms.py times each form.
    """
    if kernel.shape[-1] < NARROW_OUTPUT_CHANNELS:
        return conv_valid_shift_add(x, kernel)
    if winograd.supported(x.shape, kernel.shape):
        return winograd.conv3x3(x, kernel)
    return conv_valid_gemm_grad(x, kernel)


@jax.custom_vjp
def conv_valid_shift_add(x: Array, kernel: Array) -> Array:
    """Stride-1 VALID convolution as one matrix product followed by shifted sums.

    Forward: z = x @ K, a 1x1 convolution to kh * kw * c_out channels with
    K[c, (dh, dw, o)] = k[dh, dw, c, o]; then y[n, i, j, o] = sum_{dh, dw} z[n, i + dh, j + dw,
    (dh, dw, o)]. Backward: dz[n, h, w, (dh, dw, o)] = dy[n, h - dh, w - dw, o] (zero outside),
    one concatenation of shifted pads, then dx = dz @ K^T and dK = x^T @ dz. XLA's CPU
    convolution is ~20x slower than this when c_out is 1 (a 64 -> 1 7x7 layer, batch 8 at
    48x48: 105 ms forward vs ~1 ms). Twice differentiable: the backward rule is plain JAX.
    """
    return _shift_add_forward(x, kernel)


def _tap_matrix(kernel: Array) -> Array:
    kh, kw, c_in, c_out = kernel.shape
    return kernel.transpose(2, 0, 1, 3).reshape(c_in, kh * kw * c_out)


def _shift_add_forward(x: Array, kernel: Array) -> Array:
    kh, kw, _, c_out = kernel.shape
    ho, wo = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    z = jnp.einsum("nhwc,cd->nhwd", x, _tap_matrix(kernel))
    z = z.reshape(*z.shape[:3], kh * kw, c_out)
    taps = [z[:, dh : dh + ho, dw : dw + wo, dh * kw + dw] for dh in range(kh) for dw in range(kw)]
    return sum(taps[1:], taps[0])


def _shift_add_fwd(x, kernel):
    return _shift_add_forward(x, kernel), (x, kernel)


def _shift_add_bwd(residuals, dy):
    x, kernel = residuals
    kh, kw, c_in, c_out = kernel.shape
    dz = jnp.concatenate([
        jnp.pad(dy, ((0, 0), (dh, kh - 1 - dh), (dw, kw - 1 - dw), (0, 0)))
        for dh in range(kh) for dw in range(kw)
    ], axis=3)
    dx = jnp.einsum("nhwd,cd->nhwc", dz, _tap_matrix(kernel))
    dk = jnp.einsum("nhwc,nhwd->cd", x, dz).reshape(c_in, kh, kw, c_out).transpose(1, 2, 0, 3)
    return dx, dk


conv_valid_shift_add.defvjp(_shift_add_fwd, _shift_add_bwd)


@jax.custom_vjp
def conv_valid_gemm_grad(x: Array, kernel: Array) -> Array:
    """Stride-1 VALID convolution (NHWC, HWIO) whose kernel gradient is one matrix product.

    Forward and input gradient are XLA's own convolutions. The kernel gradient
    dK[(dh, dw, c), o] = sum_{n,i,j} x[n, i + dh, j + dw, c] dy[n, i, j, o] is computed as
    im2col(x)^T @ dy, which XLA's CPU backend runs ~10x faster than the convolution it emits
    for `lax.conv`'s kernel gradient. Same values up to float rounding; twice differentiable
    (the backward rule is plain JAX), as WGAN-GP needs.
    """
    return _conv_valid(x, kernel)


def _conv_valid_fwd(x, kernel):
    return _conv_valid(x, kernel), (x, kernel)


def _conv_valid_bwd(residuals, dy):
    x, kernel = residuals
    kh, kw, c_in, c_out = kernel.shape
    _, vjp_x = jax.vjp(lambda x_: _conv_valid(x_, kernel), x)
    (dx,) = vjp_x(dy)
    ho, wo = dy.shape[1], dy.shape[2]
    dk = jnp.stack([
        jnp.einsum("nhwc,nhwd->cd", x[:, dh : dh + ho, dw : dw + wo], dy)
        for dh in range(kh) for dw in range(kw)
    ]).reshape(kernel.shape)
    return dx, dk


conv_valid_gemm_grad.defvjp(_conv_valid_fwd, _conv_valid_bwd)



def conv_transpose_4x4_s2(x: Array, kernel: Array) -> Array:
    """PyTorch `conv_transpose2d(x, w, stride=2, padding=1)` for a 4x4 kernel, via lhs dilation.

    y[2i + a] = sum_m sum_k x[m] w[k] over 2m - 1 + k = 2i + a. `kernel` is [4, 4, c_in, c_out].
    """
    return jax.lax.conv_general_dilated(
        x,
        kernel[::-1, ::-1],
        window_strides=(1, 1),
        padding=((2, 2), (2, 2)),
        lhs_dilation=(2, 2),
        dimension_numbers=_DIMENSION_NUMBERS,
    )


def phase_kernel(kernel: Array) -> Array:
    """Maps a [4, 4, c_in, c_out] transposed-conv kernel to the [2, 2, c_in, 4 * c_out] kernel
    of the phase decomposition; output channel group a * 2 + b holds phase (a, b)."""
    rows = []
    for taps_h in _PHASE_TAPS:
        cols = []
        for taps_w in _PHASE_TAPS:
            sub = kernel[jnp.array(taps_h)][:, jnp.array(taps_w)]  # [2, 2, c_in, c_out]
            cols.append(sub)
        rows.append(cols)
    # [2(a), 2(b), 2(dh), 2(dw), c_in, c_out] -> [dh, dw, c_in, a, b, c_out]
    stacked = jnp.stack([jnp.stack(c) for c in rows])
    c_in, c_out = kernel.shape[2], kernel.shape[3]
    return stacked.transpose(2, 3, 4, 0, 1, 5).reshape(2, 2, c_in, 4 * c_out)


def conv_transpose_4x4_s2_phase(x: Array, kernel: Array) -> Array:
    """The same map as `conv_transpose_4x4_s2`, from one stride-1 2x2 convolution.

    A 2x2 convolution with padding 1 gives, at position p, the window of input rows (p - 1, p):
    phase a = 0 is read at p = i, phase a = 1 at p = i + 1. Each phase (a, b) is the crop
    out[a:a + H, b:b + W] of its channel group; interleaving the phases gives [N, 2H, 2W, c_out].
    """
    n, h, w, _ = x.shape
    c_out = kernel.shape[-1]
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = conv_valid(xp, phase_kernel(kernel))  # [N, H + 1, W + 1, 4 * c_out]
    out = out.reshape(n, h + 1, w + 1, 2, 2, c_out)
    phases = [[out[:, a : a + h, b : b + w, a, b] for b in range(2)] for a in range(2)]
    # [a, b, N, H, W, C] -> [N, H, a, W, b, C] -> [N, 2H, 2W, C]
    y = jnp.stack([jnp.stack(row) for row in phases])
    return y.transpose(2, 3, 0, 4, 1, 5).reshape(n, 2 * h, 2 * w, c_out)


def conv_4x4_s2(x: Array, kernel: Array) -> Array:
    """PyTorch `conv2d(x, w, stride=2, padding=1)` for a 4x4 kernel (cross-correlation)."""
    return jax.lax.conv_general_dilated(
        x, kernel, window_strides=(2, 2), padding=((1, 1), (1, 1)),
        dimension_numbers=_DIMENSION_NUMBERS,
    )


def conv_4x4_s2_fast(x: Array, kernel: Array) -> Array:
    """`conv_4x4_s2` with a faster input gradient on CPU; the same values.

    The input gradient of a stride-2 4x4 convolution with padding 1 is the stride-2 transposed
    convolution of dy with the in/out-swapped kernel, dx = conv_transpose_4x4_s2(dy, w^T), which
    the phase form computes with stride-1 convolutions only (XLA's own input gradient is an
    lhs-dilated convolution, ~4x slower on CPU). Forward and kernel gradient are XLA's. Odd
    input sizes (where that identity needs an extra row) use `conv_4x4_s2` as it is.
    """
    if x.shape[1] % 2 or x.shape[2] % 2:
        return conv_4x4_s2(x, kernel)
    return _conv_4x4_s2_even(x, kernel)


@jax.custom_vjp
def _conv_4x4_s2_even(x: Array, kernel: Array) -> Array:
    return conv_4x4_s2(x, kernel)


def _conv_4x4_s2_fwd(x, kernel):
    return conv_4x4_s2(x, kernel), (x, kernel)


def _conv_4x4_s2_bwd(residuals, dy):
    x, kernel = residuals
    _, vjp_kernel = jax.vjp(lambda k: conv_4x4_s2(x, k), kernel)
    (dk,) = vjp_kernel(dy)
    return conv_transpose_4x4_s2_phase(dy, kernel.transpose(0, 1, 3, 2)), dk


_conv_4x4_s2_even.defvjp(_conv_4x4_s2_fwd, _conv_4x4_s2_bwd)


class StridedConv(nn.Module):
    """A stride-2 (transposed) convolution with parameter `kernel` [k, k, c_in, features],
    k = `kernel_size`; subclasses name their forms (`impl` -> function of (x, kernel)).

    Attributes:
      features: output channels.
      impl: "fast" (the CPU-friendly equivalent form) or "native" (XLA's textbook op).
      use_bias: add a bias (DCGAN layers followed by batch norm use none).
    """

    features: int
    impl: str = "fast"
    use_bias: bool = True
    kernel_init: Initializer = dcgan_init()
    forms: ClassVar[dict[str, Callable[[Array, Array], Array]]] = {}
    kernel_size: ClassVar[int] = 4

    @nn.compact
    def __call__(self, x: Array) -> Array:
        if self.impl not in self.forms:
            raise ValueError(
                f"{type(self).__name__}.impl must be one of {sorted(self.forms)}, got {self.impl!r}."
            )
        k = self.kernel_size
        kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features))
        y = self.forms[self.impl](x, kernel.astype(x.dtype))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(x.dtype)
        return y


class UpConv(StridedConv):
    """2x up-sampling: PyTorch `ConvTranspose2d(c_in, features, 4, stride=2, padding=1)`;
    "fast" is the phase form (`conv_transpose_4x4_s2_phase`)."""

    forms: ClassVar[dict] = {"fast": conv_transpose_4x4_s2_phase, "native": conv_transpose_4x4_s2}


class DownConv(StridedConv):
    """2x down-sampling: PyTorch `Conv2d(c_in, features, 4, stride=2, padding=1)`;
    "fast" routes the input gradient through the phase form (`conv_4x4_s2_fast`)."""

    forms: ClassVar[dict] = {"fast": conv_4x4_s2_fast, "native": conv_4x4_s2}


def maybe_spectral_norm(layer: nn.Module, enabled: bool) -> Any:
    """Wraps `layer` in `nn.SpectralNorm` (Miyato et al. 2018) when `enabled`.

    Returns a callable `f(x, update_stats)`; the power-iteration vectors live in the
    `batch_stats` collection, so they are updated only in training steps.
    """
    if enabled:
        sn = nn.SpectralNorm(layer)
        return lambda x, update_stats: sn(x, update_stats=update_stats)
    return lambda x, update_stats: layer(x)
