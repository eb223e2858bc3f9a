"""Sample quality checks that run inside training.

`LabelAccuracy`: does a conditional generator draw the class it is asked for? An independent
classifier (scikit-learn logistic regression on the real training images, a model that shares
nothing with the GAN) labels generated samples; the score is the fraction whose predicted class
equals the requested one. On the 4,500 offline MNIST digits the classifier itself reaches about
90% on the held-out real test split, which bounds what the score can show.
"""

from __future__ import annotations

import time

import numpy as np
from absl import logging

from ganjax.data import pipeline


class LabelAccuracy:
    """Fits the classifier once; `__call__(samples, labels)` scores generated images."""

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
