"""The synthesize job: a trained generator's samples written out as a tfds dataset.

    python launch.py --config=configs/acgan_mnist.py --config.job=synthesize \
        [--config.jobs.synthesize.num_per_class=1000] [--config.restore=best|latest|STEP] \
        [--config.jobs.synthesize.min_confidence=0.9] [--config.jobs.synthesize.output=DIR]

Restores a checkpoint of the workdir (`config.restore`) and draws, according to what the
generator is told:

* a class label (conditional DCGAN family, ACGAN): `num_per_class` samples of every class;
* InfoGAN's or Info-BEGAN's categorical code: `num_per_class` samples of every value of the
  first code, labelled with the real class Q matches it to on the real `code_split` (Hungarian
  matching, as `evals.code_accuracy`, with Q reading under the same batch statistics; the
  matched accuracy goes in `synthesize.json`); codes left unmatched are not exported;
* an attribute vector (ACGAN on CelebA or the digit attributes): `num_per_class` samples whose
  vectors are those of random real training images (the real joint distribution), with the
  settings of `attributes` forced (e.g. `Smiling=1,Male=0`); the vectors are the `attributes`
  feature, and `label` is `label` if set, else class 0 (the attributes carry the condition);
* nothing (an unconditional GAN, e.g. report 001's "fake Neutral" DCGAN trained on one class):
  `num_per_class` samples, all labelled `label` (a class name or index of the real dataset;
  default: the one class of `data.classes`).

Labels are numbered as in the real dataset with all its classes (FER2013: Happy = 3 of 7), so
the export concatenates with a real training split. Under `output` (default
`<workdir>/synthetic`) go

* `<name>/1.0.0/`: the tfds dataset (`image`, `label` with the real class names, `attributes`
  where the generator makes them), written with tfds' own writer
  (`ganjax.data.writer.write_image_dataset`); load it with
  `tfds.builder_from_directory(<output>/<name>/1.0.0).as_dataset(split="train")`;
* `<name>/preview.png`: the first `preview` samples of each class, one row per class;
* `<name>/synthesize.json`: the generator, checkpoint step, seed, counts per class and, with
  `min_confidence`, the fraction the judge kept.

`min_confidence > 0` keeps only samples that an independent judge (a CNN trained on the real
training split, `ganjax/judges.py`, cached in `<workdir>/judges/`) reads as the requested class
with probability >= `min_confidence`; more are drawn until each class has `num_per_class` (or
`max_draws_factor` x that many were tried: the shortfall is reported).
"""

from __future__ import annotations

import json
import os
import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from ganjax import evaluators, images as image_lib, runs
from ganjax.data import pipeline, writer
from ganjax.evaluators import code_accuracy
from ganjax.errors import ConfigError


def default_config() -> ml_collections.ConfigDict:
    """`config.jobs.synthesize`."""
    c = ml_collections.ConfigDict()
    c.num_per_class = 1000  # samples per class (per code value, per attribute setting; unconditional: in all)
    c.label = ""  # unconditional generators: class name or index of every sample; "" = the one class of data.classes
    c.attributes = ""  # attribute generators: settings forced on the real vectors, e.g. "Smiling=1,Male=0"
    c.min_confidence = 0.0  # keep only samples the judge reads as the requested class with p >= this; 0 = keep all
    c.max_draws_factor = 10  # with min_confidence: draw at most this x num_per_class per class
    c.judge_steps = 1000  # with min_confidence: training steps of the judge (cached in <workdir>/judges)
    c.code_split = "test"  # InfoGAN: real split whose classes the categorical code is matched to
    c.output = ""  # output root; "" = <workdir>/synthetic
    c.name = ""  # tfds dataset name; "" = synthetic_<config.name>
    c.preview = 10  # samples per class in preview.png
    c.seed = 0  # sampling seed (independent of training)
    c.batch_size = 500  # images per generator call
    return c


# --------------------------------------------------------------------------------------------
# Classes in the real dataset's numbering.
# --------------------------------------------------------------------------------------------


