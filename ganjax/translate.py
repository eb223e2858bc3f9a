"""The translate job: a trained CycleGAN generator applied to a dataset split or a folder.

    python launch.py --config=configs/cyclegan_fer.py --config.job=translate \
        [--config.jobs.translate.direction=a2b] [--config.jobs.translate.split=train] \
        [--config.jobs.translate.folder=/path/to/pngs] [--config.jobs.translate.output=DIR]

Restores a checkpoint of the workdir (the training run's; `--config.restore=latest|best|STEP`,
default the latest), translates every image of the source domain (`data.domain_a` for a2b, `data.domain_b`
for b2a) in `jobs.translate.split`, or every png/jpg in `jobs.translate.folder`, and writes
under `jobs.translate.output` (default `<workdir>/translated`):

* `train/<target label>/<i>.png`: the translated images, an image folder that
  `--config.data.name=image_folder --config.data.folder=<output>` (or `tfds.ImageFolder`) reads;
* `tfds/<name>/1.0.0/`: the same images as a tfds dataset (`image`, `label`), labelled with the
  target class as the source dataset numbers it (FER2013: Happy = 3 of the 7 emotions), so it can
  be concatenated with the real training split of a classifier:
  `tfds.builder_from_directory(<output>/tfds/<name>/1.0.0).as_dataset(split="train")`;
* `translated.json`: counts, label, direction, checkpoint step.
"""

from __future__ import annotations

import glob
import json
import os
import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from ganjax import gans, images as image_lib, runs
from ganjax.data import pipeline, writer
from ganjax.errors import ConfigError, DatasetError


def default_config() -> ml_collections.ConfigDict:
    """`config.jobs.translate`."""
    c = ml_collections.ConfigDict()
    c.direction = "a2b"  # a2b (generator G) | b2a (generator F)
    c.split = ""  # split of the source domain to translate; "" = data.split
    c.folder = ""  # translate the images in this folder instead (png/jpg)
    c.output = ""  # output root; "" = <workdir>/translated
    c.limit = 0  # translate at most this many images; 0 = all
    c.label = ""  # class name of the output; "" = the target domain's class names
    c.batch_size = 64  # images per generator call
    return c


def _target_label(config, target: str) -> tuple[str, tuple[str, ...], int]:
    """(label name, class names of the labelled dataset, label index) of the target domain."""
    data = config.data
    name, classes = pipeline.parse_domain(data.get(f"domain_{target}"), data.name)
    label = config.jobs.translate.label or classes
    if not label or "," in label or "+" in label:
        raise ConfigError(
            f"The target domain {classes!r} is not one class; name the output's label with "
            "--config.jobs.translate.label=NAME."
        )
    try:
        all_names = tuple(pipeline.open_source(data, data.split, name).info.class_names)
    except Exception:  # e.g. a folder dataset without classes
        all_names = ()
    by_name = {c.lower(): i for i, c in enumerate(all_names)}
    if label.lower() in by_name:
        index = by_name[label.lower()]
        return all_names[index], all_names, index
    if re.fullmatch(r"\d+", label) and int(label) < len(all_names):
        return all_names[int(label)], all_names, int(label)
    return label, (label,), 0


def _folder_images(folder: str, shape) -> tuple[np.ndarray, list[str]]:
    from PIL import Image

    paths = sorted(
        p for p in glob.glob(os.path.join(folder, "**", "*"), recursive=True)
        if p.lower().endswith((".png", ".jpg", ".jpeg"))
    )
    if not paths:
        raise DatasetError(f"config.jobs.translate.folder={folder!r} holds no png/jpg images.")
    h, w, c = shape
    out = []
    for p in paths:
        im = Image.open(p).convert("L" if c == 1 else "RGB").resize((w, h), Image.BILINEAR)
        out.append(np.asarray(im, np.uint8).reshape(h, w, c))
    return np.stack(out), [os.path.splitext(os.path.basename(p))[0] for p in paths]


def _split_images(config, source: str, split: str, limit: int) -> np.ndarray:
    ds, _ = pipeline.load_domain_split(config.data, source, split)
    if limit:
        ds = ds.take(limit)
    batches = [b["image"] for b in ds.batch(256).as_numpy_iterator()]
    if not batches:
        raise DatasetError(f"Domain {source} has no images in split {split!r}.")
    return np.concatenate(batches)


def run(config, workdir: str) -> dict:
    """Translates and writes (see the module docstring); returns the summary dict."""
    tc = config.jobs.translate
    if tc.direction not in ("a2b", "b2a"):
        raise ConfigError(f"config.jobs.translate.direction must be a2b or b2a, got {tc.direction!r}.")
    if not gans.get(config.gan.name).can_translate:
        raise ConfigError(f"config.job=translate needs a CycleGAN config, not gan.name={config.gan.name!r}.")
    source, target = ("a", "b") if tc.direction == "a2b" else ("b", "a")
    trained = runs.load_trained(workdir, config.restore, config=config)
    gan, state, info = trained.algorithm, trained.state, trained.algorithm.info

    label, class_names, label_index = _target_label(config, target)
    output = os.path.abspath(tc.output or os.path.join(trained.workdir, "translated"))
    dataset_name = "translated_" + writer.safe_name(f"{tc.direction}_{label}", lower=True)
    writer.check_new_dataset(os.path.join(output, "tfds"), dataset_name)  # before translating
    split = tc.split or config.data.split
    if tc.folder:
        sources_uint8, names = _folder_images(tc.folder, info.image_shape)
    else:
        sources_uint8 = _split_images(config, source, split, tc.limit)
        names = [f"{split}_{i:06d}" for i in range(len(sources_uint8))]
    if tc.limit:
        sources_uint8, names = sources_uint8[: tc.limit], names[: tc.limit]

    apply = jax.jit(lambda s, x: gan.translate(s, x, tc.direction))
    bs = tc.batch_size
    out = []
    for start in range(0, len(sources_uint8), bs):
        chunk = sources_uint8[start : start + bs].astype(np.float32) / 127.5 - 1.0
        n = len(chunk)
        if n < bs:  # one compiled shape for every batch
            chunk = np.concatenate([chunk, np.zeros((bs - n, *chunk.shape[1:]), np.float32)])
        out.append(image_lib.to_uint8(jax.device_get(apply(state, jnp.asarray(chunk))))[:n])
    translated = np.concatenate(out)

    folder = writer.write_png_folder(
        os.path.join(output, "train", writer.safe_name(label)), translated, names
    )
    tfds_dir = writer.write_image_dataset(
        os.path.join(output, "tfds"),
        dataset_name,
        translated,
        [label_index] * len(translated),
        class_names,
        description=f"CycleGAN {tc.direction} translations (checkpoint step {trained.step}) of {trained.workdir}.",
    )
    summary = {
        "direction": tc.direction, "source": config.data.get(f"domain_{source}"),
        "source_split": None if tc.folder else split, "folder": tc.folder or None,
        "label": label, "label_index": label_index, "class_names": list(class_names),
        "num_images": int(len(translated)), "checkpoint_step": trained.step,
        "png_dir": folder, "tfds_dir": tfds_dir,
    }
    with open(os.path.join(output, "translated.json"), "w") as f:
        json.dump(summary, f, indent=2)
    logging.info("Translated %d images (%s, label %s) into %s", len(translated), tc.direction, label, output)
    return summary
