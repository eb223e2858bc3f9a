"""Iterative latent recovery: the latent vector of a real image, found by Adam through the frozen G.

    python launch.py --config=configs/infogan_mnist.py --workdir=W --config.job=recover \
        [--config.jobs.recover.num_images=200] [--config.jobs.recover.steps=200] \
        [--config.jobs.recover.restarts=2] [--config.jobs.recover.distance=mse|ssim|ms_ssim|...] \
        [--config.jobs.recover.init=auto|random|predictor|both] [--config.restore=best|latest|STEP]

Report 000's iterative recovery (docs/references.md): for each target image x, minimise over
the latent vector v

    L(v) = d(G(v, y), x) + prior_weight * P(z)

with Adam, G frozen (inference mode: running batch statistics, so images do not interact), y
the condition taken from the data (the label or attribute vector of x, for a conditional G),
and d a per-image distance of `ganjax.distances` (`distance`: mse, ssim = 1 - SSIM,
ms_ssim = 1 - MS-SSIM, and the feature distances registered there). What is optimised:

* z itself; P(z) = mean_j z_j^2 / 2 for a normal prior (its negative log-density per
  coordinate, up to a constant), 0 for a uniform one, whose density is flat inside its box;
* each categorical code relaxed: a block of K logits l, entering G as softmax(l) in place of
  the one-hot vector. For the last `snap` fraction of the steps the block is the one-hot of
  argmax(l) and l is frozen, so that the recovered latent is one G was trained on (an edit
  then changes exactly one code; `snap=0` keeps the relaxation to the end). A random start
  puts its logits at log((1 - s) onehot(c) + s / K), c the prior draw and s = `cat_smoothing`;
* the continuous codes.

Bounded coordinates (the continuous codes, and z under a uniform prior: U(-1, 1)) are kept in
[-1, 1] after each update by the stochastic clipping of Lipton & Tripathi 2017
(`clip=stochastic`: a coordinate that leaves the box is drawn again from U(-1, 1) instead of
being clipped; with it they recovered the latents of a DCGAN's own samples in all of 1,000
trials), by clipping (`clip=hard`) or not at all (`none`). The learning rate falls from `lr` to
0 by a cosine over the `steps`, so the last steps settle.

`restarts` R: each image is recovered from R starts at once (one batch of N x R), and the start
with the smallest final distance is kept, per image. The starts (`init`):

* `random`: R draws from the prior;
* `predictor`: the first start is the predictor's latent (the run of `predictor`, default
  `W/predictor`, trained with `--config.job=train_predictor`; its categorical blocks are the
  predictor's softmax probabilities), the other R - 1 prior draws;
* `both`, `auto`: the methods compared below; `auto` is `both` when the predictor's run
  exists, else `random`.

The whole optimisation of a batch (`batch_size` images x R starts, `steps` Adam updates, the
choice of the best start) is one jit-compiled function around one `jax.lax.scan`; every batch
has the same shape (the last is padded), so it compiles once.

The job compares the methods that apply on the first `num_images` real images of `split`
(default `test`, held out from the GAN's training) or of an image `folder` (`*.png|jpg`; for a
conditional G each in a sub-folder named by its class): `predictor` (the predictor alone),
`recovery` (random starts), `predictor + recovery` (starts at the predictor). Under `output`
(default `W/recover`, never overwritten):

* `latents.npz`: per method (`<method>/vector`, `/z`, `/cat`, `/cont`, `/distance`) and the
  real images' `index` and `label`;
* `recover_grid.png`: one row per image (`grid_images`), columns original | predictor |
  recovery | predictor + recovery (those that ran);
* `recover.json`, `recover.md`: per method the mean and standard deviation over images of MSE
  (on images in [-1, 1]), SSIM and MS-SSIM (similarities: 1 is identical) and the final loss;
  report 000's Fig. 9, measured on held-out real images.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging

from ganjax import distances, images as image_lib, runs
from ganjax.errors import ConfigError, OutputExistsError
from ganjax.gans.base import generate_from_vector

INITS = ("auto", "random", "predictor", "both")
CLIPS = ("stochastic", "hard", "none")
METHODS = ("predictor", "recovery", "predictor + recovery")
# What the table reports for each method: (name, distance, similarity = 1 - distance?).
TABLE = (("mse", "mse", False), ("ssim", "ssim", True), ("ms_ssim", "ms_ssim", True))


def default_config() -> ml_collections.ConfigDict:
    """`config.jobs.recover`; the recovery keys (steps ... batch_size) are also job=edit's."""
    c = ml_collections.ConfigDict()
    c.split = "test"  # real images to recover: a split of config.data (held out from training)
    c.folder = ""  # ... or a folder of *.png|jpg (conditional G: <folder>/<class>/*.png); "" = the split
    c.num_images = 100  # the first this many images of the split or folder (0 = all)
    c.steps = 200  # Adam updates per batch
    c.lr = 0.1  # Adam's learning rate at the start (cosine decay to 0 over the steps)
    c.restarts = 2  # starts per image; the one with the smallest final distance is kept
    c.distance = "mse"  # the loss: a ganjax.distances name (mse | l1 | ssim | ms_ssim | ...)
    c.prior_weight = 0.0  # weight of P(z) = mean z^2 / 2 (normal prior only)
    c.clip = "stochastic"  # bounded coordinates (U(-1, 1)): stochastic (Lipton & Tripathi) | hard | none
    c.snap = 0.4  # last fraction of the steps with categorical codes one-hot (argmax); 0 = relaxed to the end
    c.cat_smoothing = 0.5  # random starts: logits log((1 - s) onehot + s / K) of the prior draw
    c.batch_size = 100  # images per compiled optimisation (x restarts in one batch)
    c.init = "auto"  # auto | random | predictor | both (see the module docstring)
    c.predictor = ""  # the predictor's run; "" = <workdir>/predictor
    c.output = ""  # "" = <workdir>/recover (never overwritten)
    c.grid_images = 10  # rows of recover_grid.png
    c.seed = 0  # random starts and stochastic clipping
    return c


