"""The dataset summary job: per-class distribution table of every split, preview grids per class.

    python launch.py --config=configs/dataset_stats.py --config.data.name=fer2013 \
        --config.data.manual_dir=/path/to/fer2013

prints (as report 001 showed FER2013) the number of examples of each class in each split, after
`data.classes`, and writes to the workdir:

* `class_counts.json`: {split: {class: count}} (for celeb_a without a label attribute: the
  positives of each of the 40 attributes);
* `preview_<split>_<k>_<class>.png`: a grid of the first `data.preview` images of class k of
  `data.split` (after preprocessing, as the models see them);
* with `data.domain_a` / `data.domain_b`: the size of each domain and its preview grid.
"""

from __future__ import annotations

import dataclasses
import json
import os

import ml_collections
import numpy as np
import tensorflow as tf

from ganjax import images as image_lib
from ganjax.data import pipeline, sources
from ganjax.data.writer import safe_name
from ganjax.data.core import DataInfo

GRID_COLS = 8


def _safe(name: str) -> str:
    return safe_name(name) or "class"


def _split_order(name: str):
    known = ("train", "validation", "public_test", "private_test", "test")
    return (known.index(name) if name in known else len(known), name)


def format_table(title: str, row_names, columns: dict[str, list[int]]) -> str:
    """A plain-text table: one row per class, one column per split, then total and percent."""
    splits = list(columns)
    totals = [sum(columns[s][i] for s in splits) for i in range(len(row_names))]
    grand = sum(totals)
    name_w = max([len("Class"), len("Total")] + [len(n) for n in row_names])
    widths = [max(len(s), 7) for s in splits]
    header = f"{'Class':<{name_w}}  " + "  ".join(f"{s:>{w}}" for s, w in zip(splits, widths))
    header += f"  {'total':>7}  {'%':>6}"
    lines = [title, header, "-" * len(header)]
    for i, n in enumerate(row_names):
        cells = "  ".join(f"{columns[s][i]:>{w}}" for s, w in zip(splits, widths))
        pct = 100.0 * totals[i] / grand if grand else 0.0
        lines.append(f"{n:<{name_w}}  {cells}  {totals[i]:>7}  {pct:>5.1f}%")
    lines.append("-" * len(header))
    cells = "  ".join(f"{sum(columns[s]):>{w}}" for s, w in zip(splits, widths))
    lines.append(f"{'Total':<{name_w}}  {cells}  {grand:>7}  {100.0 if grand else 0.0:>5.1f}%")
    return "\n".join(lines)


def _attribute_counts(data_config, split: str) -> tuple[tuple[str, ...], list[int], int]:
    src = sources.open_source(data_config, split, "celeb_a", all_processes=True)
    ds = src.ds.map(lambda ex: ex["attributes"]).batch(8192)
    total, positives = 0, np.zeros(len(src.info.attribute_names), np.int64)
    for batch in ds.as_numpy_iterator():
        positives += (batch > 0.5).sum(0)
        total += len(batch)
    return src.info.attribute_names, positives.tolist(), total


def _previews(ds: tf.data.Dataset, info: DataInfo, per_class: int) -> dict[int, list[np.ndarray]]:
    """The first `per_class` preprocessed images of each class (one group when unlabelled)."""
    k = max(info.num_classes, 1)
    found: dict[int, list[np.ndarray]] = {c: [] for c in range(k)}
    for batch in ds.batch(256).as_numpy_iterator():
        for image, label in zip(batch["image"], batch["label"]):
            label = int(label) if info.num_classes else 0
            if len(found[label]) < per_class:
                found[label].append(image)
        if all(len(v) >= per_class for v in found.values()):
            break
    return found


def _write_grid(images: list[np.ndarray], shape, path: str) -> None:
    n = len(images)
    cols = min(GRID_COLS, max(n, 1))
    rows = max(1, -(-n // cols))
    blank = np.full(shape, 255, np.uint8)
    tiles = list(images) + [blank] * (rows * cols - n)
    image_lib.save_png(image_lib.make_grid(np.stack(tiles), rows), path)


def _skipped_rows_note(data_config) -> str:
    if data_config.name != "fer2013":
        return ""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder("fer2013", data_dir=data_config.get("data_dir") or None)
        meta = builder.info.metadata or {}
    except Exception:  # not prepared: nothing to report
        return ""
    source = meta.get("source", "?")
    return f"source: {source}; malformed rows skipped when it was prepared: {meta.get('skipped_rows', 0)}"


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Prints the per-class distribution of every split and writes the preview grids."""
    data_config = config.data
    os.makedirs(workdir, exist_ok=True)
    split = data_config.split
    first = pipeline.open_split(data_config, split, count=True, all_processes=True, strict=False)
    info = first.info
    probe = sources.open_source(data_config, split, all_processes=True)
    splits = sorted(probe.splits or [split], key=_split_order)
    result: dict = {"dataset": info.name, "image_shape": list(info.image_shape), "splits": {}}
    out = []
    classes = data_config.get("classes") or ""
    title = f"{info.name}: examples per class and split" + (f" (classes={classes!r})" if classes else "")
    if info.num_classes:
        columns = {}
        for s in splits:
            counted = first if s == split else pipeline.open_split(
                data_config, s, count=True, all_processes=True, strict=False
            )
            columns[s] = list(counted.info.class_counts)
            result["splits"][s] = dict(zip(info.class_names, columns[s]))
        out.append(format_table(title, info.class_names, columns))
    else:  # celeb_a without a label attribute: the 40 attributes
        columns, names = {}, ()
        for s in splits:
            names, positives, total = _attribute_counts(data_config, s)
            columns[s] = positives
            result["splits"][s] = {"examples": total, **dict(zip(names, positives))}
        title = f"{info.name}: positives per attribute and split (examples: " + ", ".join(
            f"{s} {result['splits'][s]['examples']}" for s in splits
        ) + ")"
        out.append(format_table(title, names, columns))
    note = _skipped_rows_note(data_config)
    if note:
        out.append(note)
        result["note"] = note

    written = []
    groups = _previews(first.ds, info, data_config.preview)
    for c, imgs in groups.items():
        cname = info.class_names[c] if info.num_classes else "all"
        path = os.path.join(workdir, f"preview_{_safe(split)}_{c}_{_safe(cname)}.png")
        _write_grid(imgs, info.image_shape, path)
        written.append(path)

    if (data_config.get("domain_a") or "").strip() and (data_config.get("domain_b") or "").strip():
        result["domains"] = {}
        for domain in "ab":
            d = pipeline.open_domain(data_config, domain, split, count=True, all_processes=True)
            total = d.info.num_train_examples
            result["domains"][domain] = {"spec": data_config[f"domain_{domain}"], "examples": total}
            out.append(
                f"domain {domain}: {data_config[f'domain_{domain}']!r} -> {d.info.name} "
                f"{', '.join(d.info.class_names) or 'all'}: {total} examples in {split!r}"
            )
            imgs = _previews(d.ds, dataclasses.replace(d.info, num_classes=0, class_names=()), data_config.preview)[0]
            path = os.path.join(workdir, f"preview_{_safe(split)}_domain_{domain}.png")
            _write_grid(imgs, d.info.image_shape, path)
            written.append(path)

    out.append(f"preview grids ({data_config.preview} per class, split {split!r}): {os.path.abspath(workdir)}")
    text = "\n".join(out)
    print(text, flush=True)
    result["previews"] = written
    with open(os.path.join(workdir, "class_counts.json"), "w") as f:
        json.dump(result, f, indent=2)
    return result
