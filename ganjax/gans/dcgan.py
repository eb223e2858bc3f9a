"""The DCGAN family as one algorithm: DCGAN, cGAN/cDCGAN, LSGAN, WGAN, WGAN-GP, hinge GAN.

Chosen by config (MISSION rows 003 and 004):

* `gan.loss`: minimax | non_saturating | least_squares | wasserstein | hinge (`losses.py`);
* `gan.conditional`: labels fed to G and D (dense + reshape + concatenate, report 004);
* `gan.real_target` < 1: one-sided label smoothing (soft real targets, e.g. 0.9);
* `gan.gp_weight` > 0: WGAN-GP gradient penalty; `gan.weight_clip` > 0: WGAN weight clipping;
* `gan.d_steps` / `gan.g_steps`: D and G updates per train step (WGAN's 5 critic steps, or
  report 004's extra G steps); each D update gets its own real batch;
* `gan.instance_noise` sigma_0 and `gan.instance_noise_anneal_steps` T: Gaussian noise of std
  sigma_0 * max(0, 1 - step / T) (constant if T = 0) added to every D input;
* `optim.g_lr` / `optim.d_lr`: separate learning rates;
* `model.*`: every architecture knob of report 003 (see `models/dcgan.py`).

One train step: for each of d_steps real batches, draw z, make G(z) and update D on
L_D(D(x), D(G(z))) [+ gp_weight * GP]; then g_steps times update G on L_G(D(G(z))), the first
time on the last D update's G(z) (as PyTorch's DCGAN does), later ones on new z.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ganjax import gans, losses, optim
from ganjax.models.dcgan import Discriminator, Generator
from ganjax.train_state import GANState, NetState, init_step_and_rng

# conv_impl "fast" picks the CPU-friendly equivalent forms (models/layers.py), "native" XLA's ops.
_CONV_IMPLS = ("fast", "native")


def instance_noise_std(step: jax.Array, sigma0: float, anneal_steps: int) -> jax.Array:
    """sigma(step) = sigma0 * max(0, 1 - step / anneal_steps); constant sigma0 if no annealing."""
    if anneal_steps <= 0:
        return jnp.asarray(sigma0, jnp.float32)
    return sigma0 * jnp.maximum(0.0, 1.0 - step.astype(jnp.float32) / anneal_steps)


@gans.register("dcgan")
class DCGAN:
    """See the module docstring. `config.gan`, `config.model`, `config.optim` drive it."""

    def __init__(self, config, data_info):
        self.config = config
        self.info = data_info
        gc, mc = config.gan, config.model
        if mc.conv_impl not in _CONV_IMPLS:
            raise ValueError(
                f"config.model.conv_impl must be one of {list(_CONV_IMPLS)}, got {mc.conv_impl!r}."
            )
        if gc.conditional and not data_info.num_classes:
            raise ValueError(
                f"config.gan.conditional=True but dataset {data_info.name!r} has no class labels."
            )
        self.adversarial = losses.get_adversarial_loss(gc.loss)
        if gc.real_target != 1.0 and not self.adversarial.accepts_real_target:
            raise ValueError(
                f"config.gan.real_target={gc.real_target} (label smoothing) has no meaning for the "
                f"{gc.loss!r} loss; set it to 1.0."
            )
        if gc.d_steps < 1 or gc.g_steps < 1:
            raise ValueError("config.gan.d_steps and config.gan.g_steps must be at least 1.")
        self.num_classes = data_info.num_classes if gc.conditional else 0
        height, width, channels = data_info.image_shape
        if height != width:
            raise ValueError(f"DCGAN needs square images, got {height}x{width}.")
        self.generator = Generator(
            image_size=height,
            channels=channels,
            width=mc.g_width,
            num_classes=self.num_classes,
            batch_norm=mc.g_batch_norm,
            conv_impl=mc.conv_impl,
        )
        self.discriminator = Discriminator(
            width=mc.d_width,
            depth=mc.d_depth or None,
            num_classes=self.num_classes,
            batch_norm=mc.d_batch_norm,
            dropout=mc.d_dropout,
            spectral_norm=mc.spectral_norm,
            output=mc.d_output,
            conv_impl=mc.conv_impl,
        )
        self.image_shape = data_info.image_shape
        self.n_micro = gc.d_steps

    # ---------------------------------------------------------------------------------------
    # State.
    # ---------------------------------------------------------------------------------------

    def init_state(self, rng: jax.Array) -> GANState:
        cfg = self.config
        step, base = init_step_and_rng(cfg.seed)
        g_key, d_key = jax.random.split(rng)
        z = jnp.zeros((2, cfg.model.z_dim), jnp.float32)
        labels = jnp.zeros((2,), jnp.int32)
        images = jnp.zeros((2, *self.image_shape), jnp.float32)
        g_vars = self.generator.init(g_key, z, labels, train=False)
        d_vars = self.discriminator.init(d_key, images, labels, train=False)
        num_steps = cfg.train.num_steps
        g_tx = optim.make_optimizer(cfg.optim, cfg.optim.g_lr, num_steps)
        d_tx = optim.make_optimizer(
            cfg.optim, cfg.optim.d_lr, num_steps * cfg.gan.d_steps, cfg.gan.weight_clip
        )
        return GANState(
            step=step,
            rng=base,
            generator=NetState.create(self.generator.apply, g_vars, g_tx),
            discriminator=NetState.create(self.discriminator.apply, d_vars, d_tx),
        )

    # ---------------------------------------------------------------------------------------
    # Training.
    # ---------------------------------------------------------------------------------------

    def _z(self, key, n):
        return jax.random.normal(key, (n, self.config.model.z_dim), jnp.float32)

    def _d(self, d: NetState, params, images, labels, key, batch_stats=None):
        """D in training mode; returns (scores, new batch_stats)."""
        variables = {"params": params}
        stats = d.batch_stats if batch_stats is None else batch_stats
        if stats:
            variables["batch_stats"] = stats
        scores, updates = d.apply_fn(
            variables, images, labels, train=True, mutable=["batch_stats"], rngs={"dropout": key}
        )
        return scores, updates.get("batch_stats", stats)

    def _noisy(self, images, key, sigma):
        return images + sigma * jax.random.normal(key, images.shape, images.dtype)

    def _generate_train(self, g: NetState, params, z, labels):
        """G(z) in training mode; returns (images, new batch_stats)."""
        variables = {"params": params}
        if g.batch_stats:
            variables["batch_stats"] = g.batch_stats
        fake, updates = g.apply_fn(variables, z, labels, train=True, mutable=["batch_stats"])
        return fake, updates.get("batch_stats", g.batch_stats)

    def _d_update(self, d: NetState, real, fake, labels, key, sigma):
        gc = self.config.gan
        k_real, k_fake, k_drop, k_gp = jax.random.split(key, 4)
        fake = jax.lax.stop_gradient(fake)
        real_in, fake_in = self._noisy(real, k_real, sigma), self._noisy(fake, k_fake, sigma)

        def loss_fn(params):
            real_scores, stats = self._d(d, params, real_in, labels, k_drop)
            fake_scores, stats = self._d(d, params, fake_in, labels, k_drop, stats)
            if self.adversarial.accepts_real_target:
                adv = self.adversarial.discriminator(real_scores, fake_scores, gc.real_target)
            else:
                adv = self.adversarial.discriminator(real_scores, fake_scores)
            gp = jnp.zeros(())
            if gc.gp_weight:
                critic = lambda x: self._d(d, params, x, labels, k_drop, stats)[0]
                gp = losses.gradient_penalty(critic, real_in, fake_in, k_gp)
            aux = {"d_real_score": real_scores.mean(), "d_fake_score": fake_scores.mean()}
            if gc.gp_weight:
                aux.update(d_adv_loss=adv, gradient_penalty=gp)
            return adv + gc.gp_weight * gp, (stats, aux)

        (loss, (stats, aux)), grads = jax.value_and_grad(loss_fn, has_aux=True)(d.params)
        return d.apply_gradients(grads, batch_stats=stats), dict(aux, d_loss=loss)

    def _g_loss_of_images(self, d: NetState, fake, labels, key, sigma):
        """L_G(D(G(z) + noise)) as a function of the generated images."""
        k_noise, k_drop = jax.random.split(key)
        scores, _ = self._d(d, d.params, self._noisy(fake, k_noise, sigma), labels, k_drop)
        return self.adversarial.generator(scores)

    def train_step(self, state: GANState, batch: dict) -> tuple[GANState, dict]:
        """batch['image']: [d_steps, B, H, W, C] in [-1, 1]; batch['label']: [d_steps, B].

        The last D update's fakes are kept with their pullback (`jax.vjp`) and reused by the
        first G update, as PyTorch's DCGAN does: one G forward pass fewer per step. Further G
        updates (g_steps > 1) draw new z.
        """
        gc = self.config.gan
        key = state.step_key()
        sigma = instance_noise_std(state.step, gc.instance_noise, gc.instance_noise_anneal_steps)
        images = batch["image"]
        labels = batch["label"] if self.num_classes else jnp.zeros(images.shape[:2], jnp.int32)
        batch_size = images.shape[1]
        g, d = state.generator, state.discriminator
        metrics = {}
        for i in range(gc.d_steps):
            k_z, k_d = jax.random.split(jax.random.fold_in(key, i))
            z = self._z(k_z, batch_size)
            generate = lambda params: self._generate_train(g, params, z, labels[i])
            if i == gc.d_steps - 1:
                fake, pullback, g_stats = jax.vjp(generate, g.params, has_aux=True)
            else:
                fake, _ = generate(g.params)
            d, m = self._d_update(d, images[i], fake, labels[i], k_d, sigma)
            metrics = _accumulate(metrics, m, gc.d_steps)
        g_labels = labels[-1]  # G learns the classes in the proportions the data has them
        for j in range(gc.g_steps):
            k_z, k_g = jax.random.split(jax.random.fold_in(key, 1000 + j))
            if j == 0:
                loss, d_fake = jax.value_and_grad(self._g_loss_of_images, argnums=1)(
                    d, fake, g_labels, k_g, sigma
                )
                (grads,) = pullback(d_fake)
            else:
                z = self._z(k_z, batch_size)

                def loss_fn(params):
                    fake, stats = self._generate_train(g, params, z, g_labels)
                    return self._g_loss_of_images(d, fake, g_labels, k_g, sigma), stats

                (loss, g_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(g.params)
            g = g.apply_gradients(grads, batch_stats=g_stats)
            metrics = _accumulate(metrics, {"g_loss": loss}, gc.g_steps)
        if gc.instance_noise:
            metrics["instance_noise"] = sigma
        return state.replace(step=state.step + 1, generator=g, discriminator=d), metrics

    # ---------------------------------------------------------------------------------------
    # Sampling.
    # ---------------------------------------------------------------------------------------

    def sample_inputs(self, key: jax.Array, cols: int) -> tuple[dict, int]:
        """Fixed grid inputs: one row per class (conditional) or `cols` rows (unconditional)."""
        rows = self.num_classes or cols
        labels = jnp.repeat(jnp.arange(rows, dtype=jnp.int32), cols) if self.num_classes else (
            jnp.zeros((rows * cols,), jnp.int32)
        )
        return {"z": self._z(key, rows * cols), "label": labels}, rows

    def random_inputs(self, key: jax.Array, labels: jax.Array) -> dict:
        """Inputs for `generate` that produce one sample of each requested label."""
        return {"z": self._z(key, labels.shape[0]), "label": labels.astype(jnp.int32)}

    def generate(self, state: GANState, inputs: dict) -> jax.Array:
        """Images in [-1, 1] from G in inference mode (running batch statistics)."""
        g = state.generator
        return g.apply_fn(g.variables, inputs["z"], inputs["label"], train=False)


def _accumulate(total: dict, new: dict, count: int) -> dict:
    """Running mean of per-update metrics over `count` updates."""
    out = dict(total)
    for k, v in new.items():
        out[k] = out.get(k, 0.0) + v / count
    return out