# --------------------------------------------------------------------------------------------
# The optimisation.
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Settings:
    """The optimiser's settings (the recovery keys of `jobs.recover`)."""

    steps: int = 200
    lr: float = 0.1
    restarts: int = 2
    prior_weight: float = 0.0
    clip: str = "stochastic"
    snap: float = 0.4
    cat_smoothing: float = 0.5

    @classmethod
    def from_config(cls, sc) -> "Settings":
        return cls(**{f.name: sc[f.name] for f in dataclasses.fields(cls)})

    def check(self, section: str = "jobs.recover") -> None:
        """ConfigError on a value that cannot work."""
        if self.steps < 1 or self.restarts < 1:
            raise ConfigError(f"config.{section}.steps and restarts must be >= 1, got {self.steps}, {self.restarts}.")
        if not self.lr > 0 or self.prior_weight < 0:
            raise ConfigError(f"config.{section}.lr must be > 0 and prior_weight >= 0.")
        if self.clip not in CLIPS:
            raise ConfigError(f"config.{section}.clip must be one of {list(CLIPS)}, got {self.clip!r}.")
        if not 0.0 <= self.snap < 1.0 or not 0.0 < self.cat_smoothing <= 1.0:
            raise ConfigError(f"config.{section}.snap must be in [0, 1) and cat_smoothing in (0, 1].")

    @property
    def snap_start(self) -> int:
        """The first step with one-hot categorical codes (= steps when snap is 0)."""
        return self.steps - int(round(self.snap * self.steps))


def relaxed_vector(latent, v: dict, hard) -> jax.Array:
    """The generator's input for the variables `v` (`z`, `logits`, `cont`): each categorical
    block softmax(logits), or the one-hot of its argmax where `hard`."""
    raw = jnp.concatenate([v[k] for k in ("z", "logits", "cont") if k in v], -1)

    def relax(block, k):
        one_hot = jax.nn.one_hot(jnp.argmax(block, -1), k, dtype=block.dtype)
        return jnp.where(hard, one_hot, jax.nn.softmax(block, -1))

    return latent.map_categorical(raw, relax)


def variables_from_vector(latent, vector: jax.Array, smoothing: float = 1e-3) -> dict:
    """The optimised variables that start at a latent vector: z and cont as they are, each
    categorical block (one-hot or probabilities) p as logits log((1 - s) p + s / K)."""
    parts = latent.split(vector)
    v = {k: parts[k] for k in ("z", "cont") if k in parts}
    if latent.categorical:
        v["logits"] = jnp.concatenate(
            [jnp.log((1.0 - smoothing) * p + smoothing / k) for p, k in zip(parts["cat_logits"], latent.categorical)], -1
        )
    return v


