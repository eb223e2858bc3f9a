"""The predictor: image -> latent vector, the generator's inverse (report 000's separate
predictor; docs/references.md).

Shaped like the DCGAN generator in reverse, i.e. like its discriminator with a latent head:

    x [N, S, S, C] -> `depth` x (4x4 stride-2 conv, [BN (not after the first)], LeakyReLU 0.2)
                   -> flatten -> [Dense(hidden), [BN], LeakyReLU 0.2] -> Dense(latent_dim)

(BN is optional and off in the predictor's defaults, `gans/predictor.py`.)

The output is the raw latent vector [N, latent_dim] in `LatentSpec`'s layout: z, then one block
of logits per categorical code, then the continuous codes (`LatentSpec.split` cuts it). The
strided convolutions are `layers.DownConv`, whose "fast" form computes the input gradient with
stride-1 convolutions only (XLA's CPU backend is several times slower on the native form's).
Pure Flax: no losses, no optimizer; the training algorithm is `ganjax/gans/predictor.py`.
"""

from __future__ import annotations

import flax.linen as nn
import jax

from ganjax.models.dcgan import _batch_norm as batch_norm, generator_plan
from ganjax.models.layers import DownConv, dcgan_init

Array = jax.Array


class Predictor(nn.Module):
    """images [N, S, S, C] in [-1, 1] -> latent vector [N, latent_dim] (z, categorical logits,
    continuous codes).

    Attributes:
      latent_dim: outputs (`LatentSpec.dim` of the generator to invert).
      width: channels of the first conv; conv i has width * 2**i.
      depth: stride-2 convs (None: down to a 3..7 px map, the DCGAN generator's base).
      hidden: a dense layer (+ BN, LeakyReLU) after the convs; 0 for none.
      batch_norm: BN after every conv but the first, and after the hidden layer.
      conv_impl: "fast" or "native" (`layers.DownConv`); identical maps.
    """

    latent_dim: int
    width: int = 64
    depth: int | None = None
    hidden: int = 0
    batch_norm: bool = True
    conv_impl: str = "fast"

    @nn.compact
    def __call__(self, x: Array, train: bool = True) -> Array:
        depth = self.depth if self.depth is not None else generator_plan(x.shape[1])[1]
        h = x
        for i in range(depth):
            h = DownConv(self.width * 2**i, impl=self.conv_impl, use_bias=not self.batch_norm)(h)
            if self.batch_norm and i > 0:
                h = batch_norm(train)(h)
            h = nn.leaky_relu(h, 0.2)
        h = h.reshape(h.shape[0], -1)
        if self.hidden:
            h = nn.Dense(self.hidden, use_bias=not self.batch_norm, kernel_init=dcgan_init(), name="hidden")(h)
            if self.batch_norm:
                h = batch_norm(train, name="hidden_bn")(h)
            h = nn.leaky_relu(h, 0.2)
        return nn.Dense(self.latent_dim, kernel_init=dcgan_init(), name="latent")(h)
