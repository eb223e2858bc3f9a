"""The two-player step: G against D, with hooks for auxiliary D and G terms.

The shape of TF-GAN's `gan_loss`: one adversarial objective (`gan.loss`, `losses.py`) plus
weighted auxiliary terms that an algorithm adds without copying the step. ACGAN's class terms
and InfoGAN's mutual-information term are such terms; the step's machinery comes with them:

* `gan.d_steps` / `gan.g_steps`: D and G updates per train step; each D update gets its own
  real batch (`n_micro = d_steps`);
* `gan.real_target` < 1: one-sided label smoothing (losses that take a real target);
* `gan.gp_weight` > 0: gradient penalty on D's score (WGAN-GP); `gan.weight_clip` > 0: weight
  clipping of D after each update (WGAN);
* `gan.instance_noise` sigma_0 and `gan.instance_noise_anneal_steps` T: Gaussian noise of std
  sigma_0 * max(0, 1 - step / T) (constant if T = 0) added to every D input;
* `gan.diff_augment` (e.g. "translation,cutout"): DiffAugment, the same family of random
  differentiable transformations on every real and fake D input, in D's and G's updates
  (`ganjax/diffaugment.py`; for small training sets);
* batch statistics threaded through both D passes of an update, dropout keys per update;
* the last D update's fakes reused, with their pullback (`jax.vjp`), by the first G update:
  one G forward pass fewer per step (as PyTorch's DCGAN does).

The networks come from `config.model.arch` (`ganjax.models`), the generator's input from the
algorithm's `LatentSpec`. D returns a dict of named heads (`score`, and those the algorithm asks
for in `d_heads()`, e.g. `aux`, `q`).

One train step: for each of d_steps real batches (x_i, y_i), draw latent parts p_i (the
condition taken from y_i, so G learns the classes in the data's proportions), make G(p_i) and
update D on

    L_D = adv_D(D(x_i).score, D(G(p_i)).score) + gp_weight * GP + sum_k w_k * d_aux_k

then g_steps times update G on

    L_G = adv_G(D(G(p)).score) + sum_k w_k * g_aux_k,

the first time on the last D update's G(p), later ones on new p.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ganjax import diffaugment, losses, models, optim
from ganjax.gans.base import Algorithm, mean_over_updates
from ganjax.latent import LatentSpec
from ganjax.train_state import GANState, NetState, init_step_and_rng

Terms = dict[str, tuple[float | None, jax.Array]]  # name -> (weight, value); None: logged only


def instance_noise_std(step: jax.Array, sigma0: float, anneal_steps: int) -> jax.Array:
    """sigma(step) = sigma0 * max(0, 1 - step / anneal_steps); constant sigma0 if no annealing."""
    if anneal_steps <= 0:
        return jnp.asarray(sigma0, jnp.float32)
    return sigma0 * jnp.maximum(0.0, 1.0 - step.astype(jnp.float32) / anneal_steps)


def check_adversarial_config(gan_config, loss_names=None) -> losses.AdversarialLoss:
    """The adversarial loss named by `gan.loss`, after the checks every algorithm shares.

    Raises ValueError (a ConfigError at `gans.create`) on a loss outside `loss_names`, label
    smoothing for a loss without a real target, or fewer than one D / G update per step.
    """
    gc = gan_config
    if loss_names is not None and gc.loss not in loss_names:
        raise ValueError(f"this algorithm supports config.gan.loss in {list(loss_names)}, got {gc.loss!r}.")
    adversarial = losses.get_adversarial_loss(gc.loss)
    if gc.real_target != 1.0 and not adversarial.accepts_real_target:
        raise ValueError(
            f"config.gan.real_target={gc.real_target} (label smoothing) has no meaning for the "
            f"{gc.loss!r} loss; set it to 1.0."
        )
    if gc.d_steps < 1 or gc.g_steps < 1:
        raise ValueError("config.gan.d_steps and config.gan.g_steps must be at least 1.")
    return adversarial


class TwoPlayerGAN(Algorithm):
    """See the module docstring. Subclasses define `make_latent` and, if they need them,
    `d_heads`, `d_conditional`, `d_aux_terms` and `g_aux_terms`."""

    default_arch = "dcgan"

    def __init__(self, config, data_info):
        super().__init__(config, data_info)
        self.adversarial = check_adversarial_config(config.gan)
        self.latent = self.make_latent()
        self.generator, self.discriminator = models.get(config.model.arch).build_pair(
            config.model, tuple(data_info.image_shape), self.latent, self.d_heads(),
            self.d_conditional(),
        )
        self.image_shape = tuple(data_info.image_shape)
        self.n_micro = config.gan.d_steps
        self.diff_augment = diffaugment.parse_policy(config.gan.get("diff_augment", ""))

    # ---------------------------------------------------------------------------------------
    # Hooks.
    # ---------------------------------------------------------------------------------------

    def make_latent(self) -> LatentSpec:
        """The generator's input."""
        raise NotImplementedError

    def d_heads(self) -> tuple[tuple[str, int], ...]:
        """Extra D outputs `(name, size)` besides `score` (e.g. `("aux", num_classes)`)."""
        return ()

    def d_conditional(self) -> bool:
        """Whether D is told the condition (cGAN: yes; ACGAN: no, it predicts it)."""
        return self.latent.conditional

    def d_aux_terms(self, real: dict, fake: dict, batch: dict, parts: dict) -> Terms:
        """Auxiliary D terms from D's heads on real images (`batch`: their labels / attributes)
        and on fakes made from latent `parts`: `{name: (weight, value)}`, weight None for a
        metric that is only logged."""
        return {}

    def g_aux_terms(self, fake: dict, parts: dict) -> Terms:
        """Auxiliary G terms from D's heads on fakes made from latent `parts`."""
        return {}

    def make_optimizers(self):
        """(G's, D's) optax transformations (default: `optim.make_optimizers` from the config)."""
        return optim.make_optimizers(self.config, d_updates_per_step=self.config.gan.d_steps)

    # ---------------------------------------------------------------------------------------
    # State.
    # ---------------------------------------------------------------------------------------

    def init_state(self, rng: jax.Array) -> GANState:
        cfg = self.config
        step, base = init_step_and_rng(cfg.seed)
        g_key, d_key = jax.random.split(rng)
        parts = self.latent.sample(jax.random.PRNGKey(0), 2)
        images = jnp.zeros((2, *self.image_shape), jnp.float32)
        g_vars = self.generator.init(
            g_key, self.latent.vector(parts), self._condition(parts), train=False
        )
        d_vars = self.discriminator.init(d_key, images, self._d_condition(parts), train=False)
        g_tx, d_tx = self.make_optimizers()
        return GANState(
            step=step,
            rng=base,
            generator=NetState.create(self.generator.apply, g_vars, g_tx),
            discriminator=NetState.create(self.discriminator.apply, d_vars, d_tx),
        )

    # ---------------------------------------------------------------------------------------
    # Training.
    # ---------------------------------------------------------------------------------------

    def _condition(self, parts: dict):
        """What G is told besides the vector (None when unconditional)."""
        return self.latent.condition(parts)

    def _d_condition(self, parts_or_batch: dict):
        if not self.d_conditional():
            return None
        return self.latent.condition(parts_or_batch)

    def _d(self, d: NetState, params, images, condition, key, batch_stats=None):
        """D in training mode: (dict of heads, new batch_stats)."""
        return d.apply_train(params, images, condition, batch_stats=batch_stats, rngs={"dropout": key})

    def _generate_train(self, g: NetState, params, parts):
        """G in training mode: (images, new batch_stats)."""
        return g.apply_train(params, self.latent.vector(parts), self._condition(parts))

    def _d_input(self, images, key, sigma):
        """What D sees: DiffAugment (`gan.diff_augment`), then instance noise of std sigma."""
        if self.diff_augment:  # (without it, the noise keys are those of earlier versions)
            k_aug, key = jax.random.split(key)
            images = diffaugment.diff_augment(images, k_aug, self.diff_augment)
        return images + sigma * jax.random.normal(key, images.shape, images.dtype)

    @staticmethod
    def _add_terms(loss, metrics: dict, terms: Terms, prefix: str):
        """loss + sum of weight * value; every term logged as `<prefix>_<name>`, and a term of
        weight None (e.g. an accuracy) only logged."""
        for name, (weight, value) in terms.items():
            if weight is not None:
                loss = loss + weight * value
            metrics[f"{prefix}_{name}"] = value
        return loss

    def _d_update(self, d: NetState, real_batch: dict, fake, parts, key, sigma):
        gc = self.config.gan
        k_real, k_fake, k_drop, k_gp = jax.random.split(key, 4)
        fake = jax.lax.stop_gradient(fake)
        real = real_batch["image"]
        real_in, fake_in = self._d_input(real, k_real, sigma), self._d_input(fake, k_fake, sigma)
        real_cond, fake_cond = self._d_condition(real_batch), self._d_condition(parts)

        def loss_fn(params):
            real_out, stats = self._d(d, params, real_in, real_cond, k_drop)
            fake_out, stats = self._d(d, params, fake_in, fake_cond, k_drop, stats)
            if self.adversarial.accepts_real_target:
                adv = self.adversarial.discriminator(real_out["score"], fake_out["score"], gc.real_target)
            else:
                adv = self.adversarial.discriminator(real_out["score"], fake_out["score"])
            aux = {"d_real_score": real_out["score"].mean(), "d_fake_score": fake_out["score"].mean()}
            loss = adv
            if gc.gp_weight:
                critic = lambda x: self._d(d, params, x, real_cond, k_drop, stats)[0]["score"]
                gp = losses.gradient_penalty(critic, real_in, fake_in, k_gp)
                aux.update(d_adv_loss=adv, gradient_penalty=gp)
                loss = adv + gc.gp_weight * gp
            loss = self._add_terms(loss, aux, self.d_aux_terms(real_out, fake_out, real_batch, parts), "d")
            return loss, (stats, aux)

        (loss, (stats, aux)), grads = jax.value_and_grad(loss_fn, has_aux=True)(d.params)
        return d.apply_gradients(grads, batch_stats=stats), dict(aux, d_loss=loss)

    def _g_loss_of_images(self, d: NetState, fake, parts, key, sigma):
        """L_G(D(G(p) + noise)) as a function of the generated images: (loss, metrics)."""
        k_noise, k_drop = jax.random.split(key)
        out, _ = self._d(d, d.params, self._d_input(fake, k_noise, sigma), self._d_condition(parts), k_drop)
        metrics: dict[str, Any] = {}
        loss = self.adversarial.generator(out["score"])
        loss = self._add_terms(loss, metrics, self.g_aux_terms(out, parts), "g")
        return loss, metrics

    def train_step(self, state: GANState, batch: dict) -> tuple[GANState, dict]:
        """batch['image']: [d_steps, B, H, W, C] in [-1, 1] (and 'label' / 'attributes':
        [d_steps, B, ...]).

        The last D update's fakes are kept with their pullback (`jax.vjp`) and reused by the
        first G update. Further G updates (g_steps > 1) draw new latents.
        """
        gc = self.config.gan
        key = state.step_key()
        sigma = instance_noise_std(state.step, gc.instance_noise, gc.instance_noise_anneal_steps)
        batch_size = batch["image"].shape[1]
        micro = [jax.tree.map(lambda x, i=i: x[i], batch) for i in range(gc.d_steps)]
        g, d = state.generator, state.discriminator
        metrics = {}
        for i in range(gc.d_steps):
            k_z, k_d = jax.random.split(jax.random.fold_in(key, i))
            parts = self.latent.sample(k_z, batch_size, **self.latent.condition_parts(micro[i]))
            generate = lambda params, parts=parts: self._generate_train(g, params, parts)
            if i == gc.d_steps - 1:
                fake, pullback, g_stats = jax.vjp(generate, g.params, has_aux=True)
            else:
                fake, _ = generate(g.params)
            d, m = self._d_update(d, micro[i], fake, parts, k_d, sigma)
            metrics = mean_over_updates(metrics, m, gc.d_steps)
        g_fixed = self.latent.condition_parts(micro[-1])  # G learns the conditions in the data's proportions
        for j in range(gc.g_steps):
            k_z, k_g = jax.random.split(jax.random.fold_in(key, 1000 + j))
            if j == 0:
                (loss, m), d_fake = jax.value_and_grad(self._g_loss_of_images, argnums=1, has_aux=True)(
                    d, fake, parts, k_g, sigma
                )
                (grads,) = pullback(d_fake)
            else:
                parts = self.latent.sample(k_z, batch_size, **g_fixed)

                def loss_fn(params, parts=parts):
                    fake, stats = self._generate_train(g, params, parts)
                    loss, m = self._g_loss_of_images(d, fake, parts, k_g, sigma)
                    return loss, (stats, m)

                (loss, (g_stats, m)), grads = jax.value_and_grad(loss_fn, has_aux=True)(g.params)
            g = g.apply_gradients(grads, batch_stats=g_stats)
            metrics = mean_over_updates(metrics, dict(m, g_loss=loss), gc.g_steps)
        if gc.instance_noise:
            metrics["instance_noise"] = sigma
        return state.replace(step=state.step + 1, generator=g, discriminator=d), metrics

    # ---------------------------------------------------------------------------------------
    # Generation.
    # ---------------------------------------------------------------------------------------

    def generate(self, state: GANState, parts: dict) -> jax.Array:
        """Images in [-1, 1] from G in inference mode (running batch statistics)."""
        g = state.generator
        return g.apply_fn(g.variables, self.latent.vector(parts), self._condition(parts), train=False)
