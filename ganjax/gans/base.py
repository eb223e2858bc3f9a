"""The algorithm protocol: what the loop, the evaluators and the jobs may ask of an algorithm.

An algorithm is built from `(config, data_info)` and must define

* `init_state(rng) -> RunState` (a `ganjax.train_state.RunState` subclass),
* `train_step(state, batch) -> (state, metrics)`: pure; the loop jit-compiles it over the mesh;
  `batch` holds `n_micro` real batches stacked on axis 0.

Everything else has a default here:

* `data_info(config)` and `train_batches(mesh, start_step)`: one labelled dataset
  (`config.data`); an algorithm with other input (CycleGAN's two domains) overrides both;
* `example_batch(key, batch_size)`: a random batch of the right structure (tests, benchmarks);
* `latent`: the `LatentSpec` of a generator's input, or None for algorithms that generate
  nothing from a latent (CycleGAN translates; a classifier classifies);
* `generate(state, parts) -> images`: the generator's images in [-1, 1] for latent parts
  (`latent.sample(...)`), everywhere the same meaning; `translate(state, images, direction)`
  for algorithms that map one image domain to another (`can_translate`);
* `grid_inputs(key, cols) -> (inputs, rows) | None` and `grid(state, inputs) -> images`: the
  sample grid the loop writes every `train.sample_every` steps (None: no grid);
* config ownership: `config_section` names the section the algorithm owns and
  `default_config()` gives its defaults; `default_arch` names the architecture whose keys fill
  `config.model` (`ganjax/models`); `DEFAULTS` holds its defaults of core keys (e.g. CycleGAN's
  `gan.loss`) and `TINY` its values for the `tiny` variant, both as flattened keys.

Nothing here is specific to GANs: a predictor trained against a frozen generator, or a
classifier, is an algorithm too and gets the loop's checkpoints, resume and NaN stop.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import ml_collections

from ganjax.latent import LatentSpec
from ganjax.train_state import RunState


class Algorithm(abc.ABC):
    """Base class of every registered algorithm; see the module docstring."""

    name: ClassVar[str] = ""  # set by `gans.register`
    config_section: ClassVar[str | None] = None
    default_arch: ClassVar[str | None] = None
    DEFAULTS: ClassVar[dict[str, Any]] = {}  # the algorithm's defaults of core keys (flattened)
    TINY: ClassVar[dict[str, Any]] = {}

    can_translate: ClassVar[bool] = False  # has `translate(state, images, direction)`

    n_micro: int = 1  # real batches one train step consumes (e.g. WGAN's critic steps)
    latent: LatentSpec | None = None

    def __init__(self, config: ml_collections.ConfigDict, data_info):
        self.config = config
        self.info = data_info

    # ---------------------------------------------------------------------------------------
    # Config ownership.
    # ---------------------------------------------------------------------------------------

    @classmethod
    def default_config(cls) -> ml_collections.ConfigDict | None:
        """Defaults of `config.<config_section>` (None: the algorithm owns no section)."""
        return None

    # ---------------------------------------------------------------------------------------
    # Input.
    # ---------------------------------------------------------------------------------------

    @classmethod
    def data_info(cls, config):
        """The `DataInfo` the networks are built for (shape, classes, attributes)."""
        from ganjax.data import pipeline

        return pipeline.load_split(config.data)[1]

    def train_batches(self, mesh, start_step: int):
        """Iterator of global batches `[n_micro, B, ...]` from step `start_step` on."""
        from ganjax.data import pipeline

        return pipeline.build_train_data(
            self.config, mesh, n_micro=self.n_micro, start_step=start_step
        )[1]

    def example_batch(self, key: jax.Array, batch_size: int) -> dict:
        """A random batch with the structure `train_batches` yields (images in [-1, 1])."""
        shape = (self.n_micro, batch_size, *self.info.image_shape)
        batch = {"image": jax.random.uniform(key, shape, jnp.float32, -1.0, 1.0)}
        if self.info.num_classes:
            labels = jnp.arange(batch_size, dtype=jnp.int32) % self.info.num_classes
            batch["label"] = jnp.tile(labels, (self.n_micro, 1))
        if self.info.attribute_names:
            k = jax.random.fold_in(key, 1)
            batch["attributes"] = jax.random.bernoulli(
                k, 0.5, (self.n_micro, batch_size, len(self.info.attribute_names))
            ).astype(jnp.int32)
        return batch

    # ---------------------------------------------------------------------------------------
    # Training.
    # ---------------------------------------------------------------------------------------

    @abc.abstractmethod
    def init_state(self, rng: jax.Array) -> RunState:
        """The state at step 0."""

    @abc.abstractmethod
    def train_step(self, state: RunState, batch: dict) -> tuple[RunState, dict]:
        """One step: the new state and a dict of scalar metrics."""

    # ---------------------------------------------------------------------------------------
    # Generation and grids.
    # ---------------------------------------------------------------------------------------

    def generate(self, state: RunState, parts: dict) -> jax.Array:
        """Images in [-1, 1] from the generator for latent parts (`self.latent.sample`)."""
        raise NotImplementedError(f"algorithm {self.name!r} does not generate from a latent.")

    def translate(self, state: RunState, images: jax.Array, direction: str = "a2b") -> jax.Array:
        """Images of one domain mapped to the other (`can_translate` algorithms)."""
        raise NotImplementedError(f"algorithm {self.name!r} does not translate images.")

    def grid_inputs(self, key: jax.Array, cols: int) -> tuple[Any, int] | None:
        """Fixed inputs of the sample grid and its number of rows (default: `latent.grid`)."""
        if self.latent is None:
            return None
        return self.latent.grid(key, cols)

    def grid(self, state: RunState, inputs: Any) -> jax.Array:
        """The grid's images, row-major (default: `generate`)."""
        return self.generate(state, inputs)


def generate_from_vector(g, vector: jax.Array, condition=None) -> jax.Array:
    """A generator's images (`g`: its `NetState`, inference mode) for latent vectors [N, dim],
    relaxed categorical blocks allowed, and a condition (None: unconditional), clipped to
    [-1, 1] as every algorithm's `generate` is (BEGAN's output layer is linear). What the
    predictor, latent recovery and editing decode with."""
    return jnp.clip(g.apply_fn(g.variables, vector, condition, train=False), -1.0, 1.0)


def mean_over_updates(total: dict, new: dict, count: int) -> dict:
    """Running mean of per-update metrics over `count` updates: total + new / count."""
    out = dict(total)
    for k, v in new.items():
        out[k] = out.get(k, 0.0) + v / count
    return out