def smooth_categorical(latent, vector: jax.Array, s: float) -> jax.Array:
    """Each categorical block p of latent vectors replaced by (1 - s) p + s / K."""
    return latent.map_categorical(vector, lambda p, k: (1.0 - s) * p + s / k)


def hard_vector(latent, vector: jax.Array) -> jax.Array:
    """A latent vector with each categorical block replaced by the one-hot of its argmax."""
    return latent.map_categorical(vector, lambda p, k: jax.nn.one_hot(jnp.argmax(p, -1), k, dtype=p.dtype))


def vector_parts(latent, vector: np.ndarray) -> dict:
    """`z`, `cat` (argmax per block) and `cont` of latent vectors, as numpy arrays."""
    parts = latent.split(jnp.asarray(vector))
    return {k: np.asarray(parts[k]) for k in ("z", "cat", "cont") if k in parts}


class Recovery:
    """Latent recovery through one frozen generator; see the module docstring.

        recovery = Recovery(latent, distance, settings)
        result = recovery(g, targets, condition, starts, key)   # one compiled scan

    `g` is the generator's `NetState`, `targets` [N, H, W, C] in [-1, 1], `condition` the labels
    or attribute vectors [N, ...] (None: unconditional), `starts` the latent vectors [N, R, dim]
    the R restarts begin at (`random_starts`, or the predictor's). Returns a dict of arrays:
    `vector` [N, dim] (the best start's final latent), `images` [N, H, W, C] (G of it),
    `distance` [N] (its final distance), `distances` [N, R] (every start's final distance),
    `history` [steps, N, R] (the distance before each update; history[0] is the start's) and
    `best` [N] (the start kept).
    """

    def __init__(self, latent, distance, settings: Settings):
        self.latent, self.distance, self.settings = latent, distance, settings
        self.traces = 0  # how many times the optimisation was traced (compiled): once per batch shape
        self._run = jax.jit(self._optimise)

    def random_starts(self, key: jax.Array, n: int) -> jax.Array:
        """[n, R, dim]: R prior draws per image, each categorical block smoothed
        (`cat_smoothing`) so that the softmax can move away from it."""
        r, latent = self.settings.restarts, self.latent
        vector = smooth_categorical(latent, latent.vector(latent.sample(key, n * r)), self.settings.cat_smoothing)
        return vector.reshape(n, r, latent.dim)

    def __call__(self, g, targets, condition, starts, key) -> dict:
        return self._run(g, jnp.asarray(targets), condition, jnp.asarray(starts), key)

    # ---------------------------------------------------------------------------------------

    def _bounded(self) -> dict:
        """Which variables live in [-1, 1] (uniform priors)."""
        return {"z": self.latent.noise_prior == "uniform", "logits": False, "cont": True}

    def _prior(self, v: dict) -> jax.Array:
        if self.latent.noise and self.latent.noise_prior == "normal" and self.settings.prior_weight:
            return self.settings.prior_weight * 0.5 * jnp.mean(v["z"] ** 2, axis=-1)
        return 0.0

    def _clip(self, v: dict, key) -> dict:
        mode, out = self.settings.clip, dict(v)
        if mode == "none":
            return out
        for i, (name, bounded) in enumerate(sorted(self._bounded().items())):
            if not bounded or name not in v:
                continue
            x = v[name]
            if mode == "hard":
                out[name] = jnp.clip(x, -1.0, 1.0)
            else:
                fresh = jax.random.uniform(jax.random.fold_in(key, i), x.shape, x.dtype, -1.0, 1.0)
                out[name] = jnp.where(jnp.abs(x) > 1.0, fresh, x)
        return out

    def _optimise(self, g, targets, condition, starts, key) -> dict:
        self.traces += 1  # runs only while tracing: counts compilations
        st, latent = self.settings, self.latent
        n, r = starts.shape[:2]
        tiled = lambda x: None if x is None else jnp.repeat(x, r, axis=0)  # noqa: E731 (image-major)
        targets_r, condition_r = tiled(targets), jax.tree.map(tiled, condition)
        v0 = variables_from_vector(latent, starts.reshape(n * r, latent.dim), smoothing=1e-6)
        schedule = optax.cosine_decay_schedule(st.lr, st.steps)
        tx = optax.adam(schedule)

        def per_image(v, hard):
            images = generate_from_vector(g, relaxed_vector(latent, v, hard), condition_r)
            return self.distance(images, targets_r)

        def update(carry, i):
            v, opt_state = carry
            hard = i >= st.snap_start

            def loss(v):
                d = per_image(v, hard)
                return jnp.sum(d + self._prior(v)), d

            (_, d), grads = jax.value_and_grad(loss, has_aux=True)(v)
            updates, opt_state = tx.update(grads, opt_state, v)
            if "logits" in updates:  # frozen once the codes are one-hot
                updates["logits"] = jnp.where(hard, 0.0, updates["logits"])
            v = self._clip(optax.apply_updates(v, updates), jax.random.fold_in(key, i))
            return (v, opt_state), d

        (v, _), history = jax.lax.scan(update, (v0, tx.init(v0)), jnp.arange(st.steps))
        hard = st.snap > 0
        final = per_image(v, hard).reshape(n, r)
        best = jnp.argmin(final, axis=1)
        vectors = relaxed_vector(latent, v, hard).reshape(n, r, latent.dim)
        vector = jnp.take_along_axis(vectors, best[:, None, None], axis=1)[:, 0]
        return {
            "vector": vector,
            "images": generate_from_vector(g, vector, condition),
            "distance": jnp.take_along_axis(final, best[:, None], axis=1)[:, 0],
            "distances": final,
            "history": history.reshape(st.steps, n, r),
            "best": best,
        }


