"""BEGAN's networks (Berthelot et al. 2017; report 000, docs/references.md): G is a decoder, D an autoencoder.

Pure Flax modules, after the paper's Fig. 1 and `carpedm20/BEGAN-tensorflow`'s `models.py`:

* **decoder** (G, and the second half of D): h -> Dense(base * base * n) -> [base, base, n];
  per scale: two 3x3 convs with n channels and ELU, then 2x nearest-neighbour up-sampling
  (not after the last scale); a 3x3 conv to the image channels, linear (carpedm20; `output=
  linear`, the algorithm clips what it shows to [-1, 1]) or tanh (`output=tanh`).
* **encoder** (D's first half): a 3x3 conv with n channels and ELU; per scale i: two 3x3 convs
  with n (i + 1) channels and ELU, then (not after the last scale) a 2x down-sampling to
  n (i + 1) channels: a 3x3 stride-2 conv with ELU (`down=stride`, the paper's sub-sampling) or
  a 3x3 stride-1 conv with ELU and 2x2 average pooling (`down=pool`); the last map flattened ->
  Dense(h), linear: the embedding.
* D(x) returns `{"reconstruction": decoder(encoder(x)), "embedding": encoder(x)}` plus one dense
  output per `(name, size)` of `heads` read from the embedding (Info-BEGAN's Q head `q`), each
  after its own Dense(head_hidden) + ELU layer when `head_hidden` > 0.

The number of scales is `depth` (0: as many as halve the image side down to a 3..8 px base:
64 -> 8 px and 4 scales as in the paper, 128 -> 8 px and 5, 28 -> 7 px and 3, 32 -> 8 px and
3). No batch norm in D (the paper has none), so D's passes over real and generated images may
share one call; G may have it before every ELU (`model.g_batch_norm`, not the paper's: a
generator normalised per batch is the DCGAN family's guard against drawing one mode). Kernels
are Glorot-uniform (TF-slim's default, which carpedm20 uses; the N(0, 0.02) of DCGAN shrinks the
signal through a dozen ELU layers without normalisation), biases zero.

Every stride-1 3x3 convolution is zero-padded and is XLA's own (its CPU gradients are fine at
stride 1), but for the image layer, whose single output channel `conv_impl=fast` computes by
shifted sums (`layers.conv_valid_shift_add`); the stride-2 one is `cyclegan.DownConv3`
(PyTorch's `Conv2d(3, stride=2, padding=1)`, whose fast form avoids XLA's slow strided input
gradient). The two forms build the same map from the same parameters.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from ganjax.models.cyclegan import DownConv3
from ganjax.models.layers import NARROW_OUTPUT_CHANNELS, conv_valid_shift_add
from ganjax.models.resnet import avg_pool2x, upsample2x

Array = jax.Array

_INIT = nn.initializers.glorot_uniform()
_CONV_IMPLS = ("fast", "native")
_DOWNS = ("stride", "pool")
_OUTPUTS = ("linear", "tanh")


def began_plan(image_size: int, depth: int = 0) -> tuple[int, int]:
    """(base side, number of scales) with base * 2**(scales - 1) == image_size.

    `depth` > 0 fixes the number of scales (the side must halve that often); 0 takes the
    largest base of at most 8 px (the paper's 8x8) that halving reaches, at least 3 px.
    """
    if depth > 0:
        base, rest = divmod(image_size, 2 ** (depth - 1))
        if rest or base < 2:
            raise ValueError(
                f"config.model.depth={depth}: a {image_size} px side does not halve {depth - 1} "
                "times to a whole side of at least 2 px; choose a smaller depth (0 = automatic)."
            )
        return base, depth
    base, scales = image_size, 1
    while base > 8 and base % 2 == 0:
        base, scales = base // 2, scales + 1
    if not 3 <= base <= 8:
        raise ValueError(
            f"BEGAN cannot halve a {image_size} px side down to a 3..8 px base; use a size such as "
            "28, 32, 64 or 128, or set config.model.depth."
        )
    return base, scales


class Conv3x3(nn.Module):
    """Stride-1 3x3 convolution, zero padding 1 ("SAME"), Glorot-uniform kernel, zero bias.

    `impl="fast"` computes a layer with fewer than `layers.NARROW_OUTPUT_CHANNELS` outputs (the
    image layer) by `layers.conv_valid_shift_add`; every other layer is XLA's convolution
    (measured on a 2-core CPU for this network: Winograd's form compiled ~10x longer and ran no
    faster, as `resnet.py` found for its 3x3 layers).
    """

    features: int
    impl: str = "fast"  # fast | native (XLA's convolution everywhere)

    @nn.compact
    def __call__(self, x: Array) -> Array:
        kernel = self.param("kernel", _INIT, (3, 3, x.shape[-1], self.features)).astype(x.dtype)
        x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        if self.impl == "fast" and self.features < NARROW_OUTPUT_CHANNELS:
            y = conv_valid_shift_add(x, kernel)
        else:
            y = jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(x.dtype)


class Decoder(nn.Module):
    """h [N, D] -> images [N, S, S, channels] (BEGAN's G, and D's decoder).

    Attributes:
      image_size, channels: the output's shape.
      width: n, the channels of every conv.
      depth: scales (0: `began_plan`'s automatic choice).
      output: "linear" (carpedm20) or "tanh".
      conv_impl: "fast" or "native"; the same map.
      batch_norm: batch norm (PyTorch's momentum 0.1 and eps 1e-5, as the DCGAN family's) before
        every ELU: G's option (`model.g_batch_norm`), never D's decoder (its passes over real and
        generated images share one call). In training mode it uses the batch's statistics and
        updates the running ones (`mutable=["batch_stats"]`); `train=False` uses the running ones.
    """

    image_size: int = 64
    channels: int = 3
    width: int = 128
    depth: int = 0
    output: str = "linear"
    conv_impl: str = "fast"
    batch_norm: bool = False

    @nn.compact
    def __call__(self, h: Array, condition: Array | None = None, train: bool = True) -> Array:
        del condition  # unconditional

        def act(y):
            if self.batch_norm:
                y = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(y)
            return nn.elu(y)

        base, scales = began_plan(self.image_size, self.depth)
        x = nn.Dense(base * base * self.width, kernel_init=_INIT)(h).reshape(-1, base, base, self.width)
        if self.batch_norm:
            x = act(x)  # (the paper's linear projection, normalised when G is)
        for i in range(scales):
            x = act(Conv3x3(self.width, self.conv_impl)(x))
            x = act(Conv3x3(self.width, self.conv_impl)(x))
            if i < scales - 1:
                x = upsample2x(x)
        x = Conv3x3(self.channels, self.conv_impl)(x)
        return jnp.tanh(x) if self.output == "tanh" else x


class Encoder(nn.Module):
    """images [N, S, S, C] -> embedding [N, embedding] (D's first half).

    Attributes:
      width: n; scale i has n (i + 1) channels.
      embedding: N_h, the size of the embedding.
      depth: scales (0: `began_plan`'s automatic choice).
      down: "stride" (3x3 stride-2 conv) or "pool" (3x3 conv, 2x2 average pooling).
      conv_impl: "fast" or "native"; the same map.
    """

    width: int = 128
    embedding: int = 64
    depth: int = 0
    down: str = "stride"
    conv_impl: str = "fast"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        _, scales = began_plan(x.shape[1], self.depth)
        x = nn.elu(Conv3x3(self.width, self.conv_impl)(x))
        for i in range(scales):
            c = self.width * (i + 1)
            x = nn.elu(Conv3x3(c, self.conv_impl)(x))
            x = nn.elu(Conv3x3(c, self.conv_impl)(x))
            if i < scales - 1:
                if self.down == "stride":
                    x = nn.elu(DownConv3(c, impl=self.conv_impl, kernel_init=_INIT)(x))
                else:
                    x = avg_pool2x(nn.elu(Conv3x3(c, self.conv_impl)(x)))
        return nn.Dense(self.embedding, kernel_init=_INIT)(x.reshape(x.shape[0], -1))


class Autoencoder(nn.Module):
    """BEGAN's D: images [N, S, S, C] -> {"reconstruction": [N, S, S, C], "embedding": [N, h],
    head: [N, size] for each of `heads`} (see the module docstring)."""

    width: int = 128
    embedding: int = 64
    depth: int = 0
    down: str = "stride"
    output: str = "linear"
    conv_impl: str = "fast"
    heads: tuple[tuple[str, int], ...] = ()
    head_hidden: int = 0

    @nn.compact
    def __call__(self, x: Array, condition: Array | None = None, train: bool = True) -> dict:
        del condition, train
        h = Encoder(self.width, self.embedding, self.depth, self.down, self.conv_impl, name="encoder")(x)
        decoder = Decoder(x.shape[1], x.shape[-1], self.width, self.depth, self.output, self.conv_impl,
                          name="decoder")
        out = {"reconstruction": decoder(h), "embedding": h}
        for name, size in self.heads:
            y = h
            if self.head_hidden:
                y = nn.elu(nn.Dense(self.head_hidden, kernel_init=_INIT, name=f"head_{name}_hidden")(y))
            out[name] = nn.Dense(size, kernel_init=_INIT, name=f"head_{name}")(y)
        return out


# --------------------------------------------------------------------------------------------
# The architecture's config keys and builder (`ganjax.models` protocol).
# --------------------------------------------------------------------------------------------


def default_config() -> ml_collections.ConfigDict:
    """`config.model` for `arch=began`: the paper's N_z, N_h, n and scales."""
    c = ml_collections.ConfigDict()
    c.arch = "began"
    c.conv_impl = "fast"  # fast (stride-1 forms, same maps) | native (XLA's convs)
    c.z_dim = 64  # N_z, the noise size
    c.h_dim = 64  # N_h, D's embedding size
    c.width = 128  # n, the channels of every decoder conv (encoder scale i: n (i + 1))
    c.depth = 0  # scales; 0 = halve down to a 3..8 px base (64 px: 4 scales from 8x8)
    c.down = "stride"  # encoder down-sampling: stride (3x3 stride-2 conv, the paper) | pool (conv + 2x2 average pool)
    c.output = "linear"  # last layer of G and D's decoder: linear (carpedm20; samples clipped to [-1, 1]) | tanh
    c.g_batch_norm = False  # batch norm before every ELU of G (not the paper's; against G settling on one mode)
    c.head_hidden = 0  # each extra D head (Info-BEGAN's Q) gets its own Dense + ELU of this size; 0 = none
    return c


TINY = {"model.z_dim": 8, "model.h_dim": 8, "model.width": 8}


def build_pair(model_config, image_shape, latent, d_heads=(), d_conditional=True):
    """(G, D): G = `Decoder` of the latent vector, D = `Autoencoder` with `d_heads` on its
    embedding. BEGAN is unconditional: a latent with a label or attributes is a ValueError."""
    del d_conditional
    mc = model_config
    if mc.conv_impl not in _CONV_IMPLS:
        raise ValueError(f"config.model.conv_impl must be one of {list(_CONV_IMPLS)}, got {mc.conv_impl!r}.")
    if mc.down not in _DOWNS:
        raise ValueError(f"config.model.down must be one of {list(_DOWNS)}, got {mc.down!r}.")
    if mc.output not in _OUTPUTS:
        raise ValueError(f"config.model.output must be one of {list(_OUTPUTS)}, got {mc.output!r}.")
    if min(mc.z_dim, mc.h_dim, mc.width) < 1 or mc.depth < 0 or mc.head_hidden < 0:
        raise ValueError("config.model z_dim, h_dim and width must be >= 1, depth and head_hidden >= 0.")
    if latent.conditional:
        raise ValueError("the began architecture is unconditional: it takes no class label or attribute vector.")
    height, width, channels = image_shape
    if height != width:
        raise ValueError(f"BEGAN needs square images, got {height}x{width}.")
    began_plan(height, mc.depth)  # a ValueError now rather than at init
    generator = Decoder(height, channels, mc.width, mc.depth, mc.output, mc.conv_impl, bool(mc.g_batch_norm))
    discriminator = Autoencoder(mc.width, mc.h_dim, mc.depth, mc.down, mc.output, mc.conv_impl,
                                tuple(d_heads), mc.head_hidden)
    return generator, discriminator
