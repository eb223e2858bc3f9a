"""BEGAN (Berthelot et al. 2017; report 000 in docs/references.md) and Info-BEGAN.

**BEGAN** (`gan.name=began`). D is an autoencoder (`model.arch=began`, `ganjax/models/began.py`)
and the players fight over its per-example reconstruction loss (`losses.began_*`):

    L(v)  = mean_pixels |v - D(v)|^eta                  (eta = began.eta, 1: the paper's L1)
    L_D   = L(x) - k_t L(G(z))                          (batch means; k_t a constant here)
    L_G   = L(G(z))
    k_t+1 = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1),   k_0 = began.k_0
    M_global = L(x) + |gamma L(x) - L(G(z))|            (the convergence measure)

gamma is `began.gamma`, or, with `began.gamma_ramp_steps` R > 0, a warm-up from
`began.gamma_from` g_0: gamma_t = g_0 + (gamma - g_0) min(t / R, 1) at step t
(`optax.linear_schedule`), logged as `gamma`.

One train step is carpedm20/BEGAN-tensorflow's: one real batch x, one z ~ U(-1, 1)^N_z, one
forward pass of D over [x, G(z)]; D's gradient of L_D and G's gradient of L_G, both from that
pass (a simultaneous update); then k_t moves with the same L(x), L(G(z)). k_t lives in the state
(`GANState.k_t`), so a resumed run continues exactly. Logged every `train.log_every` steps
(means over the steps since the last log): `m_global`, `k_t` (the value each step used),
`l_real`, `l_fake`, `d_loss`, `g_loss`, `k_t_pinned` (the fraction of steps that ended with k_t
at 0 or 1: near 1 for long means the equilibrium is lost; k_t stuck at 0 is the known MNIST
failure, carpedm20/BEGAN-tensorflow#12), and the learning rates `g_lr`, `d_lr` in effect.

Learning rates: Adam (`optim.*`; the paper's 1e-4, beta1 0.5) with, optionally,

* `began.lr_halve_every` N > 0: halved every N steps (carpedm20's `lr_update_step`);
* `began.lr_plateau_factor` f in (0, 1): multiplied by f when M_global stalls (the paper's
  "decaying by a factor of 2 when the measure of convergence stalls", f = 0.5): optax's
  `contrib.reduce_on_plateau` fed M_global, whose mean over `lr_plateau_window` steps is one
  reading; `lr_plateau_patience` readings without a relative fall of `lr_plateau_rtol` drop it;
* `began.lr_floor`: neither goes below this learning rate (carpedm20: 2e-5).

Both multiply the updates of `optim.make_optimizer`'s Adam, whose own `optim.schedule` still
applies (use one or the other).

Against mode collapse, three optional terms on D's embedding Enc(.) of the fakes:

* `began.pull_away` w (EBGAN, Zhao et al. 2017): L_G += w f_PT(Enc(G(z))), the mean squared
  cosine between the embeddings of different fakes of the batch (`losses.pull_away_term`);
* `began.embedding_mmd` w (GMMN / MMD-GAN, Li et al. 2015 / 2017): L_G += w MMD_u^2(Enc(x),
  Enc(G(z))), the unbiased squared MMD between D's embeddings of the real batch and of the fakes
  under Gaussian kernels at the median distance times 0.5, 1, 2 (`losses.gaussian_mmd2`): G is
  pulled towards the real digits' spread in D's codes, the share of each kind of digit included;
* `began.latent_constraint` alpha (BEGAN-CS, Chang et al. 2018): L_D += alpha mean|Enc(G(z)) - z|,
  D's encoder made to read z back from G(z) (needs `model.h_dim` = `model.z_dim`; G's loss is
  unchanged, as in the authors' code). Logged as `pull_away`, `embedding_mmd`, `latent_constraint`.

**Info-BEGAN** (`gan.name=infobegan`, report 000): BEGAN whose latent also carries InfoGAN's
codes (a categorical code, continuous codes, optionally noise recovery) and whose D has a Q head
on its embedding (`model.head_hidden` features first) that reads them back; the information
loss (`gans/info_codes.py`, the same terms as InfoGAN's) is added to both L_D and L_G, on the
fakes. The code keys sit in the `began` section beside BEGAN's (`began.categorical`,
`began.lambda_cat`, ...), each part is logged (`info_cat`, `info_cont`, `info_noise`), and
`recover_codes` serves the `code_accuracy` and `traversals` evaluators and `job=synthesize`
as it does InfoGAN's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import optax

from ganjax import gans, losses, models, optim
from ganjax.gans import info_codes
from ganjax.gans.adversarial import Terms
from ganjax.gans.base import Algorithm, generate_from_vector
from ganjax.gans.info_codes import InfoCodes
from ganjax.latent import LatentSpec
from ganjax.train_state import GANState, NetState, init_step_and_rng


# Core keys of the two-player step that BEGAN's step does not use, with their neutral values.
_UNUSED_GAN_KEYS = {
    "conditional": False, "real_target": 1.0, "d_steps": 1, "g_steps": 1, "gp_weight": 0.0,
    "weight_clip": 0.0, "instance_noise": 0.0, "diff_augment": "",
}


def finite_reduce_on_plateau(**kwargs) -> optax.GradientTransformationExtraArgs:
    """`optax.contrib.reduce_on_plateau` whose initial best value is the largest finite float
    rather than inf (the same decisions: every finite reading improves on it), so that the
    optimizer state passes the checkpointer's finiteness check."""
    tx = optax.contrib.reduce_on_plateau(**kwargs)

    def init(params):
        state = tx.init(params)
        return state._replace(best_value=jnp.asarray(jnp.finfo(state.best_value.dtype).max, state.best_value.dtype))

    return optax.GradientTransformationExtraArgs(init, tx.update)