# --------------------------------------------------------------------------------------------
# Real images, the predictor, and encoding by method (shared with job=edit).
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class RealImages:
    """Real images to encode: [N, H, W, C] in [-1, 1], their labels [N] (-1: none), attribute
    vectors [N, A] or None, and their index in the split (or path in the folder)."""

    images: np.ndarray
    labels: np.ndarray
    attributes: np.ndarray | None
    index: np.ndarray
    source: str

    def condition(self, latent, section: str):
        """What a conditional G is told for these images (ConfigError if the data lacks it)."""
        if latent.num_classes:
            if (self.labels < 0).any():
                raise ConfigError(
                    f"The generator is told a class label, but some images of {self.source} have none: "
                    f"put each image of config.{section}.folder in a sub-folder named by its class.")
            return self.labels.astype(np.int32)
        if latent.num_attributes:
            if self.attributes is None:
                raise ConfigError(f"The generator is told attribute vectors, and {self.source} has none: "
                                  f"use a split of the dataset (config.{section}.split).")
            return self.attributes.astype(np.float32)
        return None


def real_images(config, split: str, folder: str, num_images: int, image_shape, class_names,
                section: str = "jobs.recover") -> RealImages:
    """The first `num_images` (0: all) images of `split` of config.data, or of `folder`."""
    if folder:
        return _folder_images(folder, num_images, image_shape, class_names, section)
    from ganjax.data import pipeline

    ds, _ = pipeline.load_split(config.data, split)
    if num_images:
        ds = ds.take(num_images)
    images, labels, attributes = [], [], []
    for batch in ds.batch(1024).as_numpy_iterator():
        images.append(batch["image"])
        labels.append(batch.get("label", np.full(len(batch["image"]), -1)))
        if "attributes" in batch:
            attributes.append(batch["attributes"])
    if not images:
        raise ConfigError(f"Split {split!r} of {config.data.name!r} has no images (config.{section}.split).")
    images = np.concatenate(images).astype(np.float32) / 127.5 - 1.0
    return RealImages(images, np.concatenate(labels).astype(np.int64),
                      np.concatenate(attributes) if attributes else None,
                      np.arange(len(images)), f"split {split!r} of {config.data.name!r}")


