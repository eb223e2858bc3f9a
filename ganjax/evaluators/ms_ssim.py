"""Sample diversity: the mean pairwise MS-SSIM of generated images (Odena et al., ACGAN, 2017).

`num_batches` batches of `batch_size` samples from the latent prior; within each batch the mean
MS-SSIM over all pairs, then the mean over batches (compare_gan's 5 x 64;
`metrics.diversity.mean_pairwise_ms_ssim`). Higher = less diverse: a collapsed generator
approaches 1. Small images use the scales that fit the 11-pixel window (28 px: 2, 48 px: 3),
with Wang et al.'s weights renormalised. For a conditional generator the samples of a batch
share one class (`per_class`, the ACGAN paper's per-class score; the mean over classes is
written) so that the score measures diversity within a class, not between classes.

Writes `eval/<name>` and, for reference, `eval/<name>/real`: the same score of real training
images (computed once), the diversity a good generator should match.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ganjax import evaluators
from ganjax.data import pipeline
from ganjax.errors import ConfigError
from ganjax.metrics import diversity, ssim


class Evaluator(evaluators.Evaluator):
    TINY = {"batch_size": 8, "num_batches": 2}

    @classmethod
    def default_config(cls) -> ml_collections.ConfigDict:
        c = ml_collections.ConfigDict()
        c.batch_size = 64  # samples per batch (all pairs within a batch are scored)
        c.num_batches = 5  # batches (per class, for a conditional generator, at most this many classes)
        c.per_class = True  # conditional generators: each batch one class
        return c

    @classmethod
    def check(cls, name, algorithm) -> None:
        evaluators.require_latent(name, "ms_ssim", algorithm)
        scales = ssim.max_num_scales(algorithm.info.image_shape[:2])
        if scales < 1:
            raise ConfigError(
                f"config.evals.{name} (ms_ssim) needs images of at least 11x11 pixels, got "
                f"{algorithm.info.image_shape[:2]}."
            )

    def __init__(self, name, entry, config, algorithm, workdir):
        super().__init__(name, entry, config, algorithm, workdir)
        self._kwargs = {"power_factors": ssim.ms_ssim_power_factors(
            min(5, ssim.max_num_scales(algorithm.info.image_shape[:2])))}
        self._real = None

    def _score(self, batches: list[np.ndarray]) -> float:
        return float(np.mean([
            diversity.mean_pairwise_ms_ssim(b, batch_size=len(b), **self._kwargs) for b in batches
        ]))

    def _real_score(self) -> float:
        if self._real is None:
            e, data = self.entry, self.config.data
            images, labels = pipeline.load_arrays(data, data.split, limit=e.batch_size * e.num_batches * 20)[:2]
            classes = self._classes()
            if classes:
                batches = [images[labels == c][: e.batch_size] for c in classes]
                batches = [b for b in batches if len(b) >= 2]
            else:
                batches = [images[i * e.batch_size:(i + 1) * e.batch_size] for i in range(e.num_batches)]
            self._real = self._score(batches)
        return self._real

    def _classes(self) -> list[int]:
        k = self.algorithm.latent.num_classes
        return list(range(min(k, self.entry.num_batches))) if k and self.entry.per_class else []

    def run(self, state, step):
        e, latent = self.entry, self.algorithm.latent
        key = jax.random.fold_in(jax.random.PRNGKey(self.config.seed + 5), step)
        classes = self._classes()
        if classes:
            labels = jnp.repeat(jnp.asarray(classes, jnp.int32), e.batch_size)
            parts = latent.sample(key, len(labels), label=labels)
        else:
            parts = latent.sample(key, e.batch_size * e.num_batches)
        images = evaluators.generate_in_batches(self._generate, state, parts)
        batches = np.split(images, len(classes) or e.num_batches)
        yield self.name, self._score(batches)
        yield f"{self.name}/real", self._real_score()
