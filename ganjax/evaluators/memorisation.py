"""Does the generator copy its training images? kNN in pixel space (report 004's check).

Each grid row is one sample followed by its `k` nearest training images (`metrics.knn`):
one sample per class (conditional), per value of the first categorical code (InfoGAN), or
`rows` samples. PNG `<name>`. Measured too: the median Euclidean distance (pixels in [-1, 1])
from `num_samples` samples to their nearest training image, `eval/<name>/nn_distance`, beside
the same median for the real held-out images, `eval/<name>/real_nn_distance`: samples much
closer to the training set than unseen real images are is memorisation; much farther, poor
samples.
"""

from __future__ import annotations

import jax
import ml_collections
import numpy as np

from ganjax import evaluators
from ganjax.data import pipeline
from ganjax.metrics import knn


class Evaluator(evaluators.Evaluator):
    TINY = {"num_samples": 20, "max_train": 200}

    @classmethod
    def default_config(cls) -> ml_collections.ConfigDict:
        c = ml_collections.ConfigDict()
        c.k = 5  # neighbours shown per sample
        c.rows = 10  # grid rows when the generator has no classes or categorical code
        c.num_samples = 500  # samples whose nearest-neighbour distance is measured
        c.max_train = 0  # training images searched (0 = the whole split)
        c.real_split = "test"  # held-out real images for the reference distance ("" = none)
        return c

    @classmethod
    def check(cls, name, algorithm) -> None:
        evaluators.require_latent(name, "memorisation", algorithm)

    def __init__(self, name, entry, config, algorithm, workdir):
        super().__init__(name, entry, config, algorithm, workdir)
        self._train = None
        self._real_distance = None

    def _reference(self):
        if self._train is None:
            e, data = self.entry, self.config.data
            self._train = pipeline.load_arrays(data, data.split, limit=e.max_train or None)[0]
            if e.real_split:
                try:
                    real = pipeline.load_arrays(data, e.real_split, limit=e.num_samples)[0]
                    self._real_distance = float(np.median(knn.nearest_neighbours(real, self._train, k=1).distances))
                except pipeline.DatasetError:
                    self._real_distance = None
        return self._train

    def run(self, state, step):
        latent, e = self.algorithm.latent, self.entry
        train = self._reference()
        key = jax.random.fold_in(jax.random.PRNGKey(self.config.seed + 4), step)
        if latent.num_classes or latent.categorical:
            parts, _ = latent.grid(key, 1)
        else:
            parts = latent.sample(key, e.rows)
        shown = evaluators.generate_in_batches(self._generate, state, parts)
        found = knn.nearest_neighbours(shown, train, k=e.k)
        yield self.name, knn.neighbour_grid(shown, train, found.indices)
        samples = evaluators.generate_in_batches(
            self._generate, state, latent.sample(jax.random.fold_in(key, 1), e.num_samples))
        yield f"{self.name}/nn_distance", float(np.median(knn.nearest_neighbours(samples, train, k=1).distances))
        if self._real_distance is not None:
            yield f"{self.name}/real_nn_distance", self._real_distance