def _folder_images(folder, num_images, image_shape, class_names, section) -> RealImages:
    from PIL import Image

    paths = sorted(p for ext in ("png", "jpg", "jpeg", "PNG", "JPG", "JPEG")
                   for p in glob.glob(os.path.join(folder, "**", f"*.{ext}"), recursive=True))
    if not paths:
        raise ConfigError(f"config.{section}.folder={folder!r} holds no *.png or *.jpg images.")
    paths = paths[:num_images] if num_images else paths
    h, w, c = image_shape
    by_name = {n.lower(): i for i, n in enumerate(class_names)}
    images, labels = [], []
    for path in paths:
        try:
            with Image.open(path) as im:
                im = im.convert("L" if c == 1 else "RGB").resize((w, h), Image.BILINEAR)
                images.append(np.asarray(im, np.float32).reshape(h, w, c) / 127.5 - 1.0)
        except OSError as e:
            raise ConfigError(f"cannot read {path} ({e}): remove it from config.{section}.folder.") from None
        parent = os.path.basename(os.path.dirname(path)).lower()
        labels.append(by_name.get(parent, -1))
    return RealImages(np.stack(images), np.array(labels, np.int64), None,
                      np.array([os.path.relpath(p, folder) for p in paths]), f"folder {folder!r}")


def predictor_dir(config, workdir: str, path: str = "") -> str:
    """The predictor's run: `path`, else `jobs.train_predictor.output`, else `<workdir>/predictor`
    (as job=train_predictor places it)."""
    own = (config.get("jobs") or {}).get("train_predictor") or {}
    return os.path.abspath(path or own.get("output", "") or os.path.join(workdir, "predictor"))


def has_predictor(directory: str) -> bool:
    return os.path.isdir(os.path.join(directory, "checkpoints"))


def load_predictor(directory: str, trained, section: str):
    """The predictor's `Trained` run, checked against the GAN's generator (ConfigError if it was
    trained against another checkpoint)."""
    if not has_predictor(directory):
        raise ConfigError(
            f"No predictor in {directory}: train one with the GAN's command plus "
            f"--config.job=train_predictor, or set config.{section}.init=random.")
    predictor = runs.load_trained(directory)
    mine, theirs = trained.state.generator.params, predictor.state.generator.params
    same = jax.tree.structure(mine) == jax.tree.structure(theirs) and all(
        a.shape == b.shape and bool(jnp.array_equal(a, b)) for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(theirs)))
    if not same:
        raise ConfigError(
            f"The predictor in {directory} was trained against another checkpoint of the generator "
            f"than the one restored (step {trained.step}, config.restore={trained.config.restore!r}): "
            "restore the checkpoint it was trained against, or train the predictor again.")
    return predictor


class Encoder:
    """Real images -> latent vectors by one of `METHODS`, in batches of `batch_size` (the last
    padded, so each compiled function has one shape), with progress in the log.

    `encode(method, images, condition, key)` returns numpy arrays: `vector` [N, dim], `images`
    (G's reconstructions) and `distance` [N] (the loss `distance` of each reconstruction).
    """

    def __init__(self, trained, distance, settings: Settings, batch_size: int, predictor=None):
        self.trained, self.latent = trained, trained.algorithm.latent
        self.g = trained.state.generator
        self.batch_size, self.predictor = batch_size, predictor
        self.recovery = Recovery(self.latent, distance, settings)
        self._generate = jax.jit(generate_from_vector)
        self._distance = jax.jit(distance)
        if predictor is not None:  # the predictor's latent (argmax codes) and its relaxation
            p = predictor.algorithm
            self._encode = jax.jit(lambda state, x, c: p.latent.vector(p.encode(state, x, c)))
            self._encode_relaxed = jax.jit(p.encode_vector)

    @staticmethod
    def _batches(n: int, size: int):
        for start in range(0, n, size):
            yield start, min(n, start + size)

    @staticmethod
    def _pad(x, start, stop, size):
        """x[start:stop], padded to `size` rows with copies of its last."""
        if x is None:
            return None
        x = np.asarray(x[start:stop])
        missing = size - len(x)
        return np.concatenate([x, np.repeat(x[-1:], missing, 0)]) if missing > 0 else x

    def encode(self, method: str, images: np.ndarray, condition, key) -> dict:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
        if method != "recovery" and self.predictor is None:
            raise ValueError(f"method {method!r} needs the predictor.")
        n, out = len(images), {"vector": [], "images": [], "distance": []}
        t0, r = time.time(), self.recovery.settings.restarts
        size = min(self.batch_size, n)  # fewer images than a batch: no padding
        for b, (start, stop) in enumerate(self._batches(n, size)):
            x, c = self._pad(images, start, stop, size), self._pad(condition, start, stop, size)
            if method == "recovery" or method == "predictor + recovery":
                starts = self.recovery.random_starts(jax.random.fold_in(key, b), len(x))
                if method == "predictor + recovery":
                    starts = starts.at[:, 0].set(self._encode_relaxed(self.predictor.state, x))
                res = self.recovery(self.g, x, c, starts, jax.random.fold_in(key, 1_000_003 + b))
                vector, recon, dist = res["vector"], res["images"], res["distance"]
            else:
                vector = self._encode(self.predictor.state, x, c)
                recon = self._generate(self.g, vector, c)
                dist = self._distance(recon, jnp.asarray(x))
            k = stop - start
            out["vector"].append(np.asarray(vector)[:k])
            out["images"].append(np.asarray(recon)[:k])
            out["distance"].append(np.asarray(dist)[:k])
            if method != "predictor":
                done, elapsed = stop, time.time() - t0
                logging.info("%s: %d/%d images (x%d starts, %d steps) in %.0f s, ETA %.0f s, mean distance %.4f",
                             method, done, n, r, self.recovery.settings.steps, elapsed,
                             elapsed / done * (n - done), float(np.mean(np.concatenate(out["distance"]))))
        return {k: np.concatenate(v) for k, v in out.items()}


