"""The ResNet generator and discriminator of the ACGAN / WACGAN report (ACGAN on CelebA's 40 attributes).

Pure Flax modules, selected by `config.model.arch="resnet"`; the same protocol as `dcgan.py`
(`default_config()`, `TINY`, `build_pair`). The report's networks are PyTorch-GAN's ACGAN with
its convolutions replaced by residual blocks:

* `Generator`: (latent vector z [N, dim], condition) -> images [N, S, S, C] in [-1, 1].
  The condition (the one-hot label, or the multi-hot attribute vector; nothing when
  unconditional) is concatenated to z *before* the dense layer (the report: "noise through a
  dense layer, concatenated with the label"; here concat(z, condition) -> Dense -> reshape to a
  base x base x `g_width` map -> BN). Then per up-sampling stage: nearest-neighbour 2x
  up-sampling and `blocks_per_stage` `ResBlock`s (conv3x3, BN, LeakyReLU(0.2), conv3x3, BN,
  + skip, LeakyReLU(0.2); the skip is a 1x1 conv exactly when the channel count changes).
  Stage i has max(g_width // 2**i, min(g_width, 16)) channels: the first stage keeps
  `g_width` (PyTorch-GAN's 128 at 14x14, then 64 at 28x28), each later one halves it, never
  below 16. A final conv3x3 to C channels and tanh. The base and the number of stages are
  `dcgan.generator_plan(S)`: the report's two stages from a 7x7 map at 28 px; a 4x4 map and
  four stages at 64 px (PyTorch-GAN's img_size // 4 base would make the dense layer 16x as wide
  there: 16 * 16 * 128 outputs).
* `Discriminator`: (images, condition) -> {"score": [N], <head>: [N, size], ...}. One
  `DownBlock` per entry of `d_widths` (conv3x3, LeakyReLU(0.2), conv3x3, 2x2 average pool;
  skip: 2x2 average pool, then a 1x1 conv exactly when the channel count changes; sum,
  LeakyReLU(0.2), dropout, BN if `d_batch_norm` and not the first block: PyTorch-GAN's
  block order), then flatten -> "score" Dense(1) (named `head`) and one Dense per head
  (`head_<name>`). The last map is ceil(S / 2**len(d_widths)) px: 2x2x128 at 28 px, 4x4x128 at
  64 px. Odd sides are pooled with the edge row / column repeated (7 -> 4, as a stride-2 pad-1
  conv would give).

Choices to know:

* BatchNorm is flax momentum 0.9, epsilon 1e-5 (`BN_MOMENTUM`, `BN_EPSILON`: PyTorch's
  defaults, momentum 0.1 in its convention), gamma ~ N(1, 0.02) (DCGAN's `weights_init_normal`,
  which PyTorch-GAN's ACGAN applies). The report's table lists "BatchNorm 0.8": that is
  PyTorch-GAN's `nn.BatchNorm2d(c, 0.8)` slip, whose second positional argument is `eps`, not
  the momentum; we do not copy it.
* D has no batch norm by default (`d_batch_norm=False`): ACGAN's D runs separate real and fake
  batches, so BN normalises each with its own statistics (and the running averages mix both),
  which lets D tell real from fake by batch statistics rather than per image and blurs the class
  head's features between the two; WGAN-GP's penalty is also defined per example.
* Kernels are N(0, 0.02) (`layers.dcgan_init`), biases zero. Convolutions followed by BN have
  no bias (BN's beta replaces it), nor have the 1x1 skip projections (the main path's bias or
  beta already shifts the sum).
* Every convolution is a stride-1 `nn.Conv` ("SAME" zero padding); down-sampling is average
  pooling and up-sampling nearest-neighbour repetition, so no strided or transposed
  convolution (whose XLA gradient is slow on CPU) is used. `config.model.conv_impl` is
  therefore validated ("fast" | "native", the key every architecture has) but builds the same
  network either way. (`layers.conv_valid`'s Winograd form was tried for the 3x3 convolutions:
  not consistently faster than XLA's stride-1 convolution for G's 64..128-channel layers on a
  2-core CPU, and ~2.5x slower for D's narrow ones.)
* `spectral_norm=True` wraps every conv and dense layer of D (the heads included) in
  `nn.SpectralNorm` (`layers.maybe_spectral_norm`); the conditioning embedding of a
  conditional D (`dcgan.label_map`, below) is not normalised, as in `dcgan.py`.
* A conditional D (`d_conditional=True`, cGAN-style; ACGAN passes False: its D predicts the
  condition with its `aux` head) gets the condition as one more image channel, as `dcgan.py`
  does: a label through `dcgan.label_map` (one-hot -> Dense(H * W)), an attribute vector
  through `attribute_map` (Dense(H * W) of the float vector), each reshaped to [N, H, W, 1].
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from ganjax.models.dcgan import generator_plan, label_map
from ganjax.models.layers import dcgan_init, maybe_spectral_norm

Array = jax.Array

BN_MOMENTUM = 0.9  # flax convention: running = 0.9 * running + 0.1 * batch (PyTorch momentum 0.1)
BN_EPSILON = 1e-5  # PyTorch's default (not PyTorch-GAN's BatchNorm2d(c, 0.8) slip)
LEAK = 0.2  # LeakyReLU slope everywhere
MIN_G_CHANNELS = 16  # floor of the generator's per-stage channel halving

CONV_IMPLS = ("fast", "native")


def make_batch_norm(train: bool, name: str | None = None) -> nn.BatchNorm:
    """BN with PyTorch's defaults (see the module docstring) and gamma ~ N(1, 0.02)."""
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        scale_init=lambda k, s, d=jnp.float32: 1.0 + 0.02 * jax.random.normal(k, s, d),
        name=name,
    )


