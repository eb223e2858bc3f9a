"""The predictor (image -> latent, G^-1) trained against a frozen generator, and the job that
trains it on a GAN's workdir (report 000's separate predictor; docs/references.md).

    python launch.py --config=configs/infogan_mnist.py --workdir=W                 # the GAN
    python launch.py --config=configs/infogan_mnist.py --workdir=W --config.job=train_predictor

The second command (the GAN's own command plus `--config.job=train_predictor`) trains the
algorithm `gan.name=predictor` through the one loop (`ganjax/train.py`: checkpoints, exact
resume, NaN stop) as its own run in `W/predictor/` (`jobs.train_predictor.output`); re-running it
resumes. Its state is a `GANState` whose `generator` and `discriminator` are the GAN's
(restored from W's checkpoint `config.restore`, frozen: no optimizer state, never updated; G
runs in inference mode) and whose `predictor` slot is the network of `models/predictor.py`
(strided convs down from the image, dense to `latent.dim` outputs).

One train step, on a real batch (x, y) and latents p = (z, c_cat, c_cont) drawn from the prior
(a conditional generator's label / attributes taken from y):

    L = latent_weight * [ 0.5 ||z_hat - z||^2 + sum_j CE(c_cat_j, logits_j) + 0.5 ||c_hat - c||^2 ]
                          on P(G(p)): G's own samples, whose latents are known
      + real_weight   * mean_i distance(G(relax(P(x_i)), y_i), x_i)
                          on real images: `distance` by name (`ganjax/distances.py`: mse, l1,
                          ssim, ms_ssim, and the feature distances)

where relax(.) replaces each categorical block of logits by its softmax, the continuous
relaxation of the one-hot input G was trained on (so the reconstruction is differentiable).
The predictor predicts z and the codes, never the condition: a conditional generator is told
the images' own labels. Both image batches go through P in one pass (its batch statistics see
real and generated images together). Logged: `latent_z`, `latent_cat`, `latent_cont`,
`latent_loss`, `cat_accuracy`, `real_<distance>`, `loss`.

After training, the job measures on a fixed set of G's samples the latent error (per part,
and relative to the prior's variance: 1 = no better than predicting the prior mean) and on
held-out real images (`eval_split`) the reconstruction distances of G(P(x)) (`eval_distances`),
and writes `W/predictor/predictor.json` and the grid `W/predictor/reconstructions.png`
(pairs original | G(P(x)), left to right).

What the jobs that read the predictor use (`runs.load_trained(W + "/predictor")`):
`algorithm.latent` (the GAN's `LatentSpec`), `algorithm.gan` (the GAN's algorithm),
`encode(state, images, condition=None)`, `encode_vector(state, images)`, `generate(state,
parts)` and `generate_vector(state, vector, condition)`; see each docstring.
"""

from __future__ import annotations

import functools
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging

from ganjax import distances, gans, losses, runs
from ganjax.errors import CheckpointError, ConfigError
from ganjax.gans.base import Algorithm, generate_from_vector
from ganjax.models.predictor import Predictor as PredictorNet
from ganjax.optim import make_optimizer
from ganjax.train_state import GANState, NetState, init_step_and_rng

# The keys of the `predictor` section that the job takes from `jobs.train_predictor` (the
# others, `generator` and `generator_restore`, come from the command's --workdir and restore).
TRAINING_KEYS = ("width", "depth", "hidden", "batch_norm", "learning_rate", "latent_weight",
                 "real_weight", "distance")


def check_weights(section, prefix: str) -> None:
    """ValueError naming `prefix.<key>` if the loss weights are negative or all zero, or the
    distance is unknown (`section`: the `predictor` section or `jobs.train_predictor`)."""
    if section.latent_weight < 0 or section.real_weight < 0:
        raise ValueError(f"{prefix}.latent_weight and {prefix}.real_weight must be >= 0.")
    if not section.latent_weight and not section.real_weight:
        raise ValueError(
            f"{prefix}.latent_weight and {prefix}.real_weight are both 0: the predictor would learn "
            f"nothing; set --{prefix}.latent_weight=1 (latents of G's samples) and/or "
            f"--{prefix}.real_weight=1 (reconstruction of real images)."
        )
    if section.real_weight and section.distance not in distances.names():
        raise ValueError(
            f"unknown {prefix}.distance {section.distance!r}; choose one of {list(distances.names())}."
        )
    if section.learning_rate <= 0:
        raise ValueError(f"{prefix}.learning_rate must be > 0, got {section.learning_rate}.")


