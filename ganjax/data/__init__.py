"""Input pipelines: tfds sources (MNIST, FER2013, CelebA, image folders), class filtering and
balancing, augmentation, deterministic batching onto the device mesh. See docs/datasets.md."""

from ganjax.data import fer2013, mnist_offline  # noqa: F401  (register the tfds builders)
from ganjax.data.core import DataInfo, DatasetError  # noqa: F401
from ganjax.data.pipeline import (  # noqa: F401
    build_train_data,
    build_two_domain_data,
    load_arrays,
    load_split,
)