def stage_channels(g_width: int, n_stages: int) -> tuple[int, ...]:
    """The generator's channels per up-sampling stage: g_width, g_width / 2, ... (floor 16)."""
    floor = min(g_width, MIN_G_CHANNELS)
    return tuple(max(g_width // 2**i, floor) for i in range(n_stages))


def attribute_map(attributes: Array, height: int, width: int) -> Array:
    """Attribute vector [N, A] (floats) -> Dense(height * width) -> [N, height, width, 1]."""
    return nn.Dense(height * width, kernel_init=dcgan_init(), name="attribute_dense")(
        attributes.astype(jnp.float32)
    ).reshape(-1, height, width, 1)


def upsample2x(x: Array) -> Array:
    """Nearest-neighbour 2x up-sampling: [N, H, W, C] -> [N, 2H, 2W, C]."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def avg_pool2x(x: Array) -> Array:
    """2x2 average pooling, stride 2: [N, H, W, C] -> [N, ceil(H/2), ceil(W/2), C].

    An odd side gets its last row (column) repeated first, so the last output averages that
    row alone (what `count_include_pad=False` pooling of a padded input gives)."""
    n, h, w, c = x.shape
    if h % 2 or w % 2:
        x = jnp.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        h, w = h + h % 2, w + w % 2
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def conv(features: int, kernel_size: int = 3, use_bias: bool = True, name: str | None = None) -> nn.Conv:
    """Stride-1 k x k `nn.Conv`, "SAME" zero padding, N(0, 0.02) kernel, zero bias."""
    return nn.Conv(
        features, (kernel_size, kernel_size), padding="SAME", use_bias=use_bias,
        kernel_init=dcgan_init(), name=name,
    )


class ResBlock(nn.Module):
    """The generator's residual block: conv3x3, BN, LeakyReLU(0.2), conv3x3, BN, + skip,
    LeakyReLU(0.2). The skip is a 1x1 conv (`skip`) exactly when the channels change."""

    features: int

    @nn.compact
    def __call__(self, x: Array, train: bool = True) -> Array:
        h = conv(self.features, 3, use_bias=False, name="conv1")(x)
        h = nn.leaky_relu(make_batch_norm(train, name="bn1")(h), LEAK)
        h = conv(self.features, 3, use_bias=False, name="conv2")(h)
        h = make_batch_norm(train, name="bn2")(h)
        skip = x
        if x.shape[-1] != self.features:
            skip = conv(self.features, 1, use_bias=False, name="skip")(x)
        return nn.leaky_relu(h + skip, LEAK)


class DownBlock(nn.Module):
    """The discriminator's residual down-sampling block (see the module docstring): main path
    conv3x3, LeakyReLU(0.2), conv3x3, avg-pool; skip avg-pool then a 1x1 conv (`skip`) exactly
    when the channels change; sum, LeakyReLU(0.2), dropout, optional BN."""

    features: int
    dropout: float = 0.0
    batch_norm: bool = False
    spectral_norm: bool = False

    @nn.compact
    def __call__(self, x: Array, train: bool = True) -> Array:
        sn = lambda layer, h: maybe_spectral_norm(layer, self.spectral_norm)(h, update_stats=train)
        h = sn(conv(self.features, 3, name="conv1"), x)
        h = nn.leaky_relu(h, LEAK)
        h = sn(conv(self.features, 3, name="conv2"), h)
        h = avg_pool2x(h)
        skip = avg_pool2x(x)
        if x.shape[-1] != self.features:
            skip = sn(conv(self.features, 1, use_bias=False, name="skip"), skip)
        h = nn.leaky_relu(h + skip, LEAK)
        if self.dropout:
            h = nn.Dropout(self.dropout, deterministic=not train)(h)
        if self.batch_norm:
            h = make_batch_norm(train, name="bn")(h)
        return h


class Generator(nn.Module):
    """z [N, dim] and the condition (labels [N] or attributes [N, A]) -> images in [-1, 1].

    Attributes:
      image_size, channels: output shape [S, S, channels].
      width: channels of the base map (`g_width`); stage i has `stage_channels(width, n)[i]`.
      blocks_per_stage: residual blocks after each 2x up-sampling.
      num_classes: > 0 for a label-conditional generator (the label is one-hot encoded).
      num_attributes: > 0 for an attribute-conditional one (the float vector as it is).
    """

    image_size: int = 28
    channels: int = 1
    width: int = 128
    blocks_per_stage: int = 2
    num_classes: int = 0
    num_attributes: int = 0

    @nn.compact
    def __call__(self, z: Array, condition: Array | None = None, train: bool = True) -> Array:
        base, n_up = generator_plan(self.image_size)
        h = z
        if self.num_classes:
            h = jnp.concatenate([h, jax.nn.one_hot(condition, self.num_classes, dtype=z.dtype)], -1)
        elif self.num_attributes:
            h = jnp.concatenate([h, condition.astype(z.dtype)], axis=-1)
        h = nn.Dense(base * base * self.width, use_bias=False, kernel_init=dcgan_init(), name="dense")(h)
        h = make_batch_norm(train, name="bn_base")(h.reshape(-1, base, base, self.width))
        for i, features in enumerate(stage_channels(self.width, n_up)):
            h = upsample2x(h)
            for j in range(self.blocks_per_stage):
                h = ResBlock(features, name=f"stage{i}_block{j}")(h, train)
        h = conv(self.channels, 3, name="to_image")(h)
        return jnp.tanh(h)


class Discriminator(nn.Module):
    """images [N, S, S, C] (and the condition) -> {"score": [N], head: [N, n] ...}.

    Attributes:
      widths: channels of each `DownBlock` (`d_widths`); each halves the sides.
      num_classes: > 0 for a label-conditional D (`dcgan.label_map` channel).
      num_attributes: > 0 for an attribute-conditional D (`attribute_map` channel).
      dropout: dropout rate after every block (0 disables).
      batch_norm: BN after every block but the first (off by default: see the module docstring).
      spectral_norm: spectral normalisation of every conv and dense kernel but the conditioning
        embedding.
      heads: extra dense heads on the flattened last map, `(name, size)` pairs (ACGAN's
        `("aux", num_classes)`); each an output of the dict, a Dense layer named `head_<name>`.

    With `return_features=True` the dict also holds `features` [N, F], the flattened last map.
    """

    widths: tuple[int, ...] = (16, 32, 64, 128)
    num_classes: int = 0
    num_attributes: int = 0
    dropout: float = 0.25
    batch_norm: bool = False
    spectral_norm: bool = False
    heads: tuple[tuple[str, int], ...] = ()

    @nn.compact
    def __call__(
        self,
        x: Array,
        condition: Array | None = None,
        train: bool = True,
        return_features: bool = False,
    ):
        height, width = x.shape[1], x.shape[2]
        if self.num_classes:
            x = jnp.concatenate([x, label_map(condition, self.num_classes, height, width)], axis=-1)
        elif self.num_attributes:
            x = jnp.concatenate([x, attribute_map(condition, height, width)], axis=-1)
        h = x
        for i, block_width in enumerate(self.widths):
            h = DownBlock(
                block_width,
                dropout=self.dropout,
                batch_norm=self.batch_norm and i > 0,
                spectral_norm=self.spectral_norm,
                name=f"block{i}",
            )(h, train)
        features = h.reshape(h.shape[0], -1)
        sn = lambda layer: maybe_spectral_norm(layer, self.spectral_norm)(features, update_stats=train)
        out = {"score": sn(nn.Dense(1, kernel_init=dcgan_init(), name="head"))[:, 0]}
        for name, size in self.heads:
            out[name] = sn(nn.Dense(size, kernel_init=dcgan_init(), name=f"head_{name}"))
        if return_features:
            out["features"] = features
        return out


# --------------------------------------------------------------------------------------------
# The architecture's config keys and builder (`ganjax.models` protocol).
# --------------------------------------------------------------------------------------------


def default_config() -> ml_collections.ConfigDict:
    """`config.model` for `arch=resnet`: the ACGAN / WACGAN report's residual networks."""
    c = ml_collections.ConfigDict()
    c.arch = "resnet"
    c.conv_impl = "fast"  # fast | native: the same network here (stride-1 convs only)
    c.z_dim = 100  # noise size
    c.g_width = 128  # channels of G's base map and first stage; later stages halve (floor 16)
    c.blocks_per_stage = 2  # G's residual blocks after each 2x up-sampling
    c.d_widths = (16, 32, 64, 128)  # channels of D's residual blocks, each halves the sides
    c.d_dropout = 0.25  # dropout after every D block, in [0, 1)
    c.d_batch_norm = False  # BN after D's blocks (but the first); off: real/fake batch stats mix
    c.spectral_norm = False  # on every D conv and dense layer (Miyato et al. 2018)
    return c


TINY = {"model.z_dim": 8, "model.g_width": 16, "model.d_widths": (8, 16), "model.blocks_per_stage": 1}


def build_pair(model_config, image_shape, latent, d_heads=(), d_conditional=True):
    """(Generator, Discriminator) for images of `image_shape` and inputs described by `latent`.

    G takes the latent vector (`latent.dim` wide) and the condition (a label when
    `latent.num_classes`, an attribute vector when `latent.num_attributes`); D takes the images
    and, if `d_conditional`, the same condition. Raises ValueError on a config this
    architecture cannot build.
    """
    mc = model_config
    if mc.conv_impl not in CONV_IMPLS:
        raise ValueError(f"config.model.conv_impl must be one of {list(CONV_IMPLS)}, got {mc.conv_impl!r}.")
    if not 0.0 <= mc.d_dropout < 1.0:
        raise ValueError(f"config.model.d_dropout must be in [0, 1), got {mc.d_dropout}.")
    if mc.g_width < 1:
        raise ValueError(f"config.model.g_width must be >= 1, got {mc.g_width}.")
    if mc.blocks_per_stage < 1:
        raise ValueError(f"config.model.blocks_per_stage must be >= 1, got {mc.blocks_per_stage}.")
    d_widths = tuple(int(w) for w in mc.d_widths)
    if not d_widths:
        raise ValueError("config.model.d_widths is empty; give D at least one block, e.g. (16, 32, 64, 128).")
    if min(d_widths) < 1:
        raise ValueError(f"config.model.d_widths must all be >= 1, got {d_widths}.")
    height, width, channels = image_shape
    if height != width:
        raise ValueError(
            f"the resnet architecture needs square images, got {height}x{width}: set "
            "config.data.image_size (or config.data.center_crop)."
        )
    try:
        generator_plan(height)
    except ValueError:
        raise ValueError(
            f"the resnet generator cannot reach {height} px by doubling a 3..7 px base; set "
            "config.data.image_size to a size such as 28, 32, 48 or 64."
        ) from None
    if height < 2 ** len(d_widths):
        raise ValueError(
            f"config.model.d_widths has {len(d_widths)} down-sampling blocks, which need images of "
            f"at least {2 ** len(d_widths)} px, got {height}: give fewer d_widths."
        )
    generator = Generator(
        image_size=height,
        channels=channels,
        width=mc.g_width,
        blocks_per_stage=mc.blocks_per_stage,
        num_classes=latent.num_classes,
        num_attributes=latent.num_attributes,
    )
    discriminator = Discriminator(
        widths=d_widths,
        num_classes=latent.num_classes if d_conditional else 0,
        num_attributes=latent.num_attributes if d_conditional else 0,
        dropout=mc.d_dropout,
        batch_norm=mc.d_batch_norm,
        spectral_norm=mc.spectral_norm,
        heads=tuple(d_heads),
    )
    return generator, discriminator
