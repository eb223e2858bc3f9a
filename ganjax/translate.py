"""The translate job: a trained CycleGAN generator applied to a dataset split or a folder.

    python launch.py --config=configs/cyclegan_fer.py --config.job=translate \
        [--config.translate.direction=a2b] [--config.translate.split=train] \
        [--config.translate.folder=/path/to/pngs] [--config.translate.output=DIR]

Restores the latest checkpoint of the workdir (the training run's), translates every image of
the source domain (`data.domain_a` for a2b, `data.domain_b` for b2a) in `translate.split`, or
every png/jpg in `translate.folder`, and writes under `translate.output` (default
`<workdir>/translated`):

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
import numpy as np
from absl import logging

from ganjax import gans, images as image_lib
from ganjax.checkpoint import Checkpointer
from ganjax.config import ConfigError
from ganjax.data import pipeline
from ganjax.data.core import DatasetError


def _target_label(config, target: str) -> tuple[str, tuple[str, ...], int]:
    """(label name, class names of the labelled dataset, label index) of the target domain."""
    data = config.data
    name, classes = pipeline.parse_domain(data.get(f"domain_{target}"), data.name)
    label = config.translate.label or classes
    if not label or "," in label or "+" in label:
        raise ConfigError(
            f"The target domain {classes!r} is not one class; name the output's label with "
            "--config.translate.label=NAME."
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
        raise DatasetError(f"config.translate.folder={folder!r} holds no png/jpg images.")
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
    tc = config.translate
    if tc.direction not in ("a2b", "b2a"):
        raise ConfigError(f"config.translate.direction must be a2b or b2a, got {tc.direction!r}.")
    gan_class = gans.get(config.gan.name)
    if not hasattr(gan_class, "translate"):
        raise ConfigError(f"config.job=translate needs a CycleGAN config, not gan.name={config.gan.name!r}.")
    source, target = ("a", "b") if tc.direction == "a2b" else ("b", "a")
    workdir = os.path.abspath(workdir)
    info = gan_class.data_info(config)
    gan = gans.create(config, info)
    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), config.train.keep_checkpoints)
    step = checkpointer.latest_step()
    if step is None:
        raise ConfigError(
            f"No checkpoint in {workdir}/checkpoints to translate with: train first "
            "(the same command without --config.job=translate), or pass that run's --workdir."
        )
    state = checkpointer.restore(gan.init_state(jax.random.PRNGKey(config.seed)))
    checkpointer.close()

    split = tc.split or config.data.split
    if tc.folder:
        sources_uint8, names = _folder_images(tc.folder, info.image_shape)
    else:
        sources_uint8 = _split_images(config, source, split, tc.limit)
        names = [f"{split}_{i:06d}" for i in range(len(sources_uint8))]
    if tc.limit:
        sources_uint8, names = sources_uint8[: tc.limit], names[: tc.limit]
    label, class_names, label_index = _target_label(config, target)

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

    output = os.path.abspath(tc.output or os.path.join(workdir, "translated"))
    folder = os.path.join(output, "train", re.sub(r"[^A-Za-z0-9_.+-]+", "_", label))
    os.makedirs(folder, exist_ok=True)
    for image, name in zip(translated, names):
        image_lib.save_png(image, os.path.join(folder, f"{name}.png"))

    import tensorflow_datasets as tfds

    ds_name = "translated_" + re.sub(r"[^a-z0-9]+", "_", f"{tc.direction}_{label}".lower()).strip("_")
    features = tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=tuple(info.image_shape)),
        "label": tfds.features.ClassLabel(names=list(class_names)),
    })
    tfds.dataset_builders.store_as_tfds_dataset(
        name=ds_name, version="1.0.0", features=features,
        split_datasets={"train": [(i, {"image": im, "label": label_index}) for i, im in enumerate(translated)]},
        data_dir=os.path.join(output, "tfds"),
        description=f"CycleGAN {tc.direction} translations (checkpoint step {step}) of {workdir}.",
    )
    summary = {
        "direction": tc.direction, "source": config.data.get(f"domain_{source}"),
        "source_split": None if tc.folder else split, "folder": tc.folder or None,
        "label": label, "label_index": label_index, "class_names": list(class_names),
        "num_images": int(len(translated)), "checkpoint_step": int(step),
        "png_dir": folder, "tfds_dir": os.path.join(output, "tfds", ds_name, "1.0.0"),
    }
    with open(os.path.join(output, "translated.json"), "w") as f:
        json.dump(summary, f, indent=2)
    logging.info("Translated %d images (%s, label %s) into %s", len(translated), tc.direction, label, output)
    return summary
