"""Editing real images: encode, change one code, decode (report 000's augmentation goal).

    python launch.py --config=configs/infogan_mnist.py --workdir=W --config.job=edit \
        [--config.jobs.edit.encoder=auto|predictor|recovery|both] [--config.jobs.edit.num_images=200] \
        [--config.jobs.edit.code=auto|cat|cont|label] [--config.jobs.edit.index=0] \
        [--config.jobs.edit.edits=3,5 | -1,-0.5,0.5,1] [--config.restore=best|latest|STEP]

Each of the first `num_images` real images of `split` (or `folder`) is encoded to a latent
vector (`encoder`): `predictor` (the predictor of `jobs.recover.predictor`, default
`W/predictor`, codes at their argmax), `recovery` (iterative recovery from random starts,
`ganjax/recover.py`, with the `jobs.recover.*` recovery keys: steps, lr, restarts, distance,
prior_weight, clip, snap, cat_smoothing, batch_size), or `both` (recovery started at the
predictor's latent); `auto` is `both` when the predictor's run exists, else `recovery`. Then one
code is changed (`code`) and G draws the edit:

* `cat`: the categorical code `index` is set to each of `edits` (one-hot; "" = every value);
* `cont`: `delta` for each of `edits` ("" = -1,-0.5,0.5,1) is added to the continuous code
  `index` (not clipped: a traversal may leave the prior's range);
* `label`: a conditional generator's class label (cGAN, ACGAN) is set to each of `edits`
  ("" = every class); the latent stays;
* `auto`: `cat` for a generator with a categorical code, else `label` for one told a label.

The class an edit should show: the new label (`label`); for `cat`, the class its code value
draws, by Hungarian matching of Q's codes on the real `code_split` (`runs.match_codes`, as
job=synthesize names its codes; values left unmatched are not exported or measured); for `cont`,
the original's own class. Under `output` (default `W/edit`, never overwritten):

* `latents.npz`: the encoded latent vectors (`vector`), the images' `label` and `index`;
* `edit_grid.png`: one row per image (`grid_images`): original | reconstruction | one column
  per value;
* `<name>/1.0.0/`: the edits (every value whose class differs from the original's, all values
  for `cont`) as a tfds dataset labelled with that class, with the real dataset's class names
  (`ganjax.data.writer`, as job=synthesize); load with `tfds.builder_from_directory`;
* `edit.json`, `edit.md`: the measurement on these (held-out) images. An independent judge (the
  label CNN of `ganjax/judges.py`, trained on the real training split, sharing nothing with the
  GAN; cached in `W/judges/`) reads every edit: `edit_accuracy` is the fraction read as the class
  the edit should show (per class too), beside the judge's reading of the originals and of the
  reconstructions (as the originals' class). What of the original's style survives: Pearson's r
  between the original and its edit of slant and of ink mass (`metrics.codes.slant`,
  `ink_mass`: for digits, lean and stroke thickness) over the measured (image, edit) pairs,
  also within the class each edit shows (each class's means subtracted: a 1 has less ink than
  an 8 whoever wrote it), beside r between original and reconstruction; for `cont`, the mean
  change of both per delta.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from ganjax import images as image_lib, recover, runs
from ganjax.data import writer
from ganjax.errors import ConfigError
from ganjax.gans.base import generate_from_vector
from ganjax.metrics import codes

ENCODERS = {"predictor": "predictor", "recovery": "recovery", "both": "predictor + recovery"}
CODES = ("auto", "cat", "cont", "label")
DEFAULT_DELTAS = (-1.0, -0.5, 0.5, 1.0)


def default_config() -> ml_collections.ConfigDict:
    """`config.jobs.edit` (the recovery's own keys are `jobs.recover.*`)."""
    c = ml_collections.ConfigDict()
    c.split = "test"  # real images to edit: a split of config.data (held out from training)
    c.folder = ""  # ... or a folder of *.png|jpg (conditional G: <folder>/<class>/*.png); "" = the split
    c.num_images = 100  # the first this many images (0 = all)
    c.encoder = "auto"  # auto | predictor | recovery | both (= predictor start + recovery)
    c.code = "auto"  # auto | cat (categorical code) | cont (continuous code) | label (a conditional G's class)
    c.index = 0  # which categorical or continuous code
    c.edits = ""  # the edits: cat / label: values set, e.g. "3,5" ("" = all); cont: deltas added ("" = -1,-0.5,0.5,1)
    c.code_split = "test"  # cat: real split on which code values are matched to classes (Hungarian)
    c.judge_steps = 1000  # training steps of the label judge (cached in <workdir>/judges)
    c.output = ""  # "" = <workdir>/edit (never overwritten)
    c.name = ""  # tfds dataset name; "" = edited_<config.name>
    c.grid_images = 10  # rows of edit_grid.png
    c.seed = 0  # recovery's random starts
    return c


# --------------------------------------------------------------------------------------------
# What is edited.
# --------------------------------------------------------------------------------------------


def resolve_code(ec, latent) -> tuple[str, list[float]]:
    """(code, values) after the checks; ConfigError naming the key on anything impossible."""
    code = ec.code
    if code not in CODES:
        raise ConfigError(f"config.jobs.edit.code must be one of {list(CODES)}, got {code!r}.")
    if code == "auto":
        if latent.categorical:
            code = "cat"
        elif latent.num_classes:
            code = "label"
        else:
            raise ConfigError("config.jobs.edit.code=auto: this generator has no categorical code and is "
                              "told no class label; set --config.jobs.edit.code=cont to edit a continuous code.")
    if code == "label" and not latent.num_classes:
        raise ConfigError("config.jobs.edit.code=label edits the class a conditional generator is told "
                          "(cGAN, ACGAN); this generator is told none: use code=cat or cont.")
    count = {"cat": len(latent.categorical), "cont": latent.continuous, "label": 1}[code]
    kind = "categorical" if code == "cat" else "continuous"
    if not count:
        raise ConfigError(f"config.jobs.edit.code={code}: the generator has no {kind} code.")
    if code != "label" and not 0 <= ec.index < count:
        raise ConfigError(f"config.jobs.edit.index={ec.index}: the generator has {count} {kind} code(s) "
                          f"(index 0..{count - 1}).")
    try:
        values = [float(v) for v in ec.edits.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"config.jobs.edit.edits={ec.edits!r}: write numbers separated by commas.") from None
    if code == "cont":
        return code, values or list(DEFAULT_DELTAS)
    size = latent.categorical[ec.index] if code == "cat" else latent.num_classes
    if not values:
        return code, list(range(size))
    bad = [v for v in values if v != int(v) or not 0 <= v < size]
    if bad:
        raise ConfigError(f"config.jobs.edit.edits: {bad} are not values of the {code} code (0..{size - 1}).")
    return code, [int(v) for v in values]


def edited_inputs(latent, code: str, index: int, value, vector, condition):
    """(vector, condition) with one code changed: the categorical block `index` set to
    one_hot(value), `value` added to continuous code `index`, or the label set to `value`."""
    vector = jnp.asarray(vector)
    if code == "label":
        return vector, jnp.full((vector.shape[0],), value, jnp.int32)
    start = latent.noise
    if code == "cat":
        start += sum(latent.categorical[:index])
        k = latent.categorical[index]
        return vector.at[:, start:start + k].set(jax.nn.one_hot(value, k)), condition
    start += sum(latent.categorical) + index
    return vector.at[:, start].add(value), condition


def pearson(a, b) -> float:
    """Pearson's r of two [N] arrays (nan if either is constant)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def style_survival(originals, others, groups=None) -> dict:
    """{measure: Pearson r between each original and its other image} for slant and ink mass
    (`originals` and `others` aligned [M, H, W, C]); with `groups` [M] (e.g. the class an edit
    shows), r of what is left after subtracting each group's means: the style a class does not
    explain (a 1 has less ink than an 8 whatever the writer)."""
    out = {}
    for name, fn in (("slant", codes.slant), ("ink_mass", codes.ink_mass)):
        a, b = fn(originals), fn(others)
        if groups is not None:
            groups = np.asarray(groups)
            for g in np.unique(groups):
                a[groups == g] -= a[groups == g].mean()
                b[groups == g] -= b[groups == g].mean()
        out[name] = pearson(a, b)
    return out


# --------------------------------------------------------------------------------------------
# The job.
# --------------------------------------------------------------------------------------------


def run(config, workdir: str) -> dict:
    """Encodes, edits, writes and measures (see the module docstring); returns the summary."""
    from ganjax import judges, synthesize

    ec, rc = config.jobs.edit, config.jobs.recover
    if ec.encoder not in ("auto", *ENCODERS):
        raise ConfigError(f"config.jobs.edit.encoder must be one of {['auto', *ENCODERS]}, got {ec.encoder!r}.")
    settings = recover.Settings.from_config(rc)
    settings.check()
    if ec.num_images < 0 or rc.batch_size < 1:
        raise ConfigError("config.jobs.edit.num_images must be >= 0 and config.jobs.recover.batch_size >= 1.")
    workdir = os.path.abspath(workdir)
    output = os.path.abspath(ec.output or os.path.join(workdir, "edit"))
    name = writer.safe_name(ec.name or f"edited_{config.name}", lower=True)
    recover.check_output(output, "edit.json")
    writer.check_new_dataset(output, name)
    trained = runs.load_trained(workdir, config.restore, config=config)
    algorithm, latent = trained.algorithm, trained.algorithm.latent
    if latent is None:
        raise ConfigError(f"gan.name={config.gan.name!r} does not generate from a latent: nothing to edit.")
    info = algorithm.info
    code, values = resolve_code(ec, latent)
    distance = recover.get_distance(rc.distance, config, workdir, info.image_shape, "jobs.recover.distance")
    pdir = recover.predictor_dir(config, workdir, rc.predictor)
    encoder_name = ec.encoder
    if encoder_name == "auto":
        encoder_name = "both" if recover.has_predictor(pdir) else "recovery"
    method = ENCODERS[encoder_name]
    predictor = recover.load_predictor(pdir, trained, "jobs.edit") if method != "recovery" else None

    # The class each edit should show (run numbering), per value: None where there is none.
    mapping, match_accuracy = None, None
    if code == "cat" and info.num_classes:
        if not hasattr(algorithm, "recover_codes"):
            raise ConfigError(f"config.jobs.edit.code=cat names each value by the class Q reads; "
                              f"gan.name={config.gan.name!r} has no Q head.")
        match = runs.match_codes(trained, ec.code_split)
        mapping, match_accuracy = match.mapping, match.accuracy
        if ec.edits.strip() == "" and ec.index == 0:  # columns in the order of their classes
            values = sorted(values, key=lambda v: mapping.get(v, info.num_classes + v))
    real = recover.real_images(config, ec.split, ec.folder, ec.num_images, info.image_shape,
                               info.class_names, section="jobs.edit")
    condition = real.condition(latent, "jobs.edit")
    has_labels = bool(info.num_classes) and bool((real.labels >= 0).all())

    def target_class(value, original_label):
        if code == "label":
            return int(value)
        if code == "cat":
            return mapping.get(int(value)) if mapping is not None else None
        return int(original_label) if has_labels else None

    # Encode, reconstruct, edit.
    logging.info("Editing %d images of %s: encoder %s, code %s %d, values %s", len(real.images), real.source,
                 method, code, ec.index, values)
    t0 = time.time()
    enc = recover.Encoder(trained, distance, settings, rc.batch_size, predictor)
    encoded = enc.encode(method, real.images, condition, jax.random.PRNGKey(ec.seed))
    vectors, recon = encoded["vector"], encoded["images"]
    generate = jax.jit(generate_from_vector)
    edits = []
    for value in values:
        chunks = []
        for start in range(0, len(vectors), rc.batch_size):
            stop = start + rc.batch_size
            v, c = edited_inputs(latent, code, ec.index, value, vectors[start:stop],
                                 None if condition is None else jnp.asarray(condition[start:stop]))
            chunks.append(np.asarray(generate(trained.state.generator, v, c)))
        edits.append(np.concatenate(chunks))
    edits = np.stack(edits, axis=1)  # [N, E, H, W, C]
    seconds = time.time() - t0

    os.makedirs(output, exist_ok=True)
    np.savez(os.path.join(output, "latents.npz"), vector=vectors, label=real.labels, index=real.index)
    grid_path = os.path.join(output, "edit_grid.png")
    columns = [real.images, recon] + [edits[:, j] for j in range(len(values))]
    image_lib.save_png(recover.comparison_grid(columns, ec.grid_images), grid_path)

    # The edits to export and measure: (image i, value j, class) whose class differs from the original's.
    pairs = []
    for i in range(len(real.images)):
        for j, value in enumerate(values):
            cls = target_class(value, real.labels[i])
            if cls is None and code != "cont":
                continue
            if code != "cont" and has_labels and cls == int(real.labels[i]):
                continue
            pairs.append((i, j, cls))
    first = real.images[[i for i, _, _ in pairs]]  # the measured pairs: original, edit
    edited = np.stack([edits[i, j] for i, j, _ in pairs]) if pairs else None
    summary = {
        "workdir": workdir, "generator": config.gan.name, "checkpoint_step": trained.step,
        "restore": str(config.restore), "images": real.source, "num_images": int(len(real.images)),
        "encoder": method, "code": code, "index": int(ec.index), "values": values,
        "columns": ["original", "reconstruction", *[str(v) for v in values]], "grid": grid_path,
        "recovery": dict(distance=rc.distance, **dataclasses.asdict(settings)) if method != "predictor" else None,
        "reconstruction_loss": float(np.mean(encoded["distance"])), "seconds": seconds,
    }
    if mapping is not None:
        summary.update(code_to_class={str(k): info.class_names[v] for k, v in mapping.items()},
                       code_match_accuracy=match_accuracy, code_split=ec.code_split)

    full_names = synthesize.full_class_names(config.data)
    if pairs and all(cls is not None for _, _, cls in pairs):
        indices, names = synthesize.to_full_labels(tuple(info.class_names), full_names)
        labels = np.array([indices[cls] for _, _, cls in pairs], np.int64)
        summary["tfds_dir"] = writer.write_image_dataset(
            output, name, image_lib.to_uint8(edited), labels, names,
            description=(f"Real images of {real.source} edited ({code} {ec.index} -> {values}) by "
                         f"{config.gan.name} of {workdir} (checkpoint step {trained.step}), encoder {method}."))
        summary["num_edits"] = int(len(pairs))
    else:
        logging.warning("No edit has a class (unlabelled images or unmatched codes): no dataset written.")

    if has_labels:
        judge = judges.load_or_train(os.path.join(workdir, "judges"), config.data, "label",
                                     seed=config.seed, steps=ec.judge_steps)
        summary["measurement"] = _measure(judge, real, recon, edited, pairs, code, info)
    summary["style"] = {"original_vs_reconstruction": style_survival(real.images, recon)}
    if pairs:
        summary["style"]["original_vs_edit"] = style_survival(first, edited)
        if all(cls is not None for _, _, cls in pairs):
            summary["style"]["original_vs_edit_within_class"] = style_survival(
                first, edited, [cls for _, _, cls in pairs])
    if code == "cont":
        summary["style"]["mean_change_per_delta"] = {
            str(v): {"slant": float(np.mean(codes.slant(edits[:, j]) - codes.slant(real.images))),
                     "ink_mass": float(np.mean(codes.ink_mass(edits[:, j]) - codes.ink_mass(real.images)))}
            for j, v in enumerate(values)}
    with open(os.path.join(output, "edit.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with open(os.path.join(output, "edit.md"), "w") as f:
        f.write(_markdown(summary))
    logging.info("Edits written to %s:\n%s", output, _markdown(summary))
    return summary


def _measure(judge, real, recon, edited, pairs, code, info) -> dict:
    """The judge's readings: originals, reconstructions (as the original's class), edits (as
    the class each should show), overall and per target class."""
    labels = real.labels.astype(np.int64)
    out = {"judge_test_accuracy": float(judge.test_accuracy),
           "judge_on_originals": float(np.mean(judge.predict(real.images) == labels)),
           "reconstruction_read_as_original": float(np.mean(judge.predict(recon) == labels))}
    if pairs:
        targets = np.array([cls for _, _, cls in pairs])
        read = np.concatenate([judge.predict(edited[k:k + 1000]) for k in range(0, len(edited), 1000)])
        hit = read == targets
        out["edit_accuracy"] = float(hit.mean())
        out["num_edits"] = int(len(pairs))
        out["edit_accuracy_per_class"] = {info.class_names[c]: float(hit[targets == c].mean())
                                          for c in sorted(set(targets.tolist()))}
        if code != "cont":  # how often the edit still reads as the original's class
            out["edit_read_as_original"] = float(np.mean(read == labels[[i for i, _, _ in pairs]]))
    return out


def _markdown(s: dict) -> str:
    lines = [f"# Editing real images: {s['num_images']} images of {s['images']}", "",
             f"Generator {s['generator']} ({s['workdir']}, checkpoint step {s['checkpoint_step']}); encoder "
             f"{s['encoder']} (reconstruction loss {s['reconstruction_loss']:.4f}); edit: {s['code']} code "
             f"{s['index']} -> {', '.join(str(v) for v in s['values'])}.", ""]
    if "code_match_accuracy" in s:
        lines += [f"Code values named by Hungarian matching of Q on split {s['code_split']!r} "
                  f"(matched accuracy {100 * s['code_match_accuracy']:.1f}%): "
                  + ", ".join(f"{k} -> {v}" for k, v in s["code_to_class"].items()), ""]
    m = s.get("measurement")
    if m:
        lines += ["| judge reads | fraction |", "|---|---|",
                  f"| real held-out images (the judge's own test accuracy) | {m['judge_test_accuracy']:.3f} |",
                  f"| these originals as their class | {m['judge_on_originals']:.3f} |",
                  f"| reconstructions as the original's class | {m['reconstruction_read_as_original']:.3f} |"]
        if "edit_accuracy" in m:
            lines.append(f"| **edits as the class they should show** ({m['num_edits']} edits) | "
                         f"**{m['edit_accuracy']:.3f}** |")
        if "edit_read_as_original" in m:
            lines.append(f"| edits still read as the original's class | {m['edit_read_as_original']:.3f} |")
        if "edit_accuracy_per_class" in m:
            lines += ["", "Per class the edits should show: " + ", ".join(
                f"{k} {100 * v:.0f}%" for k, v in m["edit_accuracy_per_class"].items())]
        lines.append("")
    st = s["style"]
    heads = [k for k in ("original_vs_reconstruction", "original_vs_edit", "original_vs_edit_within_class") if k in st]
    lines += ["| style (Pearson r) | " + " | ".join(h.replace("_", " ") for h in heads) + " |",
              "|---|" + "---|" * len(heads)]
    for name in ("slant", "ink_mass"):
        lines.append(f"| {name} | " + " | ".join(f"{st[h][name]:.3f}" for h in heads) + " |")
    if "mean_change_per_delta" in st:
        lines += ["", "Mean change per delta: " + "; ".join(
            f"{d}: slant {v['slant']:+.3f}, ink {v['ink_mass']:+.4f}" for d, v in st["mean_change_per_delta"].items())]
    lines += ["", f"Grid (original | reconstruction | {' | '.join(s['columns'][2:])}): `{s['grid']}`"]
    if "tfds_dir" in s:
        lines.append(f"Dataset: `{s['tfds_dir']}` ({s['num_edits']} edits)")
    return "\n".join(lines) + "\n"
