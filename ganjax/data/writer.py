"""Images out of ganjax: a tfds dataset written with tfds' own writer, and PNG folders.

`write_image_dataset` stores uint8 images with their labels (and attribute vectors) through
`tfds.dataset_builders.store_as_tfds_dataset`, so the result loads with

    tfds.builder_from_directory(path).as_dataset(split="train")

with the same features as a real dataset (`image`, `label` as a ClassLabel with the real class
names, `attributes` where there are any), ready to be concatenated with a real training split.
"""

from __future__ import annotations

import os
import re
from typing import Sequence

import numpy as np

from ganjax import images as image_lib
from ganjax.errors import OutputExistsError


def safe_name(text: str, lower: bool = False) -> str:
    """A file or dataset name from free text: runs of other characters become '_'."""
    if lower:
        return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text)


def write_image_dataset(
    data_dir: str,
    name: str,
    images: np.ndarray,
    labels: Sequence[int],
    class_names: Sequence[str],
    *,
    attributes: np.ndarray | None = None,
    attribute_names: Sequence[str] = (),
    split: str = "train",
    description: str = "",
    version: str = "1.0.0",
) -> str:
    """Writes a tfds dataset `name` under `data_dir`; returns its directory
    (`data_dir/name/version`, what `tfds.builder_from_directory` takes).

    Args:
      images: uint8 [N, H, W, C].
      labels: N class indices into `class_names`.
      attributes: optional {0, 1} [N, A] vectors named by `attribute_names` (a `Sequence` of
        booleans per example, as tfds' `celeb_a` stores them).
    """
    import tensorflow_datasets as tfds

    check_new_dataset(data_dir, name, version)
    images = image_lib.to_uint8(images)
    labels = np.asarray(labels, np.int64)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels.")
    feature_spec = {
        "image": tfds.features.Image(shape=tuple(images.shape[1:])),
        "label": tfds.features.ClassLabel(names=list(class_names)),
    }
    if attributes is not None:
        feature_spec["attributes"] = tfds.features.FeaturesDict(
            {a: np.bool_ for a in attribute_names}
        )

    def example(i: int) -> dict:
        ex = {"image": images[i], "label": int(labels[i])}
        if attributes is not None:
            ex["attributes"] = {a: bool(attributes[i, j]) for j, a in enumerate(attribute_names)}
        return ex

    tfds.dataset_builders.store_as_tfds_dataset(
        name=name,
        version=version,
        features=tfds.features.FeaturesDict(feature_spec),
        split_datasets={split: [(i, example(i)) for i in range(len(images))]},
        data_dir=data_dir,
        description=description,
    )
    return os.path.join(data_dir, name, version)


def check_new_dataset(data_dir: str, name: str, version: str = "1.0.0") -> None:
    """OutputExistsError if `data_dir/name/version` is already there (it is never overwritten)."""
    path = os.path.join(data_dir, name, version)
    if os.path.exists(path):
        raise OutputExistsError(
            f"{path} already holds a dataset, which is kept: give the new one another name or "
            "output directory (jobs.<job>.name / jobs.<job>.output), or move the old one away."
        )


def write_png_folder(folder: str, images: np.ndarray, names: Sequence[str]) -> str:
    """`folder/<name>.png` for each image (uint8 or [-1, 1]); returns `folder`."""
    os.makedirs(folder, exist_ok=True)
    for image, name in zip(image_lib.to_uint8(images), names):
        image_lib.save_png(image, os.path.join(folder, f"{name}.png"))
    return folder