def methods_for(init: str, predictor_exists: bool) -> tuple[str, ...]:
    """The methods `init` runs (see the module docstring)."""
    if init == "auto":
        init = "both" if predictor_exists else "random"
    return {"random": ("recovery",), "predictor": ("predictor", "predictor + recovery"),
            "both": METHODS}[init]


def get_distance(name: str, config, workdir: str, image_shape, key: str):
    """`distances.get` with a one-line ConfigError naming the key."""
    try:
        return distances.get(name, config, workdir, image_shape=tuple(image_shape))
    except ValueError as e:
        raise ConfigError(f"config.{key}={name!r}: {e}") from None


def check_output(output: str, marker: str) -> None:
    """OutputExistsError if `output` already holds a job's results (`marker` there)."""
    if os.path.exists(os.path.join(output, marker)):
        raise OutputExistsError(
            f"{output} already holds results ({marker}), which are kept: choose another "
            "output directory (its job's output key), or move the old one away.")


def similarity_table(reconstructions: dict, targets: np.ndarray) -> dict:
    """Per method: mean and std over images of MSE (images in [-1, 1]), SSIM and MS-SSIM."""
    shape = targets.shape[1:]
    fns = {name: jax.jit(distances.get(dist, image_shape=shape)) for name, dist, _ in TABLE}
    table = {}
    for method, images in reconstructions.items():
        row = {}
        for name, _, similarity in TABLE:
            values = np.concatenate([np.asarray(fns[name](jnp.asarray(images[i:i + 500]), jnp.asarray(targets[i:i + 500])))
                                     for i in range(0, len(targets), 500)])
            values = 1.0 - values if similarity else values
            row[name] = {"mean": float(values.mean()), "std": float(values.std())}
        table[method] = row
    return table


def markdown_table(table: dict, extra: dict | None = None) -> str:
    """The table as Markdown: one row per method, mean ± std per measure."""
    names = [name for name, _, _ in TABLE]
    head = "| method | " + " | ".join(n.upper().replace("_", "-") for n in names) + " | loss |"
    lines = [head, "|" + "---|" * (len(names) + 2)]
    for method, row in table.items():
        cells = [f"{row[n]['mean']:.4f} ± {row[n]['std']:.4f}" for n in names]
        loss = (extra or {}).get(method, "")
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {loss} |")
    return "\n".join(lines)


def comparison_grid(columns: list[np.ndarray], rows: int) -> np.ndarray:
    """One row per image, one column per image set: [rows, cols] as one picture."""
    stacked = np.stack([image_lib.to_uint8(c[:rows]) for c in columns], axis=1)
    return image_lib.make_grid(stacked.reshape(-1, *stacked.shape[2:]), min(rows, len(columns[0])))


# --------------------------------------------------------------------------------------------
# The job.
# --------------------------------------------------------------------------------------------


