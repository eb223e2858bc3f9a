"""DCGAN generator and discriminator (Radford et al. 2015), with the knobs of reports 003/004.

Pure Flax modules: no losses, no optimizers. Every architecture switch of the report 003 tuning
study is an attribute (batch norm in D, dropout in D, spectral normalisation, linear vs sigmoid
output, depth and width), and conditioning on class labels follows report 004: the one-hot label
goes through a dense layer, is reshaped to a one-channel map and concatenated to the feature map
(G) or to the image (D).

With `image_size=64, channels=3, width=64` both networks are exactly the classic PyTorch DCGAN
(G: 100 -> 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x64 -> 64x64x3; D the mirror image).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from ganjax.models.layers import DownConv, UpConv, dcgan_init, maybe_spectral_norm

Array = jax.Array


def generator_plan(image_size: int) -> tuple[int, int]:
    """(base spatial size, number of 2x up-samplings) with base * 2**n == image_size.

    The base is the smallest of 4..7 that reaches the size: 64 -> (4, 4), 32 -> (4, 3),
    28 -> (7, 2), 48 -> (6, 3).
    """
    for n in range(1, 8):
        base, rest = divmod(image_size, 2**n)
        if rest == 0 and 3 <= base <= 7:
            return base, n
    raise ValueError(
        f"DCGAN generator cannot reach image_size={image_size} by doubling a 3..7 px base; "
        "use a size such as 28, 32, 48 or 64."
    )


def _batch_norm(train: bool, name: str | None = None) -> nn.BatchNorm:
    # PyTorch defaults (momentum 0.1 -> flax 0.9, eps 1e-5), gamma ~ N(1, 0.02) as in DCGAN.
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=0.9,
        epsilon=1e-5,
        scale_init=lambda k, s, d=jnp.float32: 1.0 + 0.02 * jax.random.normal(k, s, d),
        name=name,
    )


def label_map(labels: Array, num_classes: int, height: int, width: int) -> Array:
    """One-hot label -> Dense(height * width) -> [N, height, width, 1] (report 004)."""
    onehot = jax.nn.one_hot(labels, num_classes)
    return nn.Dense(height * width, kernel_init=dcgan_init(), name="label_dense")(onehot).reshape(
        -1, height, width, 1
    )


class Generator(nn.Module):
    """z [N, z_dim] (and labels [N]) -> images [N, S, S, channels] in [-1, 1].

    Attributes:
      image_size, channels: output shape.
      width: channels of the last hidden layer (ngf); the base layer has width * 2**(n-1).
      num_classes: 0 for an unconditional generator.
      batch_norm: batch norm after every hidden layer.
      conv_impl: "fast" or "native" (see `layers.UpConv`); identical maps.
      hidden: size of a dense layer (+ BN, ReLU) before the projection to the base map
        (InfoGAN's FC 1024); 0 for none.
      label_input: where the label enters: "map" (report 004: a dense projection to one
        channel of the base map) or "input" (the one-hot label concatenated with z before the
        first dense layer, as Mirza & Osindero's cGAN and Odena et al.'s ACGAN).
    """

    image_size: int = 64
    channels: int = 3
    width: int = 64
    num_classes: int = 0
    batch_norm: bool = True
    conv_impl: str = "fast"
    hidden: int = 0
    label_input: str = "map"

    @nn.compact
    def __call__(self, z: Array, labels: Array | None = None, train: bool = True) -> Array:
        base, n_up = generator_plan(self.image_size)
        c0 = self.width * 2 ** (n_up - 1)
        if self.num_classes and self.label_input == "input":
            z = jnp.concatenate([z, jax.nn.one_hot(labels, self.num_classes, dtype=z.dtype)], axis=-1)
        if self.hidden:
            z = nn.Dense(self.hidden, use_bias=not self.batch_norm, kernel_init=dcgan_init(), name="hidden")(z)
            if self.batch_norm:
                z = _batch_norm(train, name="hidden_bn")(z)
            z = nn.relu(z)
        h = nn.Dense(base * base * c0, use_bias=not self.batch_norm, kernel_init=dcgan_init())(z)
        h = h.reshape(-1, base, base, c0)
        if self.num_classes and self.label_input == "map":
            h = jnp.concatenate([h, label_map(labels, self.num_classes, base, base)], axis=-1)
        for i in range(n_up):
            if self.batch_norm:
                h = _batch_norm(train)(h)
            h = nn.relu(h)
            last = i == n_up - 1
            features = self.channels if last else c0 // 2 ** (i + 1)
            h = UpConv(features, impl=self.conv_impl, use_bias=last or not self.batch_norm)(h)
        return jnp.tanh(h)


class Discriminator(nn.Module):
    """images [N, S, S, C] (and labels [N]) -> {"score": [N], head: [N, n] ...}.

    Attributes:
      width: channels of the first conv (ndf); layer i has width * 2**i.
      depth: number of stride-2 4x4 convs (None: down to a 4..7 px map, as the generator).
      num_classes: 0 for an unconditional discriminator.
      batch_norm: batch norm after every conv but the first (Radford et al.).
      dropout: dropout rate after every conv (0 disables).
      spectral_norm: spectral normalisation of every conv and dense kernel (Miyato et al.).
      output: "linear" (a raw score) or "sigmoid" (the score squashed to (0, 1) before the loss:
        report 003's bounded output, i.e. Keras' sigmoid layer followed by a from-logits loss).
      conv_impl: "fast" or "native" (see `layers.DownConv`); identical maps.
      heads: extra dense heads on the last features, `(name, size)` pairs (e.g. ACGAN's
        `("aux", num_classes)`); each is an output of the dict, a Dense layer named `head_<name>`.
      hidden: size of a dense layer (+ BN if `batch_norm`, LeakyReLU 0.2) after the convs, whose
        output is the features every head reads (InfoGAN's FC 1024); 0 for none.
      head_hidden: each extra head gets its own dense layer of this size (+ BN, LeakyReLU 0.2)
        before its output, named `head_<name>_hidden` (InfoGAN's Q: FC 128); 0 for none.

    With `return_features=True` the dict also holds `features` [N, F], the features the heads
    read (the flattened last map, or the `hidden` layer's output).
    """

    width: int = 64
    depth: int | None = None
    num_classes: int = 0
    batch_norm: bool = True
    dropout: float = 0.0
    spectral_norm: bool = False
    output: str = "linear"
    conv_impl: str = "fast"
    heads: tuple[tuple[str, int], ...] = ()
    hidden: int = 0
    head_hidden: int = 0

    @nn.compact
    def __call__(
        self,
        x: Array,
        labels: Array | None = None,
        train: bool = True,
        return_features: bool = False,
    ):
        if self.output not in ("linear", "sigmoid"):
            raise ValueError(f"Discriminator.output must be 'linear' or 'sigmoid', got {self.output!r}.")
        if self.num_classes:
            x = jnp.concatenate(
                [x, label_map(labels, self.num_classes, x.shape[1], x.shape[2])], axis=-1
            )
        depth = self.depth if self.depth is not None else generator_plan(x.shape[1])[1]
        h = x
        for i in range(depth):
            use_bn = self.batch_norm and i > 0
            conv = DownConv(self.width * 2**i, impl=self.conv_impl, use_bias=not self.batch_norm)
            h = maybe_spectral_norm(conv, self.spectral_norm)(h, update_stats=train)
            if use_bn:
                h = _batch_norm(train)(h)
            h = nn.leaky_relu(h, 0.2)
            if self.dropout:
                h = nn.Dropout(self.dropout, deterministic=not train)(h)
        features = h.reshape(h.shape[0], -1)
        if self.hidden:
            features = self._dense_block(features, self.hidden, "hidden", train)
        head = nn.Dense(1, kernel_init=dcgan_init(), name="head")
        score = maybe_spectral_norm(head, self.spectral_norm)(features, update_stats=train)[:, 0]
        if self.output == "sigmoid":
            score = jax.nn.sigmoid(score)
        out = {"score": score}
        for name, size in self.heads:
            h = features
            if self.head_hidden:
                h = self._dense_block(h, self.head_hidden, f"head_{name}_hidden", train)
            dense = nn.Dense(size, kernel_init=dcgan_init(), name=f"head_{name}")
            out[name] = maybe_spectral_norm(dense, self.spectral_norm)(h, update_stats=train)
        if return_features:
            out["features"] = features
        return out

    def _dense_block(self, x: Array, size: int, name: str, train: bool) -> Array:
        """Dense (+ BN) + LeakyReLU(0.2): InfoGAN's FC layers of D and Q."""
        dense = nn.Dense(size, use_bias=not self.batch_norm, kernel_init=dcgan_init(), name=name)
        x = maybe_spectral_norm(dense, self.spectral_norm)(x, update_stats=train)
        if self.batch_norm:
            x = _batch_norm(train, name=f"{name}_bn")(x)
        return nn.leaky_relu(x, 0.2)


# --------------------------------------------------------------------------------------------
# The architecture's config keys and builder (`ganjax.models` protocol).
# --------------------------------------------------------------------------------------------

_CONV_IMPLS = ("fast", "native")


def default_config() -> ml_collections.ConfigDict:
    """`config.model` for `arch=dcgan`: every architecture knob of the report 003 study."""
    c = ml_collections.ConfigDict()
    c.arch = "dcgan"
    c.conv_impl = "fast"  # fast (stride-1 forms, same maps) | native (XLA's strided convs)
    c.z_dim = 100  # noise size
    c.g_width = 64  # channels of G's last hidden layer (ngf)
    c.d_width = 64  # channels of D's first layer (ndf)
    c.d_depth = 0  # stride-2 convs in D; 0 = down to a 4..7 px map
    c.g_batch_norm = True
    c.d_batch_norm = True
    c.d_dropout = 0.0
    c.spectral_norm = False  # on every D layer (Miyato et al. 2018)
    c.d_output = "linear"  # linear | sigmoid (report 003)
    c.g_hidden = 0  # dense layer before G's base map (InfoGAN: 1024); 0 = none
    c.d_hidden = 0  # dense layer after D's convs, read by every head (InfoGAN: 1024); 0 = none
    c.head_hidden = 0  # each extra D head's own dense layer (InfoGAN's Q: 128); 0 = none
    c.g_label = "map"  # how G takes the label: map (report 004: dense -> one channel of the base map) | input (one-hot concatenated with z)
    return c


TINY = {"model.z_dim": 8, "model.g_width": 8, "model.d_width": 8}


def build_pair(model_config, image_shape, latent, d_heads=(), d_conditional=True):
    """(Generator, Discriminator) for images of `image_shape` and inputs described by `latent`.

    G takes the latent vector (`latent.dim` wide) and the class label; D takes the images and,
    if `d_conditional`, the label. Raises ValueError on a config this architecture cannot build.
    """
    mc = model_config
    if mc.conv_impl not in _CONV_IMPLS:
        raise ValueError(f"config.model.conv_impl must be one of {list(_CONV_IMPLS)}, got {mc.conv_impl!r}.")
    if not 0.0 <= mc.d_dropout < 1.0:
        raise ValueError(f"config.model.d_dropout must be in [0, 1), got {mc.d_dropout}.")
    if mc.g_label not in ("map", "input"):
        raise ValueError(f"config.model.g_label must be 'map' or 'input', got {mc.g_label!r}.")
    if mc.d_output not in ("linear", "sigmoid"):
        raise ValueError(f"config.model.d_output must be 'linear' or 'sigmoid', got {mc.d_output!r}.")
    if latent.num_attributes:
        raise ValueError("the dcgan architecture conditions on class labels, not attribute vectors.")
    height, width, channels = image_shape
    if height != width:
        raise ValueError(f"DCGAN needs square images, got {height}x{width}.")
    generator = Generator(
        image_size=height,
        channels=channels,
        width=mc.g_width,
        num_classes=latent.num_classes,
        batch_norm=mc.g_batch_norm,
        conv_impl=mc.conv_impl,
        hidden=mc.g_hidden,
        label_input=mc.g_label,
    )
    discriminator = Discriminator(
        width=mc.d_width,
        depth=mc.d_depth or None,
        num_classes=latent.num_classes if d_conditional else 0,
        batch_norm=mc.d_batch_norm,
        dropout=mc.d_dropout,
        spectral_norm=mc.spectral_norm,
        output=mc.d_output,
        conv_impl=mc.conv_impl,
        heads=tuple(d_heads),
        hidden=mc.d_hidden,
        head_hidden=mc.head_hidden,
    )
    return generator, discriminator