def _frozen(net: NetState) -> NetState:
    """`net`'s parameters and statistics with no optimizer state (`optax.set_to_zero`)."""
    return NetState.create(net.apply_fn, net.variables, optax.set_to_zero())


@gans.register("predictor")
class Predictor(Algorithm):
    """See the module docstring."""

    config_section = "predictor"
    DEFAULTS = {"optim.b1": 0.9}

    @classmethod
    def default_config(cls) -> ml_collections.ConfigDict:
        c = ml_collections.ConfigDict()
        c.generator = ""  # workdir of the trained GAN (job=train_predictor sets it to --workdir)
        c.generator_restore = "latest"  # its checkpoint: latest | best | a step number
        c.width = 0  # channels of P's first conv (later ones double); 0 = the GAN's model.d_width (64 if none)
        c.depth = 0  # P's stride-2 convs; 0 = down to a 3..7 px map
        c.hidden = -1  # dense layer after P's convs; -1 = the GAN's model.d_hidden (0 if none); 0 = none
        c.batch_norm = False  # BN in P (after every conv but the first, and the hidden layer); off: with it, P in inference mode (running statistics) read z far worse than in training (InfoGAN digits, lr 1e-3: z error 1.54 vs 0.43 of the prior's)
        c.learning_rate = 1e-3  # Adam (optim.b1, optim.b2, optim.schedule)
        c.latent_weight = 1.0  # weight of the latent loss on G's own samples (z, codes known)
        c.real_weight = 10.0  # weight of distance(G(P(x)), x) on real images (10 vs 1: held-out MSE 0.126 vs 0.144 at 300 steps, same latent error)
        c.distance = "mse"  # that distance (ganjax/distances.py): mse | l1 | ssim | ms_ssim | feature distances
        return c

    def __init__(self, config, data_info):
        super().__init__(config, data_info)
        pc = config.predictor
        check_weights(pc, "config.predictor")
        if not pc.generator:
            raise ValueError(
                "config.predictor.generator is empty: a predictor is trained against a trained GAN; "
                "run the GAN's command with --config.job=train_predictor (same --workdir)."
            )
        self.generator_dir = os.path.abspath(pc.generator)
        gan_config = runs.read_config(self.generator_dir)
        if gan_config.gan.name == self.name:
            raise ValueError(f"{self.generator_dir} is a predictor's run, not a GAN's.")
        gan_info = runs.read_data_info(self.generator_dir)
        if gan_info is None:
            raise ValueError(f"{self.generator_dir} holds no data_info.json: train the GAN there first.")
        self.gan = gans.create(gan_config, gan_info)
        if self.gan.latent is None:
            raise ValueError(
                f"gan.name={gan_config.gan.name!r} of {self.generator_dir} maps images to images; "
                "a predictor inverts a generator that draws from a latent."
            )
        self.latent = self.gan.latent
        self.image_shape = tuple(data_info.image_shape)
        if self.image_shape != tuple(gan_info.image_shape):
            raise ValueError(
                f"the data's images are {self.image_shape} but the generator of {self.generator_dir} "
                f"makes {tuple(gan_info.image_shape)}: use the GAN's data config."
            )
        if self.latent.num_classes and data_info.num_classes != self.latent.num_classes:
            raise ValueError(
                f"the generator is told one of {self.latent.num_classes} classes, the data has "
                f"{data_info.num_classes}: use the GAN's data config."
            )
        model = gan_config.model
        self.net = PredictorNet(
            latent_dim=self.latent.dim,
            width=pc.width or model.get("d_width", 64),
            depth=pc.depth or None,
            hidden=model.get("d_hidden", 0) if pc.hidden < 0 else pc.hidden,
            batch_norm=pc.batch_norm,
            conv_impl=config.model.conv_impl,
        )

    # ---------------------------------------------------------------------------------------
    # State.
    # ---------------------------------------------------------------------------------------

    def init_state(self, rng: jax.Array) -> GANState:
        """P initialised from `rng`; G, D (and BEGAN's k_t) from the GAN's checkpoint, frozen."""
        step, base = init_step_and_rng(self.config.seed)
        source = runs.load_trained(self.generator_dir, self.config.predictor.generator_restore).state
        images = jnp.zeros((2, *self.image_shape), jnp.float32)
        variables = self.net.init(rng, images, train=False)
        tx = make_optimizer(self.config.optim, self.config.predictor.learning_rate, self.config.train.num_steps)
        return GANState(
            step=step,
            rng=base,
            generator=_frozen(source.generator),
            discriminator=_frozen(source.discriminator),
            predictor=NetState.create(self.net.apply, variables, tx),
            k_t=getattr(source, "k_t", None),
        )

    # ---------------------------------------------------------------------------------------
    # The latent vector and its parts.
    # ---------------------------------------------------------------------------------------

    def relax(self, raw: jax.Array) -> jax.Array:
        """P's raw output [N, dim] with each categorical block of logits replaced by its
        softmax: a vector G can take (the relaxation of its one-hot blocks)."""
        return self.latent.map_categorical(raw, lambda logits, k: jax.nn.softmax(logits, axis=-1))

    def latent_terms(self, raw: jax.Array, parts: dict) -> dict[str, jax.Array]:
        """The latent loss's parts for P's output `raw` on G(parts): `z` 0.5 ||z_hat - z||^2,
        `cat` the sum over codes of CE, `cont` 0.5 ||c_hat - c||^2 (batch means; those the
        latent has)."""
        out, terms = self.latent.split(raw), {}
        if self.latent.noise:
            terms["z"] = losses.noise_recovery_loss(out["z"], parts["z"])
        if self.latent.categorical:
            terms["cat"] = sum(losses.categorical_cross_entropy(l, parts["cat"][:, j])
                               for j, l in enumerate(out["cat_logits"]))
        if self.latent.continuous:
            terms["cont"] = losses.fixed_std_gaussian_loss(out["cont"], parts["cont"])
        return terms

    # ---------------------------------------------------------------------------------------
    # Training.
    # ---------------------------------------------------------------------------------------

    @functools.cached_property
    def distance(self):
        """The reconstruction distance (built on first use: a feature distance may load or
        train its network); per example, [N]."""
        return distances.get(self.config.predictor.distance, self.gan.config, self.generator_dir,
                             image_shape=self.image_shape)

    def train_step(self, state: GANState, batch: dict) -> tuple[GANState, dict]:
        """batch['image']: [1, B, H, W, C] in [-1, 1] (and 'label' / 'attributes')."""
        pc = self.config.predictor
        real = jax.tree.map(lambda x: x[0], batch)
        x = real["image"]
        n = x.shape[0]
        condition = self.latent.condition_parts(real)
        inputs = []
        if pc.latent_weight:
            parts = self.latent.sample(state.step_key("latent"), n, **condition)
            inputs.append(jax.lax.stop_gradient(self.generate(state, parts)))
        if pc.real_weight:
            inputs.append(x)
        images = jnp.concatenate(inputs) if len(inputs) > 1 else inputs[0]
        p = state.predictor

        def loss_fn(params):
            raw, stats = p.apply_train(params, images)
            loss, metrics = 0.0, {}
            if pc.latent_weight:
                terms = self.latent_terms(raw[:n], parts)
                latent_loss = sum(terms.values())
                metrics.update({f"latent_{k}": v for k, v in terms.items()}, latent_loss=latent_loss)
                if self.latent.categorical:
                    predicted = self.latent.split(raw[:n])["cat"]
                    metrics["cat_accuracy"] = jnp.mean(predicted == parts["cat"])
                loss = loss + pc.latent_weight * latent_loss
            if pc.real_weight:
                vector = self.relax(raw[-n:])
                recon = self.generate_vector(state, vector, self.latent.condition(condition))
                d = jnp.mean(self.distance(recon, x))
                metrics[f"real_{pc.distance}"] = d
                loss = loss + pc.real_weight * d
            return loss, (stats, metrics)

        (loss, (stats, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(p.params)
        new = state.replace(step=state.step + 1, predictor=p.apply_gradients(grads, batch_stats=stats))
        return new, dict(metrics, loss=loss)

    # ---------------------------------------------------------------------------------------
    # The encoding contract (docs/encoding.md).
    # ---------------------------------------------------------------------------------------

    def predict(self, state: GANState, images: jax.Array) -> jax.Array:
        """P's raw output [N, latent.dim] (inference mode): z, categorical logits, cont."""
        p = state.predictor
        return p.apply_fn(p.variables, images, train=False)

    def encode_vector(self, state: GANState, images: jax.Array) -> jax.Array:
        """Images [N, H, W, C] in [-1, 1] -> [N, latent.dim]: z, then the softmax
        probabilities of each categorical code (not logits), then the continuous codes. The
        continuous relaxation of `latent.vector`: `generate_vector(state, encode_vector(x),
        condition)` is the reconstruction the predictor was trained on."""
        return self.relax(self.predict(state, images))

    def encode(self, state: GANState, images: jax.Array, condition=None) -> dict:
        """Images in [-1, 1] -> latent parts as `LatentSpec.split` returns them: `z`,
        `cat_logits` (one [N, K] per code), `cat` (their argmax, int [N, n_cat]), `cont`;
        plus, for a conditional generator, `label` [N] or `attributes` [N, A] = `condition`
        (the images' own, which the predictor does not predict; required then)."""
        parts = self.latent.split(self.predict(state, images))
        if self.latent.conditional:
            if condition is None:
                raise ValueError("this generator is told a label or attributes: pass the images' "
                                 "own as encode(state, images, condition).")
            parts["label" if self.latent.num_classes else "attributes"] = condition
        return parts

    def generate(self, state: GANState, parts: dict) -> jax.Array:
        """The frozen generator's images for latent parts (the GAN's `generate`)."""
        return self.gan.generate(state, parts)

    def generate_vector(self, state: GANState, vector: jax.Array, condition=None) -> jax.Array:
        """The frozen generator's images for a latent vector [N, dim], relaxed blocks allowed
        (`condition`: the label [N] or attributes [N, A] of a conditional generator), clipped
        to [-1, 1] as `generate` is (a generator with a linear output layer, e.g. BEGAN's)."""
        return generate_from_vector(state.generator, vector, condition)

    # ---------------------------------------------------------------------------------------
    # The loop's sample grid: G's samples beside their reconstructions G(P(G(p))).
    # ---------------------------------------------------------------------------------------

    def grid_inputs(self, key: jax.Array, cols: int):
        """`cols` rows of `cols // 2` pairs (sample | reconstruction)."""
        rows, pairs = cols, max(1, cols // 2)
        return self.latent.sample(key, rows * pairs), rows

    def grid(self, state: GANState, parts: dict) -> jax.Array:
        images = self.generate(state, parts)
        recon = self.generate(state, self.encode(state, images, self.latent.condition(parts)))
        return jnp.stack([images, recon], axis=1).reshape(-1, *images.shape[1:])


# --------------------------------------------------------------------------------------------
# job=train_predictor.
# --------------------------------------------------------------------------------------------


def default_config() -> ml_collections.ConfigDict:
    """`config.jobs.train_predictor`: the predictor's keys (`Predictor.default_config`, except
    the generator, which is --workdir) and the job's own."""
    c = ml_collections.ConfigDict()
    c.output = ""  # the predictor run's workdir; "" = <workdir>/predictor
    c.num_steps = 1200  # the predictor's train steps (the run's train.num_steps; more = resume and train on)
    c.batch_size = 64  # real images per step (and as many of G's samples); 0 = the GAN's data.batch_size
    section = Predictor.default_config()
    for key in TRAINING_KEYS:
        c[key] = section[key]
    c.eval_split = "test"  # held-out real images for the reconstruction figures and the grid
    c.eval_count = 500  # how many of them (at most)
    c.eval_samples = 1000  # G's samples on which the latent error is measured
    c.eval_distances = "mse,ssim,ms_ssim"  # distances measured on them (ganjax/distances.py names)
    c.grid_pairs = 32  # pairs original | G(P(x)) in reconstructions.png (8 per row)
    return c


def _check_generator(config, workdir: str) -> None:
    """A one-line error unless `workdir` holds a trained run of the config's GAN."""
    from ganjax.checkpoint import Checkpointer

    train_first = ("train the GAN there first: the same command without --config.job=train_predictor "
                   f"(config.job=train, --workdir={workdir})")
    if not os.path.exists(os.path.join(workdir, runs.CONFIG_FILE)):
        raise CheckpointError(f"{workdir} holds no trained GAN (no {runs.CONFIG_FILE}): {train_first}.")
    recorded = runs.read_config(workdir)
    if recorded.gan.name != config.gan.name:
        raise ConfigError(
            f"{workdir} holds a gan.name={recorded.gan.name!r} run, but this command's config is "
            f"gan.name={config.gan.name!r}: use the config that trained it."
        )
    directory = os.path.join(workdir, "checkpoints")
    step = None
    if os.path.isdir(directory):
        checkpointer = Checkpointer(directory, 1, read_only=True)
        try:
            step = checkpointer.latest_step()
        finally:
            checkpointer.close()
    if step is None:
        raise CheckpointError(f"{workdir} holds no checkpoint of the GAN: {train_first}.")
    if step < recorded.train.num_steps and runs.parse_restore(config.restore) is None:
        logging.warning("The GAN in %s is trained to step %d of its train.num_steps=%d; the predictor "
                        "inverts that checkpoint.", workdir, step, recorded.train.num_steps)


def predictor_config(config, generator_dir: str) -> ml_collections.ConfigDict:
    """The predictor run's config from the GAN's command: its data, seed, devices, cadences and
    conv form; the `predictor` section from `jobs.train_predictor`."""
    from ganjax.config import base_config

    jc = config.jobs.train_predictor
    c = base_config("predictor")
    c.name = f"{config.name}_predictor"
    c.seed = config.seed
    c.data = ml_collections.ConfigDict(config.data.to_dict())
    if jc.batch_size:
        c.data.batch_size = jc.batch_size
    c.mesh = ml_collections.ConfigDict(config.mesh.to_dict())
    c.distributed = config.distributed
    c.model.conv_impl = config.model.conv_impl
    for key in ("log_every", "sample_every", "checkpoint_every", "keep_checkpoints", "sample_cols"):
        c.train[key] = config.train[key]
    c.train.num_steps = jc.num_steps
    c.jobs = ml_collections.ConfigDict(config.jobs.to_dict())
    c.restore = config.restore
    for key in TRAINING_KEYS:
        c.predictor[key] = jc[key]
    c.predictor.generator = generator_dir
    c.predictor.generator_restore = str(config.restore)
    return c


def _held_out(data_config, split: str, count: int):
    """Up to `count` images of `split` in [-1, 1] with their labels and attribute vectors."""
    from ganjax.data import pipeline

    ds, _ = pipeline.load_split(data_config, split)
    rows = list(ds.take(count).batch(count).as_numpy_iterator())
    if not rows:
        raise ConfigError(f"split {split!r} of {data_config.name!r} is empty: set "
                          "--config.jobs.train_predictor.eval_split to a held-out split.")
    batch = rows[0]
    images = batch["image"].astype(np.float32) / 127.5 - 1.0
    return images, batch.get("label"), batch.get("attributes")


def _in_batches(fn, *arrays, size: int = 250):
    """`fn` (jitted) over slices of `arrays` (pytrees; None passes through) -> host arrays,
    concatenated."""
    n = len(jax.tree.leaves(arrays[0])[0])
    out = []
    for start in range(0, n, size):
        chunk = [jax.tree.map(lambda a: a[start:start + size], a) for a in arrays]
        out.append(jax.device_get(fn(*chunk)))
    return jax.tree.map(lambda *xs: np.concatenate(xs), *out)


def _mean_distances(measures: dict, a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    return {name: float(np.mean(_in_batches(m, a, b))) for name, m in measures.items()}


def evaluate(trained: runs.Trained, jc, data_config) -> dict:
    """The figures of a trained predictor (nothing written): the latent error on a fixed draw
    of G's samples, and the distances of G(P(x)) to held-out real images x (with the hard
    argmax codes, `real`, and with the softmax relaxation G was trained through,
    `real_relaxed`); also the held-out images and their reconstructions."""
    algorithm, state = trained.algorithm, trained.state
    latent = algorithm.latent
    measures = {n: jax.jit(distances.get(n, algorithm.gan.config, algorithm.generator_dir,
                                         image_shape=algorithm.image_shape))
                for n in _names(jc.eval_distances)}
    generate = jax.jit(algorithm.generate)
    predict = jax.jit(algorithm.predict)
    reconstruct = jax.jit(lambda x, c: algorithm.generate(state, algorithm.encode(state, x, c)))
    relaxed = jax.jit(lambda x, c: algorithm.generate_vector(state, algorithm.encode_vector(state, x), c))

    # Latent error on G's own samples (a fixed draw, independent of training).
    parts = latent.sample(jax.random.PRNGKey(12345), jc.eval_samples)
    condition = latent.condition(parts)
    samples = _in_batches(lambda p: generate(state, p), parts)
    raw = jnp.asarray(_in_batches(lambda x: predict(state, x), samples))
    split = latent.split(raw)
    figures = {"latent_loss": float(sum(algorithm.latent_terms(raw, parts).values()))}
    if latent.noise:
        mse = float(jnp.mean((split["z"] - parts["z"]) ** 2))
        prior_var = 1.0 if latent.noise_prior == "normal" else 1.0 / 3.0
        figures.update(z_mse=mse, z_relative_error=mse / prior_var)
    if latent.categorical:
        figures["cat_accuracy"] = [float(jnp.mean(split["cat"][:, j] == parts["cat"][:, j]))
                                   for j in range(len(latent.categorical))]
    if latent.continuous:
        mse = float(jnp.mean((split["cont"] - parts["cont"]) ** 2))
        figures.update(cont_mse=mse, cont_relative_error=mse / (1.0 / 3.0))
    again = _in_batches(reconstruct, samples, condition)
    figures.update({f"samples_{k}": v for k, v in _mean_distances(measures, again, samples).items()})

    # Reconstructions of held-out real images.
    images, labels, attributes = _held_out(data_config, jc.eval_split, jc.eval_count)
    given = labels if latent.num_classes else (attributes if latent.num_attributes else None)
    recon = _in_batches(reconstruct, images, given)
    result = {"latent_on_samples": figures, "real": _mean_distances(measures, recon, images),
              "real_count": int(len(images)), "eval_split": jc.eval_split}
    if latent.categorical:
        soft = _in_batches(relaxed, images, given)
        result["real_relaxed"] = _mean_distances(measures, soft, images)
    return result, images, recon


def _names(spec: str) -> list[str]:
    return [n.strip() for n in spec.split(",") if n.strip()]


def run(config, workdir: str) -> dict:
    """Trains (or resumes) the predictor of the GAN in `workdir`, then measures it; returns the
    summary written to `<output>/predictor.json` ({} if a signal stopped the training)."""
    from ganjax import config as config_lib, images as image_lib, train

    jc = config.jobs.train_predictor
    prefix = "config.jobs.train_predictor"
    try:
        check_weights(jc, prefix)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    unknown = [n for n in _names(jc.eval_distances) if n not in distances.names()]
    if unknown:
        raise ConfigError(f"unknown {prefix}.eval_distances {unknown}; choose from {list(distances.names())}.")
    if jc.num_steps < 1 or jc.eval_count < 1 or jc.eval_samples < 1 or jc.grid_pairs < 0:
        raise ConfigError(f"{prefix}.num_steps, eval_count and eval_samples must be >= 1, grid_pairs >= 0.")
    generator_dir = os.path.abspath(workdir)
    _check_generator(config, generator_dir)
    output = os.path.abspath(jc.output or os.path.join(generator_dir, "predictor"))
    pconfig = predictor_config(config, generator_dir)
    config_lib.validate(pconfig)
    state = train.train_and_evaluate(pconfig, output)
    if int(state.step) < jc.num_steps:  # stopped by a signal: measured by the next run
        return {}
    trained = runs.load_trained(output, "latest")
    result, images, recon = evaluate(trained, jc, pconfig.data)
    per_row = min(8, jc.grid_pairs, len(images))
    grid_path = None
    if per_row:
        n = min(jc.grid_pairs, len(images)) // per_row * per_row
        pairs = np.stack([images[:n], recon[:n]], axis=1).reshape(-1, *images.shape[1:])
        grid_path = os.path.join(output, "reconstructions.png")
        image_lib.save_png(image_lib.make_grid(pairs, n // per_row), grid_path)
    summary = {
        "generator": generator_dir, "gan": trained.algorithm.gan.name,
        "generator_restore": pconfig.predictor.generator_restore, "predictor": output,
        "predictor_step": trained.step, **result, "grid": grid_path,
        "grid_layout": f"pairs original | G(P(x)), {per_row} pairs per row",
    }
    with open(os.path.join(output, "predictor.json"), "w") as f:
        json.dump(summary, f, indent=2)
    logging.info("Predictor of %s at step %d: on G's samples %s; on %d held-out real images %s; grid %s",
                 generator_dir, trained.step, result["latent_on_samples"], result["real_count"],
                 result["real"], grid_path)
    return summary
