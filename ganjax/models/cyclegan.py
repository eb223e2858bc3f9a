"""CycleGAN networks (Zhu et al. 2017; report 001, docs/references.md): ResNet-n generator and PatchGAN critic.

Pure Flax modules, after junyanz/pytorch-CycleGAN-and-pix2pix (`ResnetGenerator`,
`NLayerDiscriminator`) with instance normalisation (no affine parameters) and N(0, 0.02) weights:

* `ResnetGenerator`: reflect-pad 3, 7x7 conv (width), IN, ReLU; two stride-2 down-samplings
  (2*width, 4*width), IN, ReLU; `num_blocks` residual blocks (reflect-pad 1, 3x3 conv, IN, ReLU,
  reflect-pad 1, 3x3 conv, IN, + input); two 2x up-samplings (2*width, width), IN, ReLU;
  reflect-pad 3, 7x7 conv to the image channels, tanh. 48x48 -> 24 -> 12 -> 24 -> 48.
* `PatchDiscriminator` (the 70x70 PatchGAN for `num_layers=3`): 4x4 stride-2 convs with
  width, 2*width, 4*width channels (LeakyReLU 0.2, IN from the second on), a 4x4 stride-1 conv
  with 8*width channels, IN, LeakyReLU, and a 4x4 stride-1 conv to one score per patch. No
  sigmoid: the score is an LSGAN logit or a Wasserstein critic value. `features=True` also
  returns the last feature layer (the input of the final conv), report 001's f_D.

`sampling` chooses the generator's resampling layers: "k4" (default) uses the 4x4 stride-2
`DownConv` / `UpConv` of `layers.py` (same output sizes as the reference); "k3" is the
reference's exact form, `Conv2d(k=3, s=2, p=1)` and `ConvTranspose2d(k=3, s=2, p=1,
output_padding=1)`, computed by the same fast 4x4 forms with a zero fourth tap. Convolutions
followed by instance norm have no bias (the norm removes it); stride-1 convolutions pad
explicitly and go through `layers.conv_valid` (Winograd for the 3x3 residual convolutions,
shifted sums for the one-channel output / score layers: the fast exact forms on CPU).
"""

from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganjax.models.layers import (
    DownConv, StridedConv, UpConv, conv_4x4_s2_fast, conv_transpose_4x4_s2_phase, conv_valid,
    dcgan_init,
)

Array = jax.Array
SAMPLINGS = ("k4", "k3")


def _instance_norm(name: str | None = None) -> nn.InstanceNorm:
    """PyTorch `InstanceNorm2d(affine=False)`: per example and channel, eps 1e-5."""
    return nn.InstanceNorm(epsilon=1e-5, use_scale=False, use_bias=False, name=name)


class PaddedConv(nn.Module):
    """Stride-1 k x k convolution with explicit padding ("reflect" or "constant" zeros)."""

    features: int
    kernel_size: int
    padding: int = 0
    pad_mode: str = "constant"
    use_bias: bool = True
    impl: str = "fast"  # fast: `layers.conv_valid` (fast exact forms) | native: XLA's conv

    @nn.compact
    def __call__(self, x: Array) -> Array:
        k = self.kernel_size
        kernel = self.param("kernel", dcgan_init(), (k, k, x.shape[-1], self.features))
        if self.padding:
            p = self.padding
            x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode=self.pad_mode)
        if self.impl == "fast":
            y = conv_valid(x, kernel.astype(x.dtype))
        else:
            y = jax.lax.conv_general_dilated(
                x, kernel.astype(x.dtype), (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
            )
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(x.dtype)
        return y


def _pad_to_4x4(kernel: Array) -> Array:
    """[3, 3, i, o] -> [4, 4, i, o] with zero last taps. For stride 2 and padding 1 the 4x4
    (transposed) convolution with this kernel is exactly the 3x3 one: both sum x[2i - 1 + k] w[k]
    (resp. scatter to 2i - 1 + k) over the taps, the fourth tap adds zero, and the output sides
    agree (H/2 for the convolution; 2H for the transposed one, whose 3x3 form needs
    output_padding=1 to get there)."""
    return jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))