def full_class_names(data_config) -> tuple[str, ...]:
    """The class names of the dataset with every class (what a real training split has)."""
    try:
        return tuple(pipeline.open_split(data_config, classes="").info.class_names)
    except Exception:  # noqa: BLE001  (e.g. an image folder without classes)
        return ()


def to_full_labels(run_names: tuple[str, ...], full_names: tuple[str, ...]) -> tuple[np.ndarray, tuple[str, ...]]:
    """(index into the names written for each run class, those names): the real dataset's
    numbering when every run class is one of its classes, else the run's own names (a merged
    class such as "Neutral+Sad" has no single real index)."""
    by_name = {c.lower(): i for i, c in enumerate(full_names)}
    if full_names and all(n.lower() in by_name for n in run_names):
        return np.array([by_name[n.lower()] for n in run_names], np.int64), full_names
    if full_names:
        logging.warning("Classes %s are not all classes of the real dataset %s; the export numbers "
                        "them as the run does.", run_names, full_names)
    return np.arange(len(run_names), dtype=np.int64), tuple(run_names)


def _resolve_label(label: str, data_config, full_names: tuple[str, ...]) -> str:
    """The class name an unconditional generator's samples get."""
    if not label:
        classes = [c.strip() for c in data_config.classes.split(",") if c.strip()]
        if len(classes) != 1:
            raise ConfigError(
                "An unconditional generator's samples need a label: set "
                "--config.jobs.synthesize.label=NAME (e.g. Neutral), the class it was trained on."
            )
        label = classes[0]
    if re.fullmatch(r"\d+", label) and full_names and int(label) < len(full_names):
        return full_names[int(label)]
    for name in full_names:
        if name.lower() == label.lower():
            return name
    if full_names:
        raise ConfigError(f"config.jobs.synthesize.label={label!r} is not a class of {data_config.name!r}: "
                          f"{', '.join(full_names)}.")
    return label


def _forced_attributes(spec: str, names: tuple[str, ...]) -> dict[int, float]:
    """"Smiling=1,Male=0" -> {index of Smiling: 1.0, index of Male: 0.0}."""
    forced = {}
    lower = {n.lower(): i for i, n in enumerate(names)}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, sep, value = item.partition("=")
        if not sep or name.strip().lower() not in lower or value.strip() not in ("0", "1"):
            raise ConfigError(
                f"config.jobs.synthesize.attributes={spec!r}: write NAME=0 or NAME=1 items, "
                f"separated by commas, with NAME one of {', '.join(names)}."
            )
        forced[lower[name.strip().lower()]] = float(value.strip())
    return forced


# --------------------------------------------------------------------------------------------
# The job.
# --------------------------------------------------------------------------------------------


def _groups(trained, sc, config, full_names):
    """What to draw, by what the generator is told: (groups, class names written, mode, summary
    extras, attributes_of). A group is (run class or None, written label index, parts_fn(key, n))."""
    algorithm = trained.algorithm
    latent, info = algorithm.latent, algorithm.info
    attributes_of = None
    summary_extra = {}
    if latent.num_classes:
        indices, names = to_full_labels(tuple(info.class_names), full_names)
        groups = [(c, int(indices[c]), lambda k, n, c=c: latent.sample(k, n, label=jnp.full((n,), c, jnp.int32)))
                  for c in range(latent.num_classes)]
        mode = "class"
    elif latent.categorical:
        match = runs.match_codes(trained, sc.code_split)
        mapping, accuracy = match.mapping, match.accuracy
        indices, names = to_full_labels(tuple(info.class_names), full_names)

        def code_parts(k, n, code):
            parts = latent.sample(k, n)
            parts["cat"] = parts["cat"].at[:, 0].set(code)
            return parts

        groups = [(mapping[code], int(indices[mapping[code]]), lambda k, n, code=code: code_parts(k, n, code))
                  for code in sorted(mapping, key=mapping.get)]
        mode = "categorical_code"
        summary_extra = {"code_to_class": {str(code): names[int(indices[c])] for code, c in mapping.items()},
                         "code_accuracy": accuracy, "code_split": sc.code_split,
                         "code_batch_stats": code_accuracy.configured_batch_stats(trained.config)}
    elif latent.num_attributes:
        forced = _forced_attributes(sc.attributes, tuple(info.attribute_names))
        real = _real_attributes(config.data, sc.num_per_class * sc.max_draws_factor, sc.seed)

        def attribute_parts(k, n):
            rows = real[np.asarray(jax.random.randint(k, (n,), 0, len(real)))].copy()
            for j, v in forced.items():
                rows[:, j] = v
            return latent.sample(k, n, attributes=jnp.asarray(rows))

        label = _resolve_label(sc.label, config.data, full_names) if sc.label else None
        names = full_names or ((label,) if label else ("unlabelled",))
        label_index = names.index(label) if label else 0
        groups = [(None, label_index, attribute_parts)]
        attributes_of = lambda parts: np.asarray(parts["attributes"])  # noqa: E731
        mode = "attributes"
        summary_extra = {"forced_attributes": {info.attribute_names[j]: v for j, v in forced.items()}}
    else:
        label = _resolve_label(sc.label, config.data, full_names)
        names = full_names or (label,)
        groups = [(None, names.index(label), lambda k, n: latent.sample(k, n))]
        mode = "unconditional"

    return groups, names, mode, summary_extra, attributes_of


