"""InfoGAN (Chen et al. 2016; report 000 in docs/references.md) with report 000's extensions.

The generator's input is noise z plus codes: one categorical code c_cat ~ Cat(K) (uniform) and
`infogan.continuous` codes c_cont ~ U(-1, 1) (`LatentSpec`; a normal prior is a known slip).
D gets one extra head, Q, on its shared trunk (`model.d_hidden` features; Q's own
`model.head_hidden` layer, as openai/InfoGAN's FC 128), that recovers the codes. On the
two-player step (`gans/adversarial.py`) the information loss is an auxiliary term of both
players, on the fakes:

    L_info = lambda_cat  * CE(c_cat, Q_cat(G(z, c)))
           + lambda_cont * [ 0.5 ||c_cont - mu(G(z, c))||^2          (infogan.cont_std = fixed)
                             or -log N(c_cont; mu, sigma^2) ]          (infogan.cont_std = learned)
           + lambda_noise * 0.5 ||z - z_hat(G(z, c))||^2                (noise recovery, report 000)

    L_D = adv_D + L_info   (D's trunk and Q learn to read the codes; fakes are constants here)
    L_G = adv_G + L_info   (G learns to write them)

Each part is logged (`d_info_cat`, `g_info_cont`, ...): the categorical term should fall from
log K (2.30 for 10 values) within the first thousand steps; staying there means the code is
ignored. Further options, each a config key: instance noise on D's input with annealing
(`gan.instance_noise`, `gan.instance_noise_anneal_steps`; report 000's "power" 1/15 or 1/20 is
a variance, so sigma = sqrt(1/15) = 0.26), and separate learning rates for G (`optim.g_lr`),
D's trunk (`optim.d_lr`) and the Q head (`infogan.q_lr`). The codes, the Q head, the information
terms and `recover_codes` are `gans/info_codes.py`'s, shared with Info-BEGAN (`gans/began.py`).

Defaults are openai/InfoGAN's MNIST run: 62 uniform noise dims, a 10-way code, 2 continuous
codes, lambda 1, Adam (b1 0.5) with G lr 1e-3 and D lr 2e-4, batch 128, its architecture
(G: FC 1024, FC 7x7x128, 2 up-convs; D: 2 convs, FC 1024; Q: FC 128), 5,000 steps.
"""

from __future__ import annotations

import ml_collections

from ganjax import gans, optim
from ganjax.gans import info_codes
from ganjax.gans.adversarial import TwoPlayerGAN
from ganjax.gans.info_codes import InfoCodes


@gans.register("infogan")
class InfoGAN(InfoCodes, TwoPlayerGAN):
    """See the module docstring; the codes, Q head and information terms are `InfoCodes`'."""

    config_section = "infogan"
    DEFAULTS = {
        "gan.loss": "non_saturating",
        "model.z_dim": 62,
        "model.g_width": 64,
        "model.d_width": 64,
        "model.g_hidden": 1024,
        "model.d_hidden": 1024,
        "model.head_hidden": 128,
        "optim.g_lr": 1e-3,
        "optim.d_lr": 2e-4,
        "data.batch_size": 128,
        "train.num_steps": 5000,
    }
    TINY = {"model.g_hidden": 16, "model.d_hidden": 16, "model.head_hidden": 8}

    @classmethod
    def default_config(cls) -> ml_collections.ConfigDict:
        """`config.infogan`: the code keys of `info_codes.default_config()`."""
        return info_codes.default_config()

    # ---------------------------------------------------------------------------------------
    # Hooks of the two-player step.
    # ---------------------------------------------------------------------------------------

    def d_conditional(self) -> bool:
        return False

    def d_aux_terms(self, real, fake, batch, parts):
        return self.info_terms(fake["q"], parts)

    def g_aux_terms(self, fake, parts):
        return self.info_terms(fake["q"], parts)

    # ---------------------------------------------------------------------------------------
    # Optimizers: the Q head may have its own learning rate (`infogan.q_lr`).
    # ---------------------------------------------------------------------------------------

    def make_optimizers(self):
        g_tx, d_tx = super().make_optimizers()
        cfg = self.config
        q_tx = lambda lr: optim.make_optimizer(cfg.optim, lr, cfg.train.num_steps * cfg.gan.d_steps, cfg.gan.weight_clip)
        return g_tx, self.with_q_optimizer(d_tx, q_tx)
