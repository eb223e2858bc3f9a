"""CycleGAN (Zhu et al. 2017) with report 001's fixes, and the Wasserstein CycleGAN.

Unpaired translation between domain A (`data.domain_a`, e.g. FER2013 Neutral) and domain B
(`data.domain_b`, e.g. Happy): generators G: A -> B and F: B -> A (`models/cyclegan.py`
ResNet-n), PatchGAN discriminators D_B (judges B: real b vs G(a)) and D_A (real a vs F(b)).

State (one `CycleGANState`, so a resumed run continues exactly): `g_ab` = G (A -> B),
`g_ba` = F (B -> A), `d_a`, `d_b`, and the image pools `pool_a` / `pool_b` of past fakes for
D_A / D_B (`ImagePool`: [pool_size, H, W, C] images and how many slots are filled).

Objective (per train step, all means over the batch):
  L_G,F = adv(D_B(G(a))) + adv(D_A(F(b)))
        + cycle_weight * (cyc_A + cyc_B)
        + identity_weight * cycle_weight * (|G(b) - b|_1 + |F(a) - a|_1)
  cyc_A = |F(G(a)) - a|_1, or with `cyclegan.weighted_cycle` report 001's
        D_A(a) * [gamma |f_DA(F(G(a))) - f_DA(a)|_1 + (1 - gamma) |F(G(a)) - a|_1],
        gamma = clip(step / gamma_steps, 0, 1) (`losses.weighted_cycle_loss`); cyc_B likewise.
  gan.loss = least_squares (LSGAN, as the reference): adv(s) = E(s - 1)^2 for G (the
    reference's MSE; `2 * least_squares_generator_loss`), and for each D
    1/2 E(D(x) - t)^2 + 1/2 E(D(pool(fake)))^2 with t = gan.real_target (0.9: soft real labels).
  gan.loss = wasserstein: critics with a raw score, adv(s) = -E s, critic loss
    E D(fake) - E D(real) + gp_weight * GP (`losses.gradient_penalty`), optional weight
    clipping (gan.weight_clip), gan.d_steps critic updates per G update.

Order of one step (the reference's for d_steps = 1): for each of the first d_steps - 1 micro
batches the critics are updated on fakes of the current generators; on the last one, the
generators make their fakes and are updated, then the critics are updated on those fakes
(through the image pools). So exactly d_steps critic updates lie between two G updates.
The image pool is the reference's `ImagePool`: while not full, store the new fake and return
it; then with probability 1/2 return a random stored fake and store the new one in its place,
otherwise return the new fake. It draws from the step's key: pure, jit-able, resumable.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import ml_collections
from flax import struct

from ganjax import gans, losses, optim
from ganjax.gans.adversarial import check_adversarial_config
from ganjax.gans.base import Algorithm, mean_over_updates
from ganjax.models.cyclegan import SAMPLINGS, PatchDiscriminator, ResnetGenerator
from ganjax.train_state import NetState, RunState, init_step_and_rng

_LOSSES = ("least_squares", "wasserstein")


# --------------------------------------------------------------------------------------------
# The image pool (pure functions of arrays).
# --------------------------------------------------------------------------------------------


def image_pool_query(
    pool: jax.Array, count: jax.Array, images: jax.Array, key: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The reference `ImagePool.query`, one image after the other: (returned, pool, count).

    `pool` [P, H, W, C], `count` int32 (filled slots), `images` [N, H, W, C]. Image i: if the
    pool is not full it is stored at slot `count` and returned; otherwise with probability
    1/2 a uniformly chosen stored image is returned and replaced by image i, else image i is
    returned. P = 0 returns `images` unchanged.
    """
    size = pool.shape[0]
    if size == 0:
        return images, pool, count
    images = jax.lax.stop_gradient(images)
    keys = jax.random.split(key, images.shape[0])

    def one(carry, inputs):
        pool, count = carry
        image, k = inputs
        k_swap, k_slot = jax.random.split(k)
        full = count >= size
        swap = full & (jax.random.uniform(k_swap) > 0.5)
        slot = jnp.where(full, jax.random.randint(k_slot, (), 0, size), jnp.minimum(count, size - 1))
        stored = pool[slot]
        out = jnp.where(swap, stored, image)
        write = swap | ~full
        pool = pool.at[slot].set(jnp.where(write, image, stored))
        return (pool, count + (~full).astype(count.dtype)), out

    (pool, count), returned = jax.lax.scan(one, (pool, count), (images, keys))
    return returned, pool, count


