"""The DCGAN family as one algorithm: DCGAN, cGAN/cDCGAN, LSGAN, WGAN, WGAN-GP, hinge GAN.

The two-player step (`gans/adversarial.py`) with no auxiliary terms; chosen by config
(reports 003 and 004, `docs/references.md`):

* `gan.loss`: minimax | non_saturating | least_squares | wasserstein | hinge (`losses.py`);
* `gan.conditional`: labels fed to G and D (dense + reshape + concatenate, report 004);
* `gan.real_target`, `gan.d_steps` / `gan.g_steps`, `gan.gp_weight`, `gan.weight_clip`,
  `gan.instance_noise` / `gan.instance_noise_anneal_steps`: the step's knobs (see there);
* `optim.g_lr` / `optim.d_lr`: separate learning rates;
* `model.*`: the architecture (`model.arch=dcgan`: every knob of report 003, `models/dcgan.py`).

The latent is z ~ N(0, I) of `model.z_dim`, plus the class label when conditional.
"""

from __future__ import annotations

from ganjax import gans
from ganjax.gans.adversarial import TwoPlayerGAN, instance_noise_std  # noqa: F401  (re-exported)
from ganjax.latent import LatentSpec


@gans.register("dcgan")
class DCGAN(TwoPlayerGAN):
    """See the module docstring."""

    def __init__(self, config, data_info):
        if config.gan.conditional and not data_info.num_classes:
            raise ValueError(
                f"config.gan.conditional=True but dataset {data_info.name!r} has no class labels."
            )
        super().__init__(config, data_info)

    def make_latent(self) -> LatentSpec:
        conditional = self.config.gan.conditional
        return LatentSpec(
            noise=self.config.model.z_dim,
            num_classes=self.info.num_classes if conditional else 0,
        )