def _down3_native(x: Array, kernel: Array) -> Array:
    return jax.lax.conv_general_dilated(
        x, kernel, (2, 2), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _up3_native(x: Array, kernel: Array) -> Array:
    """An lhs-dilated convolution with the flipped kernel and padding
    (k - 1 - p, k - 1 - p + output_padding) = (1, 2)."""
    return jax.lax.conv_general_dilated(
        x, kernel[::-1, ::-1], (1, 1), ((1, 2), (1, 2)), lhs_dilation=(2, 2),
        dimension_numbers=("NHWC", "HWIO", "NHWC"))


class DownConv3(StridedConv):
    """PyTorch `Conv2d(c_in, features, 3, stride=2, padding=1)`, even input sides. "fast":
    `conv_4x4_s2_fast` of `_pad_to_4x4(kernel)`; "native": XLA's strided convolution."""

    kernel_size: ClassVar[int] = 3
    forms: ClassVar[dict] = {
        "fast": lambda x, k: conv_4x4_s2_fast(x, _pad_to_4x4(k)), "native": _down3_native}


class UpConv3(StridedConv):
    """PyTorch `ConvTranspose2d(c_in, features, 3, stride=2, padding=1, output_padding=1)`:
    H -> 2H. "fast": the phase form `conv_transpose_4x4_s2_phase` of `_pad_to_4x4(kernel)`;
    "native": `_up3_native`."""

    kernel_size: ClassVar[int] = 3
    forms: ClassVar[dict] = {
        "fast": lambda x, k: conv_transpose_4x4_s2_phase(x, _pad_to_4x4(k)), "native": _up3_native}


class ResidualBlock(nn.Module):
    features: int
    impl: str = "fast"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        y = PaddedConv(self.features, 3, 1, "reflect", use_bias=False, impl=self.impl)(x)
        y = nn.relu(_instance_norm()(y))
        y = PaddedConv(self.features, 3, 1, "reflect", use_bias=False, impl=self.impl)(y)
        return x + _instance_norm()(y)


class ResnetGenerator(nn.Module):
    """Image -> image of the same shape, in [-1, 1] (see the module docstring).

    Attributes:
      channels: output image channels.
      width: channels of the first layer (ngf, 64 in the reference).
      num_blocks: residual blocks (6 for 128 px and smaller in the reference, 9 for 256 px).
      sampling: "k4" (UpConv / DownConv) or "k3" (the reference's 3x3 forms).
      conv_impl: "fast" (CPU-friendly equivalent forms) or "native" (XLA's ops), every conv.
    """

    channels: int
    width: int = 64
    num_blocks: int = 6
    sampling: str = "k4"
    conv_impl: str = "fast"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {self.sampling!r}.")
        if x.shape[1] % 4 or x.shape[2] % 4:
            raise ValueError(
                f"The ResNet generator down-samples twice: image sides must be multiples of 4, "
                f"got {x.shape[1]}x{x.shape[2]}."
            )
        h = PaddedConv(self.width, 7, 3, "reflect", use_bias=False, impl=self.conv_impl)(x)
        h = nn.relu(_instance_norm()(h))
        for i in range(2):
            f = self.width * 2 ** (i + 1)
            down = (DownConv if self.sampling == "k4" else DownConv3)(f, impl=self.conv_impl, use_bias=False)
            h = nn.relu(_instance_norm()(down(h)))
        for _ in range(self.num_blocks):
            h = ResidualBlock(self.width * 4, self.conv_impl)(h)
        for i in range(2):
            f = self.width * 2 ** (1 - i)
            up = (UpConv if self.sampling == "k4" else UpConv3)(f, impl=self.conv_impl, use_bias=False)
            h = nn.relu(_instance_norm()(up(h)))
        h = PaddedConv(self.channels, 7, 3, "reflect", use_bias=True, impl=self.conv_impl)(h)
        return jnp.tanh(h)


class PatchDiscriminator(nn.Module):
    """Image -> a map of patch scores [N, h, w, 1] (and the last features if asked).

    Attributes:
      width: channels of the first layer (ndf, 64 in the reference).
      num_layers: stride-2 convolutions (3: the 70x70 PatchGAN). At 48x48 the map is 4x4; the
        image must be at least 2**num_layers * 3 pixels wide for a non-empty map.
      conv_impl: "fast" or "native", every conv.
    """

    width: int = 64
    num_layers: int = 3
    conv_impl: str = "fast"

    @nn.compact
    def __call__(self, x: Array, features: bool = False):
        h = nn.leaky_relu(DownConv(self.width, impl=self.conv_impl)(x), 0.2)
        for i in range(1, self.num_layers):
            h = DownConv(self.width * min(2**i, 8), impl=self.conv_impl, use_bias=False)(h)
            h = nn.leaky_relu(_instance_norm()(h), 0.2)
        h = PaddedConv(self.width * min(2**self.num_layers, 8), 4, 1, use_bias=False, impl=self.conv_impl)(h)
        h = nn.leaky_relu(_instance_norm()(h), 0.2)
        score = PaddedConv(1, 4, 1, use_bias=True, impl=self.conv_impl)(h)
        return (score, h) if features else score