@struct.dataclass
class ImagePool:
    """Past fakes shown to a discriminator: `images` [P, H, W, C], `count` filled slots (int32)."""

    images: jax.Array
    count: jax.Array

    @classmethod
    def empty(cls, size: int, image_shape) -> "ImagePool":
        return cls(jnp.zeros((size, *image_shape), jnp.float32), jnp.zeros((), jnp.int32))

    def query(self, fakes: jax.Array, key: jax.Array) -> tuple[jax.Array, "ImagePool"]:
        """(images to show D, the updated pool): `image_pool_query` on this pool."""
        returned, images, count = image_pool_query(self.images, self.count, fakes, key)
        return returned, ImagePool(images, count)


@struct.dataclass
class CycleGANState(RunState):
    """G: A -> B (`g_ab`), F: B -> A (`g_ba`), D_A, D_B and their image pools."""

    g_ab: NetState
    g_ba: NetState
    d_a: NetState
    d_b: NetState
    pool_a: ImagePool
    pool_b: ImagePool


def apply_batched(apply, *batches):
    """[apply(x) for x in batches] from one call on their concatenation.

    Exact for networks without cross-example statistics (instance norm, no batch norm), as
    both CycleGAN networks are; one call of batch 2N runs faster than two of batch N on CPU
    (larger matrix products, kernel transforms done once). `apply` may return a tuple.
    """
    sizes = np.cumsum([x.shape[0] for x in batches])[:-1]
    out = apply(jnp.concatenate(batches))
    split = lambda y: jnp.split(y, sizes)
    if isinstance(out, tuple):
        return list(zip(*(split(y) for y in out)))
    return split(out)


# --------------------------------------------------------------------------------------------
# The algorithm.
# --------------------------------------------------------------------------------------------


