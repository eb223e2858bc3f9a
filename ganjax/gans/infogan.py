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
D's trunk (`optim.d_lr`) and the Q head (`infogan.q_lr`).

Defaults are openai/InfoGAN's MNIST run: 62 uniform noise dims, a 10-way code, 2 continuous
codes, lambda 1, Adam (b1 0.5) with G lr 1e-3 and D lr 2e-4, batch 128, its architecture
(G: FC 1024, FC 7x7x128, 2 up-convs; D: 2 convs, FC 1024; Q: FC 128), 5,000 steps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import optax

from ganjax import gans, losses, optim
from ganjax.gans.adversarial import TwoPlayerGAN
from ganjax.latent import LatentSpec

_CONT_STD = ("fixed", "learned")


@gans.register("infogan")
class InfoGAN(TwoPlayerGAN):
    """See the module docstring."""

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
        c = ml_collections.ConfigDict()
        c.categorical = 10  # values of the categorical code (>= 2)
        c.continuous = 2  # continuous codes, each ~ U(-1, 1)
        c.noise_prior = "uniform"  # z ~ U(-1, 1) (openai/InfoGAN) | normal
        c.lambda_cat = 1.0  # weight of the categorical code's cross-entropy
        c.lambda_cont = 1.0  # weight of the continuous codes' term
        c.cont_std = "fixed"  # fixed (L2, openai/InfoGAN) | learned (Gaussian NLL, Q predicts sigma)
        c.lambda_noise = 0.0  # noise-recovery head weight (report 000: 0.1); 0 = no head
        c.q_lr = 0.0  # learning rate of the Q head; 0 = optim.d_lr
        return c

    def __init__(self, config, data_info):
        ic = config.infogan
        if ic.categorical < 2:
            raise ValueError(
                f"config.infogan.categorical={ic.categorical}: the categorical code needs at least "
                "2 values (10 for MNIST digits)."
            )
        if ic.continuous < 0 or ic.lambda_cat < 0 or ic.lambda_cont < 0 or ic.lambda_noise < 0:
            raise ValueError("config.infogan.continuous and the lambda_* weights must be >= 0.")
        if ic.cont_std not in _CONT_STD:
            raise ValueError(f"config.infogan.cont_std must be one of {list(_CONT_STD)}, got {ic.cont_std!r}.")
        if ic.q_lr < 0:
            raise ValueError("config.infogan.q_lr must be >= 0 (0 = optim.d_lr).")
        super().__init__(config, data_info)

    # ---------------------------------------------------------------------------------------
    # Hooks of the two-player step.
    # ---------------------------------------------------------------------------------------

    def make_latent(self) -> LatentSpec:
        ic = self.config.infogan
        return LatentSpec(
            noise=self.config.model.z_dim,
            noise_prior=ic.noise_prior,
            categorical=(ic.categorical,),
            continuous=ic.continuous,
        )

    def _q_sizes(self) -> dict[str, int]:
        ic, latent = self.config.infogan, self.latent
        sizes = {"cat": sum(latent.categorical), "cont": latent.continuous}
        if ic.cont_std == "learned":
            sizes["cont_log_std"] = latent.continuous
        if ic.lambda_noise:
            sizes["z"] = latent.noise
        return sizes

    def d_heads(self):
        return (("q", sum(self._q_sizes().values())),)

    def d_conditional(self) -> bool:
        return False

    def q_outputs(self, q: jax.Array) -> dict:
        """Q's output [N, Q] cut into `cat_logits` (one [N, K] per code), `cont` (the mean),
        `cont_log_std` (learned variance) and `z` (noise recovery): those configured."""
        out, start = {}, 0
        for name, size in self._q_sizes().items():
            out[name], start = q[:, start:start + size], start + size
        logits, start = [], 0
        for k in self.latent.categorical:
            logits.append(out["cat"][:, start:start + k])
            start += k
        out["cat_logits"] = tuple(logits)
        return out

    def info_terms(self, q: jax.Array, parts: dict) -> dict:
        """The information loss's parts on Q's output for fakes made from `parts`."""
        ic, out = self.config.infogan, self.q_outputs(q)
        terms = {"info_cat": (ic.lambda_cat, sum(
            losses.categorical_cross_entropy(l, parts["cat"][:, j]) for j, l in enumerate(out["cat_logits"])
        ))}
        if self.latent.continuous:
            if ic.cont_std == "learned":
                cont = losses.gaussian_nll(out["cont"], out["cont_log_std"], parts["cont"])
            else:
                cont = losses.fixed_std_gaussian_loss(out["cont"], parts["cont"])
            terms["info_cont"] = (ic.lambda_cont, cont)
        if ic.lambda_noise:
            terms["info_noise"] = (ic.lambda_noise, losses.noise_recovery_loss(out["z"], parts["z"]))
        return terms

    def d_aux_terms(self, real, fake, batch, parts):
        return self.info_terms(fake["q"], parts)

    def g_aux_terms(self, fake, parts):
        return self.info_terms(fake["q"], parts)

    # ---------------------------------------------------------------------------------------
    # Optimizers: the Q head may have its own learning rate.
    # ---------------------------------------------------------------------------------------

    def make_optimizers(self):
        g_tx, d_tx = super().make_optimizers()
        cfg = self.config
        if not cfg.infogan.q_lr:
            return g_tx, d_tx
        q_tx = optim.make_optimizer(
            cfg.optim, cfg.infogan.q_lr, cfg.train.num_steps * cfg.gan.d_steps, cfg.gan.weight_clip
        )
        labels = lambda params: {k: jax.tree.map(lambda _: "q" if k.startswith("head_q") else "trunk", v)
                                 for k, v in params.items()}
        return g_tx, optax.multi_transform({"trunk": d_tx, "q": q_tx}, labels)

    # ---------------------------------------------------------------------------------------
    # Reading codes back from images.
    # ---------------------------------------------------------------------------------------

    def recover_codes(self, state, images: jax.Array) -> dict:
        """Q's estimate of the codes of images in [-1, 1] (D in inference mode): `cat` [N, 1]
        (argmax), `cat_logits`, `cont` (the mean) and, with noise recovery, `z`."""
        d = state.discriminator
        q = d.apply_fn(d.variables, images, None, train=False)["q"]
        out = self.q_outputs(q)
        out["cat"] = jnp.stack([jnp.argmax(l, -1) for l in out["cat_logits"]], -1).astype(jnp.int32)
        return out