def _draw_group(parts_fn, generate, state, sc, key, judge, run_class, attributes_of):
    """Samples of one group: (images [<= num_per_class], their attribute vectors or None, how
    many were drawn, how many of those passed the judge). With a judge, batches are drawn until `num_per_class` pass
    `min_confidence` or `max_draws_factor * num_per_class` were tried."""
    kept, kept_attrs, tried = [], [], 0
    while sum(len(k) for k in kept) < sc.num_per_class:
        n = sc.num_per_class if judge is None else max(sc.batch_size, sc.num_per_class)
        parts = parts_fn(n, jax.random.fold_in(key, tried))
        images = evaluators.generate_in_batches(generate, state, parts, sc.batch_size)
        tried += n
        keep = np.ones(n, bool)
        if judge is not None:
            probs = jax.nn.softmax(judge.logits(images), axis=-1)
            keep = np.asarray(probs[:, run_class]) >= sc.min_confidence
        kept.append(images[keep])
        if attributes_of is not None:
            kept_attrs.append(attributes_of(parts)[keep])
        if judge is None or tried >= sc.max_draws_factor * sc.num_per_class:
            break
    passed = sum(len(k) for k in kept)
    images = np.concatenate(kept)[: sc.num_per_class]
    attributes = np.concatenate(kept_attrs)[: sc.num_per_class] if attributes_of is not None else None
    return images, attributes, tried, passed