@gans.register("cyclegan")
class CycleGAN(Algorithm):
    """See the module docstring. `config.cyclegan`, `config.gan`, `config.optim` drive it."""

    config_section = "cyclegan"
    DEFAULTS = {"gan.loss": "least_squares"}
    TINY = {"cyclegan.g_width": 8, "cyclegan.d_width": 8, "cyclegan.g_blocks": 1, "data.batch_size": 4}
    can_translate = True

    @classmethod
    def default_config(cls) -> ml_collections.ConfigDict:
        """`config.cyclegan`: its networks and loss weights (docs/cyclegan.md). Its adversarial
        loss is gan.loss (least_squares or wasserstein), critic steps gan.d_steps, soft real
        labels gan.real_target, WGAN-GP / clipping gan.gp_weight / gan.weight_clip."""
        c = ml_collections.ConfigDict()
        c.g_width = 64  # channels of the generators' first layer (ngf)
        c.g_blocks = 6  # residual blocks per generator (6 or 9 in the reference)
        c.d_width = 64  # channels of the PatchGAN's first layer (ndf)
        c.d_layers = 3  # stride-2 convs of the PatchGAN (3 = 70x70 patches)
        c.sampling = "k4"  # G resampling: k4 (4x4 stride-2 UpConv/DownConv) | k3 (reference 3x3 forms)
        c.cycle_weight = 10.0  # lambda_cycle on the L1 cycle loss (each direction)
        c.identity_weight = 0.5  # identity loss weight as a fraction of cycle_weight; 0 = off
        c.pool_size = 50  # past fakes stored per discriminator (image pool); 0 = off
        c.weighted_cycle = False  # report 001's weighted cycle loss (D feature + pixel terms)
        c.gamma_steps = 0  # weighted cycle: steps over which gamma rises 0 -> 1; 0 = train.num_steps
        c.sample_split = ""  # split whose first images make the sample grid; "" = data.split
        return c

    def __init__(self, config, data_info):
        super().__init__(config, data_info)
        cc, gc = config.cyclegan, config.gan
        check_adversarial_config(gc, _LOSSES)
        self.wasserstein = gc.loss == "wasserstein"
        if not self.wasserstein and (gc.gp_weight or gc.weight_clip):
            raise ValueError(
                "config.gan.gp_weight / weight_clip are for gan.loss=wasserstein; set them to 0."
            )
        if cc.sampling not in SAMPLINGS:
            raise ValueError(f"config.cyclegan.sampling must be one of {list(SAMPLINGS)}, got {cc.sampling!r}.")
        if cc.pool_size < 0 or cc.identity_weight < 0 or cc.cycle_weight < 0:
            raise ValueError("config.cyclegan pool_size, identity_weight, cycle_weight must be >= 0.")
        if cc.g_blocks < 0 or cc.d_layers < 1:
            raise ValueError("config.cyclegan.g_blocks must be >= 0 and d_layers >= 1.")
        h, w, channels = data_info.image_shape
        if h % 4 or w % 4:
            raise ValueError(f"CycleGAN needs image sides that are multiples of 4, got {h}x{w}.")
        if min(h, w) < 3 * 2**cc.d_layers:
            raise ValueError(
                f"{h}x{w} images are too small for a PatchGAN with {cc.d_layers} stride-2 layers "
                f"(needs >= {3 * 2**cc.d_layers} px); lower config.cyclegan.d_layers."
            )
        impl = config.model.conv_impl
        self.generator = ResnetGenerator(
            channels=channels, width=cc.g_width, num_blocks=cc.g_blocks, sampling=cc.sampling,
            conv_impl=impl,
        )
        self.discriminator = PatchDiscriminator(width=cc.d_width, num_layers=cc.d_layers, conv_impl=impl)
        self.image_shape = tuple(data_info.image_shape)
        self.n_micro = gc.d_steps
        self.gamma_steps = cc.gamma_steps or config.train.num_steps

    # ---------------------------------------------------------------------------------------
    # Input: two domains.
    # ---------------------------------------------------------------------------------------

    @classmethod
    def data_info(cls, config):
        """Domain A's DataInfo (domain B must have the same image shape; checked by the data)."""
        from ganjax.data import pipeline

        return pipeline.open_domain(config.data, "a").info

    def train_batches(self, mesh, start_step: int):
        from ganjax.data import pipeline

        _, _, batches = pipeline.build_two_domain_data(
            self.config, mesh, n_micro=self.n_micro, start_step=start_step
        )
        return batches

    def example_batch(self, key: jax.Array, batch_size: int) -> dict:
        shape = (self.n_micro, batch_size, *self.image_shape)
        return {
            "a": jax.random.uniform(key, shape, jnp.float32, -1.0, 1.0),
            "b": jax.random.uniform(jax.random.fold_in(key, 1), shape, jnp.float32, -1.0, 1.0),
        }

    # ---------------------------------------------------------------------------------------
    # State.
    # ---------------------------------------------------------------------------------------

    def init_state(self, rng: jax.Array) -> CycleGANState:
        cfg = self.config
        step, base = init_step_and_rng(cfg.seed)
        k_g, k_f, k_db, k_da = jax.random.split(rng, 4)
        images = jnp.zeros((1, *self.image_shape), jnp.float32)
        g_tx, d_tx = optim.make_optimizers(cfg, d_updates_per_step=self.n_micro)

        def g(key):
            return NetState.create(self.generator.apply, self.generator.init(key, images), g_tx)

        def d(key):
            return NetState.create(self.discriminator.apply, self.discriminator.init(key, images), d_tx)

        # Distinct buffers for every leaf: the loop donates the state to the step.
        pool = lambda: ImagePool.empty(cfg.cyclegan.pool_size, self.image_shape)
        return CycleGANState(
            step=step, rng=base, g_ab=g(k_g), g_ba=g(k_f), d_a=d(k_da), d_b=d(k_db),
            pool_a=pool(), pool_b=pool(),
        )

    # ---------------------------------------------------------------------------------------
    # Training.
    # ---------------------------------------------------------------------------------------

    def _adv_g(self, scores):
        if self.wasserstein:
            return losses.wasserstein_generator_loss(scores)
        return 2.0 * losses.least_squares_generator_loss(scores, 1.0)  # reference: MSE(D, 1)

    def _d_update(self, d: NetState, real, fake, key):
        """One update of a discriminator / critic on real images and (pooled) fakes."""
        gc = self.config.gan

        def loss_fn(params):
            apply = lambda x: d.apply_fn({"params": params}, x)
            real_scores, fake_scores = apply_batched(apply, real, fake)
            aux = {"real_score": real_scores.mean(), "fake_score": fake_scores.mean()}
            if self.wasserstein:
                loss = losses.wasserstein_critic_loss(real_scores, fake_scores)
                if gc.gp_weight:
                    gp = losses.gradient_penalty(apply, real, fake, key)
                    aux["gradient_penalty"] = gp
                    loss = loss + gc.gp_weight * gp
            else:
                loss = losses.least_squares_discriminator_loss(
                    real_scores, fake_scores, a=0.0, b=gc.real_target
                )
            return loss, aux

        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(d.params)
        return d.apply_gradients(grads), dict(aux, loss=loss)

    def _d_updates(self, state: CycleGANState, a, b, fake_b, fake_a, key):
        """Pools the fakes and updates D_B (b vs G(a)) and D_A (a vs F(b))."""
        k_pa, k_pb, k_gb, k_ga = jax.random.split(key, 4)
        fake_b, pool_b = state.pool_b.query(fake_b, k_pb)
        fake_a, pool_a = state.pool_a.query(fake_a, k_pa)
        d_b, m_b = self._d_update(state.d_b, b, fake_b, k_gb)
        d_a, m_a = self._d_update(state.d_a, a, fake_a, k_ga)
        metrics = {f"d_b_{k}": v for k, v in m_b.items()}
        metrics.update({f"d_a_{k}": v for k, v in m_a.items()})
        return state.replace(d_a=d_a, d_b=d_b, pool_a=pool_a, pool_b=pool_b), metrics

    def _g_loss(self, g_params, f_params, state: CycleGANState, a, b, gamma):
        cc = self.config.cyclegan
        g, f, d_a, d_b = state.g_ab, state.g_ba, state.d_a, state.d_b
        G = lambda x: g.apply_fn({"params": g_params}, x)
        F = lambda x: f.apply_fn({"params": f_params}, x)
        if cc.identity_weight:  # G(b) and F(a) ride along with G(a) and F(b)
            fake_b, idt_b = apply_batched(G, a, b)
            fake_a, idt_a = apply_batched(F, b, a)
        else:
            fake_b, fake_a = G(a), F(b)
        rec_a, rec_b = F(fake_b), G(fake_a)
        adv_b = self._adv_g(d_b.apply_fn(d_b.variables, fake_b))
        adv_a = self._adv_g(d_a.apply_fn(d_a.variables, fake_a))
        if cc.weighted_cycle:

            def weighted(d, rec, real):
                apply = lambda x: d.apply_fn(d.variables, x, features=True)
                (score_real, feat_real), (_, feat_rec) = apply_batched(apply, real, rec)
                return losses.weighted_cycle_loss(rec, real, feat_rec, feat_real, score_real, gamma)

            cyc_a, cyc_b = weighted(d_a, rec_a, a), weighted(d_b, rec_b, b)
        else:
            cyc_a = losses.cycle_consistency_loss(rec_a, a)
            cyc_b = losses.cycle_consistency_loss(rec_b, b)
        loss = adv_a + adv_b + cc.cycle_weight * (cyc_a + cyc_b)
        metrics = {"g_adv_b": adv_b, "g_adv_a": adv_a, "cycle_a": cyc_a, "cycle_b": cyc_b}
        if cc.identity_weight:
            idt = losses.identity_loss(idt_b, b) + losses.identity_loss(idt_a, a)
            loss = loss + cc.identity_weight * cc.cycle_weight * idt
            metrics["identity"] = idt
        fakes = (jax.lax.stop_gradient(fake_b), jax.lax.stop_gradient(fake_a))
        return loss, (fakes, metrics)

    def train_step(self, state: CycleGANState, batch: dict) -> tuple[CycleGANState, dict]:
        """batch['a'], batch['b']: [d_steps, B, H, W, C] in [-1, 1]."""
        key = state.step_key()
        n = self.n_micro
        metrics: dict = {}
        for i in range(n - 1):  # extra critic updates (Wasserstein d_steps > 1)
            a, b = batch["a"][i], batch["b"][i]
            fake_b = state.g_ab.apply_fn(state.g_ab.variables, a)
            fake_a = state.g_ba.apply_fn(state.g_ba.variables, b)
            state, m = self._d_updates(state, a, b, fake_b, fake_a, jax.random.fold_in(key, i))
            metrics = mean_over_updates(metrics, m, n)
        a, b = batch["a"][n - 1], batch["b"][n - 1]
        gamma = losses.weighted_cycle_gamma(state.step, self.gamma_steps)
        (g_loss, ((fake_b, fake_a), g_metrics)), (g_grads, f_grads) = jax.value_and_grad(
            self._g_loss, argnums=(0, 1), has_aux=True
        )(state.g_ab.params, state.g_ba.params, state, a, b, gamma)
        state = state.replace(
            g_ab=state.g_ab.apply_gradients(g_grads), g_ba=state.g_ba.apply_gradients(f_grads)
        )
        state, m = self._d_updates(state, a, b, fake_b, fake_a, jax.random.fold_in(key, n - 1))
        metrics = mean_over_updates(metrics, m, n)
        metrics.update(g_metrics, g_loss=g_loss)
        metrics["d_loss"] = metrics["d_a_loss"] + metrics["d_b_loss"]
        if self.config.cyclegan.weighted_cycle:
            metrics["gamma"] = gamma
        return state.replace(step=state.step + 1), metrics

    # ---------------------------------------------------------------------------------------
    # Translation and grids.
    # ---------------------------------------------------------------------------------------

    def translate(self, state: CycleGANState, images: jax.Array, direction: str = "a2b") -> jax.Array:
        """G(images) for "a2b", F(images) for "b2a"."""
        net = state.g_ab if direction == "a2b" else state.g_ba
        return net.apply_fn(net.variables, images)

    def grid_inputs(self, key: jax.Array, cols: int) -> tuple[dict, int]:
        """The first `cols` images of each domain in `cyclegan.sample_split` (file order).

        The grid has `cols` rows, each [real a | G(a) | F(G(a)) | real b | F(b) | G(F(b))].
        """
        del key
        from ganjax.data import pipeline

        data = self.config.data
        split = self.config.cyclegan.sample_split or data.split
        out = {}
        for domain in "ab":
            ds, _ = pipeline.load_domain_split(data, domain, split)
            images = np.stack([ex["image"] for ex in ds.take(cols).as_numpy_iterator()])
            images = np.resize(images, (cols, *images.shape[1:]))  # repeats a short split
            out[domain] = jnp.asarray(images.astype(np.float32) / 127.5 - 1.0)
        return out, cols

    def grid(self, state: CycleGANState, inputs: dict) -> jax.Array:
        """[n * 6, H, W, C]: per example a, G(a), F(G(a)), b, F(b), G(F(b)) (row-major)."""
        a, b = inputs["a"], inputs["b"]
        fake_b, fake_a = self.translate(state, a, "a2b"), self.translate(state, b, "b2a")
        rec_a, rec_b = self.translate(state, fake_b, "b2a"), self.translate(state, fake_a, "a2b")
        rows = jnp.stack([a, fake_b, rec_a, b, fake_a, rec_b], axis=1)
        return rows.reshape(-1, *a.shape[1:])