def run(config, workdir: str) -> dict:
    """Recovers and writes (see the module docstring); returns the summary dict."""
    sc = config.jobs.recover
    settings = Settings.from_config(sc)
    settings.check()
    if sc.init not in INITS:
        raise ConfigError(f"config.jobs.recover.init must be one of {list(INITS)}, got {sc.init!r}.")
    if sc.num_images < 0 or sc.batch_size < 1:
        raise ConfigError("config.jobs.recover.num_images must be >= 0 and batch_size >= 1.")
    workdir = os.path.abspath(workdir)
    output = os.path.abspath(sc.output or os.path.join(workdir, "recover"))
    check_output(output, "recover.json")
    trained = runs.load_trained(workdir, config.restore, config=config)
    latent = trained.algorithm.latent
    if latent is None:
        raise ConfigError(f"gan.name={config.gan.name!r} does not generate from a latent: nothing to recover.")
    info = trained.algorithm.info
    distance = get_distance(sc.distance, config, workdir, info.image_shape, "jobs.recover.distance")
    pdir = predictor_dir(config, workdir, sc.predictor)
    methods = methods_for(sc.init, has_predictor(pdir))
    predictor = load_predictor(pdir, trained, "jobs.recover") if "predictor" in methods else None
    real = real_images(config, sc.split, sc.folder, sc.num_images, info.image_shape, info.class_names)
    condition = real.condition(latent, "jobs.recover")
    logging.info("Recovering %d images of %s by %s (%s, %d steps, %d starts, lr %g)", len(real.images),
                 real.source, ", ".join(methods), sc.distance, settings.steps, settings.restarts, settings.lr)

    encoder = Encoder(trained, distance, settings, sc.batch_size, predictor)
    key = jax.random.PRNGKey(sc.seed)
    results, seconds = {}, {}
    for i, method in enumerate(methods):
        t0 = time.time()
        results[method] = encoder.encode(method, real.images, condition, jax.random.fold_in(key, i))
        seconds[method] = time.time() - t0

    table = similarity_table({m: r["images"] for m, r in results.items()}, real.images)
    os.makedirs(output, exist_ok=True)
    arrays = {"index": real.index, "label": real.labels}
    for method, res in results.items():
        name = method.replace(" + ", "_").replace(" ", "_")
        arrays[f"{name}/vector"] = res["vector"]
        arrays[f"{name}/distance"] = res["distance"]
        for part, value in vector_parts(latent, res["vector"]).items():
            arrays[f"{name}/{part}"] = value
    np.savez(os.path.join(output, "latents.npz"), **arrays)
    grid_path = os.path.join(output, "recover_grid.png")
    image_lib.save_png(comparison_grid([real.images] + [results[m]["images"] for m in methods], sc.grid_images),
                       grid_path)
    losses = {m: f"{sc.distance} {float(np.mean(r['distance'])):.4f}" for m, r in results.items()}
    summary = {
        "workdir": workdir, "generator": config.gan.name, "checkpoint_step": trained.step,
        "restore": str(config.restore), "images": real.source, "num_images": int(len(real.images)),
        "methods": list(methods), "columns": ["original", *methods], "distance": sc.distance,
        "settings": dataclasses.asdict(settings), "seed": sc.seed,
        "predictor": pdir if predictor is not None else None,
        "table": table, "final_loss": {m: float(np.mean(r["distance"])) for m, r in results.items()},
        "seconds": seconds, "grid": grid_path, "latents": os.path.join(output, "latents.npz"),
    }
    md = [f"# Latent recovery: {summary['num_images']} images of {real.source}", "",
          f"Generator {config.gan.name} ({workdir}, checkpoint step {trained.step}); loss {sc.distance}, "
          f"{settings.steps} Adam steps (lr {settings.lr}, cosine decay), {settings.restarts} starts per image, "
          f"clip {settings.clip}, snap {settings.snap}, prior weight {settings.prior_weight}. MSE on images "
          "in [-1, 1]; SSIM and MS-SSIM are similarities (1 = identical). Mean ± std over images.", "",
          markdown_table(table, losses), "", f"Grid (original | {' | '.join(methods)}): `{grid_path}`", ""]
    with open(os.path.join(output, "recover.md"), "w") as f:
        f.write("\n".join(md))
    with open(os.path.join(output, "recover.json"), "w") as f:
        json.dump(summary, f, indent=2)
    logging.info("Latent recovery written to %s:\n%s", output, markdown_table(table, losses))
    return summary
