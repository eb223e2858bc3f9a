"""Does a conditional generator draw the class it is asked for?

An independent classifier (scikit-learn logistic regression on the real training images, a
model that shares nothing with the GAN) labels `num_samples` generated samples, an equal number
per class; the score `eval/<name>` is the fraction whose predicted class equals the requested
one. On the 4,500 offline MNIST digits the classifier itself reaches about 90% on the held-out
real test split, which bounds what the score can show.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from ganjax import evaluators
from ganjax.data import pipeline
from ganjax.errors import ConfigError


class LabelClassifier:
    """Fits the classifier once; `score(images, labels)` is its accuracy on those images."""

    def __init__(self, data_config, max_train: int = 10_000):
        from sklearn.linear_model import LogisticRegression

        start = time.time()
        images, labels, info = pipeline.load_arrays(data_config, data_config.split, limit=max_train)
        self.num_classes = info.num_classes
        self.classifier = LogisticRegression(max_iter=300, C=0.05)
        self.classifier.fit(images.reshape(len(images), -1), labels)
        self.test_accuracy = float("nan")
        try:
            test_images, test_labels, _ = pipeline.load_arrays(data_config, "test", limit=2000)
            self.test_accuracy = self.score(test_images, test_labels)
        except pipeline.DatasetError:
            pass
        logging.info(
            "Label-accuracy classifier: logistic regression on %d real images, %.1f%% on real "
            "test images (%.1fs).", len(images), 100 * self.test_accuracy, time.time() - start,
        )

    def score(self, images, labels) -> float:
        images = np.asarray(images, np.float32)
        predicted = self.classifier.predict(images.reshape(len(images), -1))
        return float(np.mean(predicted == np.asarray(labels)))


class Evaluator(evaluators.Evaluator):
    TINY = {"num_samples": 100}

    @classmethod
    def default_config(cls) -> ml_collections.ConfigDict:
        c = ml_collections.ConfigDict()
        c.num_samples = 1000  # generated images scored, the same number per class
        return c

    @classmethod
    def check(cls, name, algorithm) -> None:
        latent = algorithm.latent
        if latent is None or not latent.num_classes:
            raise ConfigError(
                f"config.evals.{name} (label_accuracy) needs a generator told a class label, and "
                f"gan.name={algorithm.name!r} here has none (set gan.conditional=True for the DCGAN "
                f"family), or remove the entry."
            )

    def __init__(self, name, entry, config, algorithm):
        super().__init__(name, entry, config, algorithm)
        self.classifier = LabelClassifier(config.data)
        self._generate = jax.jit(algorithm.generate)

    def run(self, state, step):
        n = self.entry.num_samples
        labels = jnp.arange(n, dtype=jnp.int32) % self.classifier.num_classes
        key = jax.random.fold_in(jax.random.PRNGKey(self.config.seed + 2), step)
        parts = self.algorithm.latent.sample(key, n, label=labels)
        samples = jax.device_get(self._generate(state, parts))
        yield self.name, self.classifier.score(samples, np.asarray(labels))