def _plateau_scale(opt_state) -> jax.Array | None:
    """The scale of the first `reduce_on_plateau` state inside an optimizer state (None: none)."""
    is_plateau = lambda x: isinstance(x, optax.contrib.ReduceLROnPlateauState)
    found = [s for s in jax.tree.leaves(opt_state, is_leaf=is_plateau) if is_plateau(s)]
    return found[0].scale if found else None


@gans.register("began")
class BEGAN(Algorithm):
    """See the module docstring. Subclasses may change `make_latent`, `d_heads` and
    `aux_terms` (extra terms of both losses from D's heads on the fakes)."""

    config_section = "began"
    default_arch = "began"
    DEFAULTS = {
        "optim.g_lr": 1e-4,
        "optim.d_lr": 1e-4,
        "optim.b1": 0.5,
        "optim.b2": 0.999,
        "data.batch_size": 16,
    }

    @classmethod
    def default_config(cls) -> ml_collections.ConfigDict:
        """`config.began`: the equilibrium and the learning-rate decays."""
        c = ml_collections.ConfigDict()
        c.gamma = 0.5  # diversity ratio E[L(G(z))] / E[L(x)] > 0 (paper: 0.5 to 0.75; > 1: fakes harder than real)
        c.lambda_k = 0.001  # proportional gain of k_t (>= 0)
        c.gamma_from = 0.0  # with gamma_ramp_steps > 0: gamma at step 0, moving linearly to `gamma`
        c.gamma_ramp_steps = 0  # steps of that ramp; 0 = gamma constant
        c.k_0 = 0.0  # initial k_t, in [0, 1]
        c.eta = 1.0  # L(v) = mean |v - D(v)|^eta (1: L1, the paper's)
        c.noise_prior = "uniform"  # z ~ U(-1, 1) (the paper) | normal
        c.pull_away = 0.0  # weight of EBGAN's pull-away term on D's embeddings of the fakes, in L_G (EBGAN: 0.1); 0 = off
        c.embedding_mmd = 0.0  # weight of the MMD^2 between D's embeddings of real and fake batches, in L_G; 0 = off
        c.latent_constraint = 0.0  # BEGAN-CS's alpha: alpha mean|Enc(G(z)) - z| in L_D (BEGAN-CS: 0.1; needs h_dim = z_dim); 0 = off
        c.lr_halve_every = 0  # halve the learning rates every N steps (carpedm20: 100000); 0 = off
        c.lr_plateau_factor = 0.0  # multiply them by this in (0, 1) when M_global stalls (paper: 0.5); 0 = off
        c.lr_plateau_window = 1000  # steps whose mean M_global is one plateau reading
        c.lr_plateau_patience = 5  # readings without improvement before the learning rates drop
        c.lr_plateau_rtol = 0.01  # relative fall of the mean M_global that counts as improvement
        c.lr_floor = 0.0  # no decay takes a learning rate below this (carpedm20: 2e-5)
        return c

    def __init__(self, config, data_info):
        super().__init__(config, data_info)
        self.check_began_config(config)
        self.latent = self.make_latent()
        self.generator, self.discriminator = models.get(config.model.arch).build_pair(
            config.model, tuple(data_info.image_shape), self.latent, self.d_heads(), False
        )
        self.image_shape = tuple(data_info.image_shape)

    @staticmethod
    def check_began_config(config) -> None:
        """ValueError (a one-line ConfigError at `gans.create`) on a bad `began.*` value or a
        two-player knob (`gan.*`) that BEGAN's step would ignore."""
        bc = config.began
        if not bc.gamma > 0.0:
            raise ValueError(f"config.began.gamma must be > 0 (the paper: 0.5 to 0.75), got {bc.gamma}.")
        if bc.gamma_ramp_steps < 0 or (bc.gamma_ramp_steps and not bc.gamma_from > 0.0):
            raise ValueError(
                f"config.began.gamma_ramp_steps ({bc.gamma_ramp_steps}) must be >= 0, and with a ramp "
                f"config.began.gamma_from must be > 0 (got {bc.gamma_from}); gamma_ramp_steps=0 turns the ramp off."
            )
        if bc.lambda_k < 0:
            raise ValueError(f"config.began.lambda_k must be >= 0 (the paper: 0.001), got {bc.lambda_k}.")
        if not 0.0 <= bc.k_0 <= 1.0:
            raise ValueError(f"config.began.k_0 must be in [0, 1], got {bc.k_0}.")
        if bc.pull_away < 0:
            raise ValueError(f"config.began.pull_away must be >= 0 (EBGAN: 0.1; 0 = off), got {bc.pull_away}.")
        if bc.embedding_mmd < 0:
            raise ValueError(f"config.began.embedding_mmd must be >= 0 (0 = off), got {bc.embedding_mmd}.")
        for key in ("pull_away", "embedding_mmd"):
            if bc[key] and config.data.batch_size < 2:
                raise ValueError(
                    f"config.began.{key} compares the images of a batch with each other, so it needs "
                    f"data.batch_size >= 2 (got {config.data.batch_size}): raise the batch size or set began.{key}=0."
                )
        if bc.latent_constraint < 0:
            raise ValueError(f"config.began.latent_constraint must be >= 0 (BEGAN-CS: 0.1; 0 = off), got {bc.latent_constraint}.")
        if bc.latent_constraint and config.model.h_dim != config.model.z_dim:
            raise ValueError(
                f"config.began.latent_constraint compares D's embedding with z, so model.h_dim "
                f"({config.model.h_dim}) must equal model.z_dim ({config.model.z_dim}); set one to the other."
            )
        if bc.eta <= 0:
            raise ValueError(f"config.began.eta must be > 0 (1 = L1), got {bc.eta}.")
        if not 0.0 <= bc.lr_plateau_factor < 1.0:
            raise ValueError(f"config.began.lr_plateau_factor must be in (0, 1), or 0 for off, got {bc.lr_plateau_factor}.")
        if bc.lr_plateau_factor and (bc.lr_plateau_window < 1 or bc.lr_plateau_patience < 1 or bc.lr_plateau_rtol <= 0):
            raise ValueError("config.began.lr_plateau_window and lr_plateau_patience must be >= 1 and lr_plateau_rtol > 0.")
        if bc.lr_halve_every < 0 or bc.lr_floor < 0:
            raise ValueError("config.began.lr_halve_every and lr_floor must be >= 0.")
        for key, neutral in _UNUSED_GAN_KEYS.items():
            if config.gan[key] != neutral:
                raise ValueError(
                    f"config.gan.{key}={config.gan[key]!r} is a knob of the two-player step, which BEGAN "
                    f"does not use; leave it at {neutral!r}."
                )

    # ---------------------------------------------------------------------------------------
    # Hooks (Info-BEGAN overrides them).
    # ---------------------------------------------------------------------------------------

    def make_latent(self) -> LatentSpec:
        """z ~ U(-1, 1)^N_z (`began.noise_prior`)."""
        return LatentSpec(noise=self.config.model.z_dim, noise_prior=self.config.began.noise_prior)

    def d_heads(self) -> tuple[tuple[str, int], ...]:
        """Extra dense outputs of D's embedding besides `reconstruction` and `embedding`."""
        return ()

    def aux_terms(self, fake: dict, parts: dict) -> Terms:
        """Extra terms of both L_D and L_G from D's outputs on fakes made from `parts`."""
        return {}

    # ---------------------------------------------------------------------------------------
    # State and optimizers.
    # ---------------------------------------------------------------------------------------

    def _optimizer(self, lr: float) -> optax.GradientTransformationExtraArgs:
        """`optim.make_optimizer`'s Adam at `lr`, then the step halving and the plateau decay
        (`began.lr_*`) as multipliers of its updates. Takes `value=M_global` at each update."""
        cfg, bc = self.config, self.config.began
        min_scale = min(bc.lr_floor / lr, 1.0)
        parts = [optim.make_optimizer(cfg.optim, lr, cfg.train.num_steps)]
        if bc.lr_halve_every:
            parts.append(optax.scale_by_schedule(self._halving(lr)))
        if bc.lr_plateau_factor:
            parts.append(finite_reduce_on_plateau(
                factor=bc.lr_plateau_factor, patience=bc.lr_plateau_patience, rtol=bc.lr_plateau_rtol,
                accumulation_size=bc.lr_plateau_window, min_scale=min_scale,
            ))
        return optax.chain(*parts)

    def _halving(self, lr: float):
        """0.5 ** floor(step / lr_halve_every), not below lr_floor / lr: a multiplier of `lr`."""
        bc = self.config.began
        return optax.exponential_decay(1.0, bc.lr_halve_every, 0.5, staircase=True,
                                       end_value=min(bc.lr_floor / lr, 1.0))

    def make_optimizers(self):
        """(G's, D's) optimizers at `optim.g_lr` / `optim.d_lr`."""
        return self._optimizer(self.config.optim.g_lr), self._optimizer(self.config.optim.d_lr)

    def learning_rate(self, net: NetState, lr: float, step: jax.Array) -> jax.Array:
        """The learning rate `net` is trained at in `step`: `optim.schedule`'s, times the
        halving and the plateau scale."""
        cfg = self.config
        base = optim.learning_rate_schedule(lr, cfg.optim, cfg.train.num_steps)
        rate = jnp.asarray(base(step) if callable(base) else base, jnp.float32)
        if cfg.began.lr_halve_every:
            rate = rate * self._halving(lr)(step)
        scale = _plateau_scale(net.opt_state)
        return rate if scale is None else rate * scale

    def gamma(self, step: jax.Array) -> jax.Array:
        """The diversity ratio of `step`: `began.gamma`, or its linear warm-up from `gamma_from`."""
        bc = self.config.began
        if not bc.gamma_ramp_steps:
            return jnp.asarray(bc.gamma, jnp.float32)
        ramp = optax.linear_schedule(bc.gamma_from, bc.gamma, bc.gamma_ramp_steps)
        return jnp.asarray(ramp(step), jnp.float32)

    def init_state(self, rng: jax.Array) -> GANState:
        step, base = init_step_and_rng(self.config.seed)
        g_key, d_key = jax.random.split(rng)
        parts = self.latent.sample(jax.random.PRNGKey(0), 2)
        images = jnp.zeros((2, *self.image_shape), jnp.float32)
        g_tx, d_tx = self.make_optimizers()
        return GANState(
            step=step,
            rng=base,
            generator=NetState.create(self.generator.apply, self.generator.init(g_key, self.latent.vector(parts)), g_tx),
            discriminator=NetState.create(self.discriminator.apply, self.discriminator.init(d_key, images), d_tx),
            k_t=jnp.asarray(self.config.began.k_0, jnp.float32),
        )

    # ---------------------------------------------------------------------------------------
    # Training.
    # ---------------------------------------------------------------------------------------

    @staticmethod
    def _update(net: NetState, grads, m_global) -> NetState:
        """One optimizer update that feeds M_global to the plateau decay."""
        updates, opt_state = net.tx.update(grads, net.opt_state, net.params, value=m_global)
        return net.replace(params=optax.apply_updates(net.params, updates), opt_state=opt_state)

    def objectives(self, d_params, d: NetState, real: jax.Array, fake: jax.Array, parts: dict, k_t):
        """(L_D, L_G) of one pass of D over [real, fake], and the step's metrics."""
        bc, n = self.config.began, real.shape[0]
        out = d.apply_fn({"params": d_params}, jnp.concatenate([real, fake]))
        out_real, out_fake = jax.tree.map(lambda y: y[:n], out), jax.tree.map(lambda y: y[n:], out)
        l_real = losses.began_autoencoder_loss(real, out_real["reconstruction"], bc.eta)
        l_fake = losses.began_autoencoder_loss(fake, out_fake["reconstruction"], bc.eta)
        metrics = {"l_real": l_real.mean(), "l_fake": l_fake.mean()}
        extra = 0.0
        for name, (weight, value) in self.aux_terms(out_fake, parts).items():
            metrics[name] = value
            if weight is not None:
                extra = extra + weight * value
        d_loss = losses.began_discriminator_loss(l_real, l_fake, k_t) + extra
        g_loss = losses.began_generator_loss(l_fake) + extra
        if bc.pull_away:
            metrics["pull_away"] = losses.pull_away_term(out_fake["embedding"])
            g_loss = g_loss + bc.pull_away * metrics["pull_away"]
        if bc.embedding_mmd:
            metrics["embedding_mmd"] = losses.gaussian_mmd2(out_real["embedding"], out_fake["embedding"])
            g_loss = g_loss + bc.embedding_mmd * metrics["embedding_mmd"]
        if bc.latent_constraint:
            metrics["latent_constraint"] = losses.l1_loss(out_fake["embedding"], parts["z"])
            d_loss = d_loss + bc.latent_constraint * metrics["latent_constraint"]
        return (d_loss, g_loss), dict(metrics, d_loss=d_loss, g_loss=g_loss)

    def train_step(self, state: GANState, batch: dict) -> tuple[GANState, dict]:
        """batch['image']: [1, B, H, W, C] in [-1, 1]. See the module docstring."""
        bc = self.config.began
        real = batch["image"][0]
        parts = self.latent.sample(state.step_key(), real.shape[0])
        g, d = state.generator, state.discriminator
        vector = self.latent.vector(parts)
        fake, g_pullback, g_stats = jax.vjp(lambda p: g.apply_train(p, vector), g.params, has_aux=True)
        (d_loss, g_loss), pullback, metrics = jax.vjp(
            lambda p, f: self.objectives(p, d, real, f, parts, state.k_t), d.params, fake, has_aux=True
        )
        one, zero = jnp.ones_like(d_loss), jnp.zeros_like(d_loss)
        d_grads, _ = pullback((one, zero))  # D: the gradient of L_D (the fakes are constants)
        _, fake_grads = pullback((zero, one))  # G: the gradient of L_G through the fakes
        (g_grads,) = g_pullback(fake_grads)
        l_real, l_fake = metrics["l_real"], metrics["l_fake"]
        gamma = self.gamma(state.step)
        m_global = losses.began_convergence(l_real, l_fake, gamma)
        k_next = losses.began_k_update(state.k_t, l_real, l_fake, gamma, bc.lambda_k)
        metrics.update(
            m_global=m_global, k_t=state.k_t, k_t_pinned=((k_next <= 0.0) | (k_next >= 1.0)).astype(jnp.float32),
            g_lr=self.learning_rate(g, self.config.optim.g_lr, state.step),
            d_lr=self.learning_rate(d, self.config.optim.d_lr, state.step),
            g_grad_norm=optax.tree.norm(g_grads), d_grad_norm=optax.tree.norm(d_grads),
        )
        if bc.gamma_ramp_steps:
            metrics["gamma"] = gamma
        new = state.replace(
            step=state.step + 1, k_t=k_next,
            generator=self._update(g, g_grads, m_global).replace(batch_stats=g_stats),
            discriminator=self._update(d, d_grads, m_global),
        )
        return new, metrics

    # ---------------------------------------------------------------------------------------
    # Generation.
    # ---------------------------------------------------------------------------------------

    def generate(self, state: GANState, parts: dict) -> jax.Array:
        """G's images, clipped to [-1, 1] (its output layer may be linear, as carpedm20's)."""
        return generate_from_vector(state.generator, self.latent.vector(parts))


@gans.register("infobegan")
class InfoBEGAN(InfoCodes, BEGAN):
    """BEGAN with InfoGAN's codes and a Q head on D's embedding (see the module docstring)."""

    DEFAULTS = {**BEGAN.DEFAULTS, "model.head_hidden": 128}

    @classmethod
    def default_config(cls) -> ml_collections.ConfigDict:
        """`config.began`: BEGAN's keys plus the code keys of `info_codes.default_config()`."""
        c = BEGAN.default_config()
        for key, value in info_codes.default_config().items():
            if key not in c:
                c[key] = value
        return c

    def aux_terms(self, fake, parts):
        return self.info_terms(fake["q"], parts)

    def make_optimizers(self):
        g_tx, d_tx = super().make_optimizers()
        return g_tx, self.with_q_optimizer(d_tx, self._optimizer)
