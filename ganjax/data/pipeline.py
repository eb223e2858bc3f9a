"""tf.data input pipeline: tfds source -> classes -> preprocess -> deterministic stream -> mesh.

Every dataset goes through the same path:

1. a *source* (`sources.SOURCES`: mnist_offline, mnist, fer2013, celeb_a, image_folder) opens one
   tfds split for this process (`tfds.split_for_jax_process`) and yields
   `{'image': encoded, 'label': int[, 'attributes']}` in file order;
2. `class_mapping` keeps and relabels the classes named by `data.classes` ("Neutral,Happy",
   "Angry+Disgust,Happy", indices work too) before any image is decoded; a class left empty
   is an error;
   `data.per_class` then keeps that many examples per class of the training split (a low-data
   subset, reproducible from `data.subset_seed`);
3. `preprocess` decodes, centre-crops (to `data.center_crop`, or the largest centred square of
   a non-square image), resizes and converts channels (still uint8, so it can be cached);
4. `deterministic_stream` shuffles each epoch e with seed (seed, e) and skips what earlier steps
   consumed; with `data.balance` every class gets its own such stream and a stateless random
   choice per position picks the class (`balanced_stream`). Either way element i of the stream
   depends only on (seed, i), so a resumed run sees exactly the data that the uninterrupted run
   would have seen;
5. images become float32 in [-1, 1]; the training augmentation (`data.flip`, `data.shift`, `data.jitter`,
   `data.rotate`) uses stateless random ops seeded by (seed, i); batches have shape
   [n_micro, local_batch, ...] (n_micro discriminator updates per train step each get their own
   real batch);
6. `device_batches` turns each per-process batch into a global `jax.Array` sharded on the
   mesh's data axis, one batch ahead of the step.

`build_train_data` gives `{'image', 'label'[, 'attributes']}` batches (with `data.synthetic`, a
`data.synthetic_fraction` of each batch comes from exported synthetic datasets); `build_two_domain_data`
gives unpaired `{'a', 'b', 'label_a', 'label_b'}` batches for CycleGAN from two class sets
(`data.domain_a` / `data.domain_b`) of one dataset or of two datasets.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import math
import os
import re
from typing import Any, Iterator, Sequence

import jax
import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from ganjax import sharding
from ganjax.data.core import DataInfo, DatasetError  # noqa: F401  (re-exported)
from ganjax.data.sources import SOURCES, count_labels, open_source  # noqa: F401

AUTOTUNE = tf.data.AUTOTUNE
CHOICE_BLOCK = 4096  # balanced sampling draws the class choices in blocks of this many


def _derive_seed(seed: int, *salt: int) -> int:
    """A seed for one sub-stream (a class, a domain, the augmentation), fixed by (seed, salt)."""
    mask = (1 << 64) - 1
    h = (int(seed) * 0x9E3779B97F4A7C15) & mask
    for s in salt:
        h = ((h ^ (int(s) + 0x632BE5AB)) * 0xBF58476D1CE4E5B9) & mask
    return h >> 33  # < 2**31


# --------------------------------------------------------------------------------------------
# Classes.
# --------------------------------------------------------------------------------------------


def class_mapping(
    spec: str, class_names: Sequence[str], what: str = "config.data.classes"
) -> tuple[np.ndarray, tuple[str, ...]]:
    """`spec` -> (lookup: old label -> new label or -1 (dropped), the new class names).

    `spec` is a comma-separated list of classes, each a class name (any case) or index; the
    kept classes are relabelled 0..k-1 in the order given. `a+b` merges classes into one
    (named "a+b"). An empty spec keeps every class as it is.
    """
    n = len(class_names)
    if not spec or not spec.strip():
        return np.arange(max(n, 1), dtype=np.int32), tuple(class_names)
    if n == 0:
        raise DatasetError(
            f"{what}={spec!r} selects classes, but this dataset has no class labels (for "
            "celeb_a, set --config.data.label_attribute, e.g. Smiling, to get two classes)."
        )
    by_name = {c.lower(): i for i, c in enumerate(class_names)}
    lookup = np.full(n, -1, np.int32)
    names: list[str] = []
    for group in spec.split(","):
        members = [m.strip() for m in group.split("+") if m.strip()]
        if not members:
            raise DatasetError(f"{what}={spec!r} has an empty class entry; write e.g. 'Neutral,Happy'.")
        indices = []
        for m in members:
            if m.lower() in by_name:
                i = by_name[m.lower()]
            elif re.fullmatch(r"\d+", m) and int(m) < n:
                i = int(m)
            else:
                raise DatasetError(
                    f"{what}={spec!r}: unknown class {m!r}; the classes are "
                    f"{', '.join(f'{j}={c}' for j, c in enumerate(class_names))}."
                )
            if lookup[i] >= 0 or i in indices:
                raise DatasetError(f"{what}={spec!r} names class {class_names[i]!r} twice.")
            indices.append(i)
        lookup[indices] = len(names)
        names.append("+".join(class_names[i] for i in indices))
    return lookup, tuple(names)


def parse_domain(spec: str, default_name: str) -> tuple[str, str]:
    """A domain spec `[dataset:]classes` -> (dataset name, class spec).

    "Neutral" -> (default_name, "Neutral"); "mnist_offline:3" -> ("mnist_offline", "3");
    "celeb_a:" -> ("celeb_a", "") (all of it).
    """
    head, sep, tail = spec.partition(":")
    if sep and head.strip() in SOURCES:
        return head.strip(), tail.strip()
    return default_name, spec.strip()


# --------------------------------------------------------------------------------------------
# Preprocessing.
# --------------------------------------------------------------------------------------------


def output_shape(data_config, source_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """(size, size, channels) after preprocessing a source image of `source_shape`."""
    h, w, c = source_shape
    crop = data_config.get("center_crop") or 0
    size = data_config.image_size or crop or min(h, w)
    channels = data_config.channels or c
    return (size, size, channels)


def preprocess(example: dict, data_config, source_shape) -> dict:
    """Centre crop, resize, channel conversion; the image stays uint8.

    `data.center_crop` crops (or pads) to that square; without it a non-square image is cut to
    its largest centred square (CelebA's 218x178 -> 178x178), so faces are never squashed.
    """
    image = example["image"]
    size, _, channels = output_shape(data_config, source_shape)
    crop = data_config.get("center_crop") or 0
    h, w = image.shape[0], image.shape[1]
    if crop:
        image = tf.image.resize_with_crop_or_pad(image, crop, crop)
    elif h is None or w is None or h != w:
        shape = tf.shape(image)
        s = tf.minimum(shape[0], shape[1])
        image = tf.image.crop_to_bounding_box(image, (shape[0] - s) // 2, (shape[1] - s) // 2, s, s)
    if image.shape[0] != size or image.shape[1] != size:
        upsizing = image.shape[0] is not None and image.shape[0] < size
        method = "bilinear" if upsizing else "area"
        image = tf.image.resize(image, (size, size), method=method, antialias=not upsizing)
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    if channels != image.shape[-1]:
        if channels == 1:
            image = tf.cast(tf.round(tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))), tf.uint8)
        elif channels == 3 and image.shape[-1] == 1:
            image = tf.image.grayscale_to_rgb(image)
        else:
            raise DatasetError(f"Cannot convert {image.shape[-1]} channels to {channels}.")
    image = tf.ensure_shape(image, (size, size, channels))
    return dict(example, image=image)


def to_model_range(image_uint8: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return tf.cast(image_uint8, tf.float32) / 127.5 - 1.0


def _rotate(image: tf.Tensor, angle: tf.Tensor) -> tf.Tensor:
    """Rotates a float HWC image by `angle` radians about its centre (reflected borders)."""
    h, w = image.shape[0], image.shape[1]
    cos, sin = tf.cos(angle), tf.sin(angle)
    x_offset = ((w - 1) - (cos * (w - 1) - sin * (h - 1))) / 2.0
    y_offset = ((h - 1) - (sin * (w - 1) + cos * (h - 1))) / 2.0
    transform = tf.stack([cos, -sin, x_offset, sin, cos, y_offset, 0.0, 0.0])[None]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=tf.cast(transform, tf.float32),
        output_shape=tf.constant([h, w], tf.int32),
        fill_value=tf.constant(0.0, tf.float32),
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )
    return out[0]


def has_augmentation(data_config) -> bool:
    return any(data_config.get(k) for k in ("flip", "shift", "jitter", "rotate"))


def augment(image: tf.Tensor, index: tf.Tensor, data_config, seed: int) -> tf.Tensor:
    """Training augmentation of a float [-1, 1] image, a function of (seed, index) alone.

    A random shift by up to `data.shift` pixels in each direction (mirrored borders), random
    jitter (resize up by `data.jitter` pixels, random crop back), a random rotation
    within +-`data.rotate` degrees, a random horizontal flip (`data.flip`): stateless ops, so
    element `index` of the stream is augmented the same way in a resumed run.
    """
    key = tf.random.experimental.stateless_fold_in(
        tf.constant([seed, 0x5EED], tf.int64), tf.cast(index, tf.int64)
    )

    def sub(k):
        return tf.random.experimental.stateless_fold_in(key, k)

    shape = image.shape
    shift = data_config.get("shift") or 0
    if shift:
        padded = tf.pad(image, [[shift, shift], [shift, shift], [0, 0]], mode="SYMMETRIC")
        image = tf.image.stateless_random_crop(padded, shape, seed=sub(4))
    jitter = data_config.get("jitter") or 0
    if jitter:
        big = shape[0] + jitter
        image = tf.image.resize(image, (big, big), method="bilinear")
        image = tf.image.stateless_random_crop(image, shape, seed=sub(1))
    rotate = float(data_config.get("rotate") or 0.0)
    if rotate:
        angle = tf.random.stateless_uniform([], sub(2), -rotate, rotate) * (math.pi / 180.0)
        image = _rotate(image, angle)
    if data_config.get("flip"):
        image = tf.image.stateless_random_flip_left_right(image, seed=sub(3))
    return tf.ensure_shape(tf.clip_by_value(image, -1.0, 1.0), shape)


# --------------------------------------------------------------------------------------------
# Loading a split.
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Split:
    """One split of one dataset, classes applied, for this process (or all processes)."""

    encoded: tf.data.Dataset  # classes applied, images still encoded, file order
    prepare: Any  # encoded example -> preprocessed example (decode, crop, resize, channels)
    info: DataInfo
    local_counts: np.ndarray | None  # examples per class in this process's share (None: not counted)

    @property
    def ds(self) -> tf.data.Dataset:
        """{'image': uint8 [H, W, C], 'label': int32[, 'attributes']} in file order."""
        return self.encoded.map(self.prepare, num_parallel_calls=AUTOTUNE)

    def class_ds(self, c: int) -> tf.data.Dataset:
        """The examples of class c only (filtered before decoding)."""
        return self.encoded.filter(lambda ex: ex["label"] == c).map(
            self.prepare, num_parallel_calls=AUTOTUNE
        )


def open_split(
    data_config: ml_collections.ConfigDict,
    split: str | None = None,
    *,
    name: str | None = None,
    classes: str | None = None,
    what: str = "config.data.classes",
    count: bool = False,
    all_processes: bool = False,
    strict: bool = True,
    subset: bool = True,
) -> Split:
    """Opens a split with the class filter `classes` (default `data.classes`).

    `data.per_class > 0` keeps that many examples of each class of the training split
    (`data.split`, never another: the test split stays whole), chosen by `data.subset_seed`
    (`subset_indices`); `subset=False` opens the whole split.

    The examples per class are counted (labels only, no image decoding) when `count` is asked,
    when a class filter or balancing is on, or when tfds does not know the split size. With
    `strict`, an empty split, or a class that the filter leaves empty (with balancing: any
    empty class), raises DatasetError here, before anything trains.
    """
    split = split or data_config.split
    name = name or data_config.name
    classes = data_config.get("classes", "") if classes is None else classes
    src = open_source(data_config, split, name, all_processes=all_processes)
    lookup, names = class_mapping(classes, src.info.class_names, what)
    filtered = bool(classes and classes.strip())
    ds = src.ds
    if filtered:
        table = tf.constant(lookup, tf.int32)
        ds = ds.map(lambda ex: dict(ex, label=tf.gather(table, ex["label"])))
        ds = ds.filter(lambda ex: ex["label"] >= 0)

    num_examples = src.info.num_train_examples
    global_counts = local_counts = None
    per_class = int(data_config.get("per_class") or 0)
    if subset and per_class and split == data_config.split:
        ds, global_counts = _class_subset(
            data_config, split, name, classes, what, len(names), all_processes
        )
        single = all_processes or jax.process_count() == 1
        local_counts = global_counts if single else count_labels(ds, len(names))
        num_examples = int(global_counts.sum())
    elif count or filtered or data_config.get("balance") or num_examples < 0:
        local_counts = count_labels(ds, len(names))
        if all_processes or jax.process_count() == 1:
            global_counts = local_counts
        else:
            whole = open_split(
                data_config, split, name=name, classes=classes, what=what, all_processes=True,
                count=True, strict=False,
            )
            global_counts = np.asarray(whole.info.class_counts)
        num_examples = int(global_counts.sum())
    if strict and global_counts is not None:
        if num_examples == 0:
            if what.startswith("config.data.domain_"):
                subject = f"Domain {what[-1]} ({what}={classes!r}) has no examples in split {split!r} of {name!r}"
            else:
                subject = f"Split {split!r} of {name!r} is empty" + (
                    f" after {what}={classes!r}" if filtered else ""
                )
            raise DatasetError(f"{subject}; nothing to train on. Choose other classes or another split.")
        empty = [names[i] for i, c in enumerate(global_counts) if c == 0 and names]
        if empty and (filtered or data_config.get("balance")):
            raise DatasetError(
                f"Class {empty[0]!r} has no examples in split {split!r} of {name!r}"
                + (f" after {what}={classes!r}" if filtered else "")
                + f" (counts: {dict(zip(names, global_counts.tolist()))}). Drop it from "
                f"{what}, or use another split."
            )

    source_shape = src.info.image_shape
    decode = src.decode

    def prepare(ex):
        return preprocess(dict(ex, image=decode(ex["image"])), data_config, source_shape)

    info = dataclasses.replace(
        src.info,
        image_shape=output_shape(data_config, source_shape),
        num_classes=len(names),
        class_names=names,
        num_train_examples=num_examples,
        class_counts=tuple(int(c) for c in global_counts) if global_counts is not None and names else (),
    )
    return Split(ds, prepare, info, local_counts)


def subset_indices(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted positions of the examples `data.per_class` keeps: for each class c, the first
    `per_class` positions of class c in a permutation drawn with (seed, c) (all of a class
    with fewer). The subset for k is a prefix of the subset for 2k (the "more real data"
    ceiling holds the smaller subset), and it depends on (labels, per_class, seed) alone."""
    keep = []
    for c in np.unique(labels[labels >= 0]):
        positions = np.flatnonzero(labels == c)
        order = np.random.default_rng([int(seed), int(c)]).permutation(len(positions))
        keep.append(positions[order[:per_class]])
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


def _class_subset(data_config, split, name, classes, what, num_classes, all_processes):
    """(this process's share of the `data.per_class` subset of `split`, counts per class).

    The subset is chosen over the whole split (all processes see the same one), by
    `subset_indices` with `data.subset_seed`, after the class filter; then sharded."""
    whole = open_split(data_config, split, name=name, classes=classes, what=what,
                       all_processes=True, strict=False, subset=False)
    labels = np.concatenate(
        [b for b in whole.encoded.map(lambda ex: ex["label"]).batch(8192).as_numpy_iterator()]
        or [np.zeros(0, np.int32)]
    )
    per_class = int(data_config.per_class)
    keep = subset_indices(labels, per_class, int(data_config.get("subset_seed") or 0))
    counts = np.bincount(labels[keep], minlength=max(num_classes, 1)).astype(np.int64)
    short = {c: int(n) for c, n in enumerate(np.bincount(labels[labels >= 0], minlength=num_classes))
             if n < per_class}
    if short:
        logging.warning("data.per_class=%d: classes %s have fewer examples in split %r; all of "
                        "them are kept.", per_class, short, split)
    mask = np.zeros(len(labels), bool)
    mask[keep] = True
    table = tf.constant(mask)
    ds = whole.encoded.enumerate().filter(lambda i, _: tf.gather(table, i))
    ds = ds.map(lambda _, example: example)
    if not all_processes and jax.process_count() > 1:
        ds = ds.shard(jax.process_count(), jax.process_index())
    return ds, counts


def load_split(data_config, split: str | None = None) -> tuple[tf.data.Dataset, DataInfo]:
    """One split of the configured dataset, classes applied, preprocessed (uint8), in file order."""
    s = open_split(data_config, split)
    return s.ds, s.info


def load_domain_split(
    data_config, domain: str, split: str | None = None
) -> tuple[tf.data.Dataset, DataInfo]:
    """Like `load_split` for domain 'a' or 'b' of a two-domain config (`data.domain_a/_b`)."""
    s = open_domain(data_config, domain, split)
    return s.ds, s.info


def open_domain(data_config, domain: str, split: str | None = None, **kwargs) -> Split:
    """`open_split` for domain 'a' or 'b': the dataset and classes named by `data.domain_<x>`."""
    key = f"domain_{domain}"
    spec = data_config.get(key) or ""
    if not spec.strip():
        raise DatasetError(
            "A two-domain (CycleGAN) run needs both --config.data.domain_a and "
            "--config.data.domain_b, e.g. domain_a=Neutral domain_b=Happy (classes of "
            "data.name), or 'dataset:classes' for another dataset."
        )
    name, classes = parse_domain(spec, data_config.name)
    return open_split(data_config, split, name=name, classes=classes, what=f"config.data.{key}", **kwargs)


def load_arrays(data_config, split: str | None = None, limit: int | None = None):
    """A split as numpy arrays: images float32 in [-1, 1] [N, H, W, C] and labels [N]."""
    ds, info = load_split(data_config, split)
    if limit:
        ds = ds.take(limit)
    images, labels = [], []
    for batch in ds.batch(1024).as_numpy_iterator():
        images.append(batch["image"])
        labels.append(batch["label"])
    if not images:
        raise DatasetError(f"Split {split or data_config.split!r} of {info.name!r} is empty.")
    images = np.concatenate(images).astype(np.float32) / 127.5 - 1.0
    return images, np.concatenate(labels), info


# --------------------------------------------------------------------------------------------
# Deterministic streams.
# --------------------------------------------------------------------------------------------


def _count(ds: tf.data.Dataset) -> int:
    n = int(ds.cardinality())
    if n < 0:  # unknown (e.g. after a filter): count once
        n = int(ds.reduce(np.int64(0), lambda c, _: c + 1))
    return n


def deterministic_stream(
    ds: tf.data.Dataset, *, seed: int, shuffle_buffer: int, skip: int, epoch_size: int | None = None
) -> tf.data.Dataset:
    """An endless stream of epochs, epoch e shuffled with seed (seed, e), minus `skip` elements.

    Element i of the stream is a function of (seed, i) alone, so skipping the elements that
    earlier steps consumed resumes the exact order; at most one epoch is read to skip.
    `epoch_size` (the number of elements of `ds`) is counted when not given.
    """
    if epoch_size is None:
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


def _choice_block(seed: int, num_classes: int, block) -> tf.Tensor:
    """The classes of stream positions [block * CHOICE_BLOCK, (block + 1) * CHOICE_BLOCK)."""
    key = tf.random.experimental.stateless_fold_in(
        tf.constant([seed, 0xC1A55], tf.int64), tf.cast(block, tf.int64)
    )
    return tf.random.stateless_uniform(
        [CHOICE_BLOCK], seed=key, minval=0, maxval=num_classes, dtype=tf.int64
    )


def class_choices(seed: int, num_classes: int, start: int, stop: int) -> np.ndarray:
    """The classes that `balanced_stream` draws at positions [start, stop) (for tests/skips)."""
    first, last = start // CHOICE_BLOCK, (stop - 1) // CHOICE_BLOCK + 1
    blocks = [_choice_block(seed, num_classes, b).numpy() for b in range(first, last)]
    if not blocks:
        return np.zeros(0, np.int64)
    return np.concatenate(blocks)[start - first * CHOICE_BLOCK : stop - first * CHOICE_BLOCK]


def balanced_stream(
    class_datasets: Sequence[tf.data.Dataset],
    class_counts: Sequence[int],
    *,
    seed: int,
    shuffle_buffer: int,
    skip: int,
) -> tf.data.Dataset:
    """An endless class-balanced stream: each position draws its class uniformly at random.

    `class_datasets[c]` holds the `class_counts[c]` examples of class c. Every class is its own
    `deterministic_stream` (epochs of that class, reshuffled per epoch);
    position i takes the next example of class `choice(seed, i)`, a stateless draw. Skipping
    counts how many of the first `skip` draws went to each class and skips that many in each
    class stream, so a resumed run continues exactly where the uninterrupted one was.
    """
    k = len(class_counts)
    if k == 0 or any(int(c) == 0 for c in class_counts):
        raise DatasetError(
            f"Balanced sampling needs examples of every class in this process; counts {list(class_counts)}."
        )
    drawn = np.zeros(k, np.int64)
    full_blocks, rest = divmod(skip, CHOICE_BLOCK)
    for b in range(full_blocks):
        drawn += np.bincount(_choice_block(seed, k, b).numpy(), minlength=k)
    if rest:
        drawn += np.bincount(_choice_block(seed, k, full_blocks).numpy()[:rest], minlength=k)
    streams = [
        deterministic_stream(
            class_datasets[c],
            seed=_derive_seed(seed, c),
            shuffle_buffer=shuffle_buffer,
            skip=int(drawn[c]),
            epoch_size=int(class_counts[c]),
        )
        for c in range(k)
    ]
    choices = (
        tf.data.Dataset.range(full_blocks, 2**62)
        .map(lambda b: _choice_block(seed, k, b))
        .unbatch()
        .skip(rest)
    )
    return tf.data.Dataset.choose_from_datasets(streams, choices)


def example_stream(
    data_config: ml_collections.ConfigDict,
    *,
    seed: int,
    skip: int,
    split: str | None = None,
    name: str | None = None,
    classes: str | None = None,
    what: str = "config.data.classes",
    stream_seed: int | None = None,
) -> tuple[tf.data.Dataset, DataInfo]:
    """This process's endless training stream of float [-1, 1] examples, from position `skip`.

    `seed` drives balancing and augmentation; `stream_seed` (default `seed`) the epoch shuffles.
    """
    s = open_split(data_config, split, name=name, classes=classes, what=what)
    cache = data_config.get("cache", True)
    epoch_size = int(s.local_counts.sum()) if s.local_counts is not None else None
    stream_seed = seed if stream_seed is None else stream_seed
    if data_config.get("balance") and s.info.num_classes > 1:
        # One (cached) dataset per class, filtered before decoding: a rare class costs no scan
        # of the others once cached.
        per_class = [s.class_ds(c) for c in range(s.info.num_classes)]
        if cache:
            per_class = [d.cache() for d in per_class]
        stream = balanced_stream(
            per_class, s.local_counts, seed=_derive_seed(stream_seed, 0xBA1),
            shuffle_buffer=data_config.shuffle_buffer, skip=skip,
        )
    else:
        ds = s.ds.cache() if cache else s.ds
        stream = deterministic_stream(
            ds, seed=stream_seed, shuffle_buffer=data_config.shuffle_buffer, skip=skip,
            epoch_size=epoch_size,
        )
    return _to_model_inputs(stream, data_config, _derive_seed(seed, 0xA06, jax.process_index()), skip), s.info


def _to_model_inputs(stream: tf.data.Dataset, data_config, aug_seed: int, skip: int) -> tf.data.Dataset:
    """uint8 images -> float [-1, 1], augmented (if configured) as a function of (aug_seed,
    position in the stream)."""
    if has_augmentation(data_config):

        def finish(i, ex):
            return dict(ex, image=augment(to_model_range(ex["image"]), i, data_config, aug_seed))

        return stream.enumerate(start=skip).map(finish, num_parallel_calls=AUTOTUNE)
    return stream.map(lambda ex: dict(ex, image=to_model_range(ex["image"])), num_parallel_calls=AUTOTUNE)


# --------------------------------------------------------------------------------------------
# Synthetic examples mixed into the training batches.
# --------------------------------------------------------------------------------------------


def synthetic_paths(data_config) -> list[str]:
    """The tfds dataset directories named by `data.synthetic` (comma-separated)."""
    return [os.path.abspath(os.path.expanduser(p.strip()))
            for p in (data_config.get("synthetic") or "").split(",") if p.strip()]


def synthetic_batch_size(batch_size: int, fraction: float) -> int:
    """Synthetic examples in a batch of `batch_size` with `data.synthetic_fraction`: the nearest
    integer, and at least 1 and at most batch_size - 1 when 0 < fraction < 1."""
    if fraction <= 0:
        return 0
    if fraction >= 1:
        return batch_size
    n = int(round(fraction * batch_size))
    if not 0 < n < batch_size:
        raise DatasetError(
            f"config.data.synthetic_fraction={fraction} of a batch of {batch_size} is {n} synthetic "
            "examples; with real ones beside them it must leave at least one of each: raise "
            "data.batch_size or change the fraction."
        )
    return n


def open_synthetic(data_config, info: DataInfo, *, all_processes: bool = False) -> tuple[tf.data.Dataset, np.ndarray]:
    """The datasets of `data.synthetic` (what the synthesize and translate jobs write) as this
    process's examples `{'image': uint8 [H, W, C] as the real ones, 'label': run class}` in
    file order, and their count per run class.

    Labels are matched to the run's classes (`info.class_names`) by name, so an export numbered
    as the full dataset (FER2013's 7 emotions) joins a run on some of its classes; examples of
    other classes are left out.
    """
    import tensorflow_datasets as tfds

    lookup_by_name = {n.lower(): i for i, n in enumerate(info.class_names)}
    parts, counts = [], np.zeros(max(info.num_classes, 1), np.int64)
    for path in synthetic_paths(data_config):
        try:
            builder = tfds.builder_from_directory(path)
        except Exception as e:  # noqa: BLE001  (any unreadable directory: one line naming it)
            raise DatasetError(
                f"config.data.synthetic: {path} is not a readable tfds dataset directory "
                f"({type(e).__name__}); name the '<output>/<name>/1.0.0' folder that job=synthesize "
                "or job=translate wrote."
            ) from None
        features = builder.info.features
        names = features["label"].names if "label" in features else []
        table = np.array([lookup_by_name.get(n.lower(), -1) for n in names] or [-1], np.int32)
        if not (table >= 0).any():
            raise DatasetError(
                f"config.data.synthetic: {path} has the classes {list(names)}, none of them a class "
                f"of this run ({', '.join(info.class_names)})."
            )
        lookup = tf.constant(table)
        ds = builder.as_dataset(split="train", shuffle_files=False,
                                decoders={"image": tfds.decode.SkipDecoding()})
        if not all_processes and jax.process_count() > 1:
            ds = ds.shard(jax.process_count(), jax.process_index())
        ds = ds.map(lambda ex: {"image": ex["image"], "label": tf.gather(lookup, tf.cast(ex["label"], tf.int32))})
        ds = ds.filter(lambda ex: ex["label"] >= 0)
        counts += count_labels(ds, len(counts))
        image_feature, source_shape = features["image"], tuple(features["image"].shape)

        def prepare(ex, image_feature=image_feature, source_shape=source_shape):
            image = image_feature.decode_example(ex["image"])
            return preprocess(dict(ex, image=image), data_config, source_shape)

        parts.append(ds.map(prepare, num_parallel_calls=AUTOTUNE))
    if not parts:
        raise DatasetError("config.data.synthetic_fraction > 0 needs config.data.synthetic: the tfds "
                           "dataset directories of a synthesize or translate output.")
    ds = parts[0]
    for part in parts[1:]:
        ds = ds.concatenate(part)
    return ds, counts


def synthetic_stream(data_config, info: DataInfo, *, seed: int, skip: int) -> tf.data.Dataset:
    """Endless deterministic stream of the synthetic examples (float [-1, 1], augmented as the
    real ones), from position `skip`: element i depends on (seed, i) alone, as `example_stream`."""
    ds, counts = open_synthetic(data_config, info)
    if data_config.get("cache", True):
        ds = ds.cache()
    stream = deterministic_stream(ds, seed=_derive_seed(seed, 0x5F7), shuffle_buffer=data_config.shuffle_buffer,
                                  skip=skip, epoch_size=int(counts.sum()))
    return _to_model_inputs(stream, data_config, _derive_seed(seed, 0x5F7A, jax.process_index()), skip)


def build_train_data(
    config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
    *,
    n_micro: int = 1,
    start_step: int = 0,
) -> tuple[DataInfo, Iterator[dict[str, jax.Array]]]:
    """The training batches from `start_step` on: dicts of global arrays [n_micro, B, ...].

    B = config.data.batch_size is the global batch; each process reads B / process_count.
    With `data.synthetic` and `data.synthetic_fraction` f, each batch holds round(f x B) synthetic
    examples after the real ones (f = 1: synthetic only), each kind from its own deterministic
    stream, so a resumed run still sees what the uninterrupted one would.
    """
    data_config = config.data
    global_batch = data_config.batch_size
    sharding.check_batch_size(global_batch, mesh)
    local_batch = global_batch // jax.process_count()
    synthetic = synthetic_batch_size(local_batch, float(data_config.get("synthetic_fraction") or 0.0))
    real = local_batch - synthetic
    if real:
        ds, info = example_stream(data_config, seed=config.seed, skip=start_step * n_micro * real)
        ds = ds.batch(real, drop_remainder=True)
    else:
        info = open_split(data_config).info
    if synthetic:
        syn = synthetic_stream(data_config, info, seed=config.seed, skip=start_step * n_micro * synthetic)
        syn = syn.batch(synthetic, drop_remainder=True)
        if real:  # real examples first, then synthetic ones, in every batch
            ds = tf.data.Dataset.zip(ds, syn).map(
                lambda a, b: {k: tf.concat([a[k], b[k]], 0) for k in ("image", "label")}
            )
        else:
            ds = syn
    ds = ds.batch(n_micro, drop_remainder=True).prefetch(AUTOTUNE)
    return info, device_batches(ds.as_numpy_iterator(), mesh, batch_axis=1)


def build_two_domain_data(
    config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
    *,
    n_micro: int = 1,
    start_step: int = 0,
) -> tuple[DataInfo, DataInfo, Iterator[dict[str, jax.Array]]]:
    """Unpaired two-domain batches for CycleGAN: (info_a, info_b, iterator).

    Each batch is `{'a': [n_micro, B, H, W, C], 'b': [n_micro, B, H, W, C], 'label_a': [n_micro,
    B], 'label_b': [n_micro, B]}` (global arrays sharded on the batch axis, B =
    data.batch_size). Domain a is `data.domain_a`, domain b `data.domain_b`, each
    "[dataset:]classes" (e.g. "Neutral" and "Happy" of data.name, or "image_folder:" for all of
    another dataset); label_x is the class within the domain (0 for a single class). The two
    domains are independent deterministic streams (own seeds), so batches from step s on
    depend only on (seed, s).
    """
    data_config = config.data
    global_batch = data_config.batch_size
    sharding.check_batch_size(global_batch, mesh)
    local_batch = global_batch // jax.process_count()
    skip = start_step * n_micro * local_batch
    streams, infos = [], []
    for k, domain in enumerate("ab"):
        key = f"domain_{domain}"
        spec = data_config.get(key) or ""
        if not spec.strip():
            open_domain(data_config, domain)  # raises the DatasetError that explains
        name, classes = parse_domain(spec, data_config.name)
        seed = _derive_seed(config.seed, 0xD0 + k)
        stream, info = example_stream(
            data_config, seed=seed, skip=skip, name=name, classes=classes,
            what=f"config.data.{key}",
        )
        streams.append(stream)
        infos.append(info)
    if infos[0].image_shape != infos[1].image_shape:
        raise DatasetError(
            f"The two domains have different image shapes: a {infos[0].image_shape} "
            f"({infos[0].name}), b {infos[1].image_shape} ({infos[1].name}); set "
            "--config.data.image_size and --config.data.channels so that they match."
        )

    def batched(stream):
        return stream.batch(local_batch, drop_remainder=True).batch(n_micro, drop_remainder=True)

    ds = tf.data.Dataset.zip(batched(streams[0]), batched(streams[1])).map(
        lambda a, b: {"a": a["image"], "b": b["image"], "label_a": a["label"], "label_b": b["label"]}
    )
    ds = ds.prefetch(AUTOTUNE)
    return infos[0], infos[1], device_batches(ds.as_numpy_iterator(), mesh, batch_axis=1)


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