def run(config, workdir: str) -> dict:
    """Samples and writes (see the module docstring); returns the summary dict."""
    sc = config.jobs.synthesize
    if sc.num_per_class < 1:
        raise ConfigError(f"config.jobs.synthesize.num_per_class must be >= 1, got {sc.num_per_class}.")
    if not 0.0 <= sc.min_confidence < 1.0:
        raise ConfigError(f"config.jobs.synthesize.min_confidence must be in [0, 1), got {sc.min_confidence}.")
    trained = runs.load_trained(workdir, config.restore, config=config)
    algorithm = trained.algorithm
    if algorithm.latent is None:
        raise ConfigError(
            f"gan.name={config.gan.name!r} translates images rather than sampling them: use "
            "--config.job=translate, which writes the same kind of tfds dataset."
        )
    output = os.path.abspath(sc.output or os.path.join(trained.workdir, "synthetic"))
    name = writer.safe_name(sc.name or f"synthetic_{config.name}", lower=True)
    writer.check_new_dataset(output, name)  # before any sampling
    full_names = full_class_names(config.data)
    key = jax.random.PRNGKey(sc.seed)
    generate = jax.jit(algorithm.generate)
    groups, names, mode, summary_extra, attributes_of = _groups(trained, sc, config, full_names)

    judge = None
    if sc.min_confidence > 0:
        if mode not in ("class", "categorical_code"):
            raise ConfigError("config.jobs.synthesize.min_confidence filters by class: it needs a generator "
                              "told a class label or an InfoGAN code, not this "
                              f"{mode} generator.")
        from ganjax import judges

        judge = judges.load_or_train(os.path.join(trained.workdir, "judges"), config.data, "label",
                                     seed=config.seed, steps=sc.judge_steps)

    all_images, all_labels, all_attributes, counts = [], [], [], {}
    for group, (run_class, label_index, parts_fn) in enumerate(groups):
        group_key = jax.random.fold_in(key, group)
        images, attributes, tried, passed = _draw_group(
            lambda n, k: parts_fn(k, n), generate, trained.state, sc, group_key, judge, run_class, attributes_of)
        all_images.append(images)
        all_labels.append(np.full(len(images), label_index, np.int64))
        if attributes is not None:
            all_attributes.append(attributes)
        counts[names[label_index]] = {"images": int(len(images)), "drawn": int(tried),
                                      "kept_fraction": float(passed / tried)}
        if len(images) < sc.num_per_class:
            logging.warning("Class %s: only %d of %d samples passed min_confidence=%.2f in %d draws.",
                            names[label_index], len(images), sc.num_per_class, sc.min_confidence, tried)

    empty = [n for n, c in counts.items() if not c["images"]]
    if empty:
        raise ConfigError(
            f"No sample of {', '.join(empty)} passed config.jobs.synthesize.min_confidence="
            f"{sc.min_confidence} in {max(counts[n]['drawn'] for n in empty)} draws: lower it (or raise "
            "max_draws_factor), or train the generator longer."
        )
    images = image_lib.to_uint8(np.concatenate(all_images))
    labels = np.concatenate(all_labels)
    attributes = np.concatenate(all_attributes).astype(np.int64) if all_attributes else None

    tfds_dir = writer.write_image_dataset(
        output, name, images, labels, names,
        attributes=attributes, attribute_names=tuple(algorithm.info.attribute_names) if attributes is not None else (),
        description=(f"{config.gan.name} samples (checkpoint step {trained.step}, restore={config.restore}) "
                     f"of {trained.workdir}."),
    )
    preview = _preview(all_images, sc.preview)
    preview_path = os.path.join(output, name, "preview.png")
    image_lib.save_png(preview, preview_path)
    summary = {
        "generator": config.gan.name, "config": config.name, "workdir": trained.workdir,
        "restore": str(config.restore), "checkpoint_step": trained.step, "mode": mode,
        "seed": sc.seed, "num_images": int(len(images)), "class_names": list(names),
        "counts": counts, "min_confidence": sc.min_confidence, "tfds_dir": tfds_dir,
        "preview": preview_path, **summary_extra,
    }
    with open(os.path.join(output, name, "synthesize.json"), "w") as f:
        json.dump(summary, f, indent=2)
    logging.info("Wrote %d samples (%s, checkpoint step %d) to %s", len(images), mode, trained.step, tfds_dir)
    return summary


def _real_attributes(data_config, limit: int, seed: int) -> np.ndarray:
    """Attribute vectors [N, A] (float 0/1) of real training images."""
    ds, _ = pipeline.load_split(data_config)
    rows = [b["attributes"] for b in ds.take(limit).batch(1024).as_numpy_iterator()]
    if not rows:
        raise ConfigError(f"No attribute vectors in {data_config.name!r}'s {data_config.split!r} split.")
    rows = np.concatenate(rows).astype(np.float32)
    return rows[np.random.default_rng(seed).permutation(len(rows))]


def _preview(groups: list[np.ndarray], per_row: int) -> np.ndarray:
    """One row of the first `per_row` samples of each group (short groups padded white)."""
    rows = []
    for g in groups:
        g = image_lib.to_uint8(g[:per_row])
        if len(g) < per_row:
            g = np.concatenate([g, np.full((per_row - len(g), *g.shape[1:]), 255, np.uint8)])
        rows.append(g)
    return image_lib.make_grid(np.concatenate(rows), len(rows))
