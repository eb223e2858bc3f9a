"""InfoGAN's latent codes and their Q head (Chen et al. 2016; report 000), shared by the
algorithms that use them: InfoGAN (`gans/infogan.py`, on the two-player step) and Info-BEGAN
(`gans/began.py`, on BEGAN's step).

The generator's input is noise z plus codes: one categorical code c_cat ~ Cat(K) (uniform) and
`continuous` codes c_cont ~ U(-1, 1) (`LatentSpec`; a normal prior is a known slip). D has one
extra head, Q (`("q", size)` in `d_heads`), that reads the codes back from an image; its output
is cut into the categorical logits, the continuous means (and log-stds with `cont_std=learned`)
and, with noise recovery, z. The information loss on fakes G(z, c):

    L_info = lambda_cat  * CE(c_cat, Q_cat(G(z, c)))
           + lambda_cont * [ 0.5 ||c_cont - mu(G(z, c))||^2          (cont_std = fixed)
                             or -log N(c_cont; mu, sigma^2) ]          (cont_std = learned)
           + lambda_noise * 0.5 ||z - z_hat(G(z, c))||^2                (noise recovery, report 000)

Each part is one term `info_cat`, `info_cont`, `info_noise` (`{name: (weight, value)}`), added
to both players' losses by the algorithm. The keys (`default_config()`) live in the algorithm's
own section: `infogan.*` for InfoGAN, `began.*` for Info-BEGAN; `InfoCodes.codes_config` is that
section.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import optax

from ganjax import losses
from ganjax.latent import LatentSpec

CONT_STD = ("fixed", "learned")


def default_config() -> ml_collections.ConfigDict:
    """The code keys, as InfoGAN's section has them (openai/InfoGAN's MNIST run)."""
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


def q_parameter_labels(params) -> dict:
    """"q" for the Q head's parameters (`head_q*`), "trunk" for the rest of D's."""
    return {k: jax.tree.map(lambda _: "q" if k.startswith("head_q") else "trunk", v) for k, v in params.items()}


class InfoCodes:
    """Mixin for an `Algorithm` whose latent carries InfoGAN codes and whose D has a Q head.

    Needs `self.config`, `self.latent` (from `code_latent()`) and `config_section` (the section
    that holds the code keys). Provides the checks (at `__init__`), the `make_latent` and `d_heads` hooks, the latent, the head, the information terms,
    the Q head's own optimizer and `recover_codes`, which the evaluators `code_accuracy` and
    `traversals` and the `synthesize` job look for.
    """

    def __init__(self, config, data_info):
        self.check_codes(config)
        super().__init__(config, data_info)

    def make_latent(self) -> LatentSpec:
        """The algorithm's latent hook: `code_latent()`."""
        return self.code_latent()

    def d_heads(self) -> tuple[tuple[str, int], ...]:
        """The algorithm's D-heads hook: `q_head()`."""
        return self.q_head()

    @property
    def codes_config(self) -> ml_collections.ConfigDict:
        return self.config[self.config_section]

    @classmethod
    def check_codes(cls, config) -> None:
        """ValueError (a one-line ConfigError at `gans.create`) on a bad code key of `config`."""
        s = cls.config_section
        ic = config[s]
        if ic.categorical < 2:
            raise ValueError(
                f"config.{s}.categorical={ic.categorical}: the categorical code needs at least "
                "2 values (10 for MNIST digits)."
            )
        if ic.continuous < 0 or ic.lambda_cat < 0 or ic.lambda_cont < 0 or ic.lambda_noise < 0:
            raise ValueError(f"config.{s}.continuous and the lambda_* weights must be >= 0.")
        if ic.cont_std not in CONT_STD:
            raise ValueError(f"config.{s}.cont_std must be one of {list(CONT_STD)}, got {ic.cont_std!r}.")
        if ic.q_lr < 0:
            raise ValueError(f"config.{s}.q_lr must be >= 0 (0 = optim.d_lr).")

    def code_latent(self) -> LatentSpec:
        """Noise `model.z_dim` plus the configured codes."""
        ic = self.codes_config
        return LatentSpec(
            noise=self.config.model.z_dim,
            noise_prior=ic.noise_prior,
            categorical=(ic.categorical,),
            continuous=ic.continuous,
        )

    def _q_sizes(self) -> dict[str, int]:
        ic, latent = self.codes_config, self.latent
        sizes = {"cat": sum(latent.categorical), "cont": latent.continuous}
        if ic.cont_std == "learned":
            sizes["cont_log_std"] = latent.continuous
        if ic.lambda_noise:
            sizes["z"] = latent.noise
        return sizes

    def q_head(self) -> tuple[tuple[str, int], ...]:
        """D's extra head: `(("q", size),)`."""
        return (("q", sum(self._q_sizes().values())),)

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
        ic, out = self.codes_config, self.q_outputs(q)
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

    def with_q_optimizer(self, d_tx: optax.GradientTransformation, make_q_tx) -> optax.GradientTransformation:
        """D's optimizer, with the Q head on `make_q_tx(q_lr)` when `q_lr` > 0 (else `d_tx`)."""
        q_lr = self.codes_config.q_lr
        if not q_lr:
            return d_tx
        return optax.multi_transform({"trunk": d_tx, "q": make_q_tx(q_lr)}, q_parameter_labels)

    def recover_codes(self, state, images: jax.Array) -> dict:
        """Q's estimate of the codes of images in [-1, 1] (D in inference mode): `cat` [N, 1]
        (argmax), `cat_logits`, `cont` (the mean) and, with noise recovery, `z`."""
        d = state.discriminator
        q = d.apply_fn(d.variables, images, None, train=False)["q"]
        out = self.q_outputs(q)
        out["cat"] = jnp.stack([jnp.argmax(l, -1) for l in out["cat_logits"]], -1).astype(jnp.int32)
        return out
