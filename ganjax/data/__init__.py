"""Input pipelines: tfds sources, preprocessing, deterministic batching onto the device mesh."""

from ganjax.data import mnist_offline  # noqa: F401  (registers the tfds builder)
from ganjax.data.pipeline import DataInfo, build_train_data, load_split  # noqa: F401
