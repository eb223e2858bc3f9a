"""The augmentation benchmark: does a GAN's output help a classifier? (report 001, done properly)

    python launch.py --config=configs/augment_mnist.py            # job=augment
    python launch.py --config=configs/augment_mnist.py:tiny --workdir=/tmp/augment

Trains the classifier of `config.classifier` (`gan.name=classifier`, through the project's loop:
checkpoints, resume, NaN stop) under every arm of `jobs.augment.arms`, at every low-data level
of `jobs.augment.per_class`, for every model of `jobs.augment.models`, `jobs.augment.seeds`
times, and scores each on the real `jobs.augment.split` (the held-out test split). An arm is a
'+'-joined set of

* `real`: the real training subset (`data.per_class` = the level), or `2x_real`: twice as many
  real images per class (the "more real data" ceiling; the smaller subset is part of it);
* `classical`: classical augmentation (`jobs.augment.shift` px shifts, `rotate` degree
  rotations, `flip` if it makes sense for the data);
* `synthetic`: synthetic images at each fraction of `jobs.augment.ratios` of every batch; alone,
  with no real token, all of every batch (the Classification Accuracy Score of Ravuri & Vinyals
  2019).

Every arm trains the same `train.num_steps` steps of `data.batch_size` images: the same budget.

Synthetic images come from `jobs.augment.synthetic` (tfds dataset directories written by
`job=synthesize` or `job=translate`, or training workdirs, which this job samples with
synthesize, or translates with translate for CycleGANs) and, for the low-data protocol, from
`jobs.augment.generator`: a config file whose generator this job trains on each level's real
subset alone (`data.per_class`, the same `subset_seed`) and then samples with synthesize
(`num_per_class` per class, optionally kept only when a judge trained on the same subset reads
them as their class with p >= `min_confidence`).

Seed s changes the classifier's initialisation, batch order and augmentation; the real subset is
drawn with `subset_seed` for every seed (one generator per level), or with s when
`subset_per_seed` (then a generator per level and seed, and the interval covers the choice of
the subset too).

Writes to the workdir: `runs/<level>/<model>/<arm>/seed<s>/` (a training workdir each: re-running
the command resumes, trained runs are only scored again), `generators/`, `synthetic/`, and the
results: `augment.json` (every run's accuracy and per-class accuracy, and per arm the mean, std,
95% t-interval and the paired difference to the `baseline` arm with its interval),
`augment.md` (the tables) and `augment.png` (accuracy per arm with 95% intervals).
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
import math
import os
import sys
import time

import ml_collections
import numpy as np
from absl import logging

from ganjax import plots, runs
from ganjax.errors import ConfigError

TOKENS = ("real", "2x_real", "classical", "synthetic")


def default_config() -> ml_collections.ConfigDict:
    """`config.jobs.augment`."""
    c = ml_collections.ConfigDict()
    c.arms = "real,real+classical,real+synthetic,real+classical+synthetic,synthetic,2x_real+classical"
    c.baseline = "real+classical"  # paired differences are taken to this arm
    c.ratios = "0.5"  # fractions of each batch that are synthetic, one arm per value (comma list)
    c.seeds = 3  # classifier seeds per arm (0..seeds-1)
    c.per_class = "10"  # real images per class, one level per value (comma list; 0 = the whole split)
    c.subset_seed = 0  # which real images a level keeps (the same for every seed, unless subset_per_seed)
    c.subset_per_seed = False  # draw each seed's own subset (and train a generator for each)
    c.models = "simple"  # classifiers: simple | vgg (comma list; report 001 used both)
    c.shift = 2  # classical augmentation: random shifts of up to this many pixels
    c.rotate = 10.0  # ... random rotations within +- this many degrees
    c.flip = False  # ... random horizontal flips (faces yes, digits no)
    c.synthetic = ""  # comma list: tfds dataset dirs (synthesize/translate outputs) or generator workdirs
    c.generator = ""  # low-data protocol: a config file (configs/X.py[:variant]) trained on each level's subset
    c.generator_steps = 0  # its train.num_steps; 0 = the config's
    c.num_per_class = 1000  # synthesize: samples per class from each generator
    c.min_confidence = 0.0  # synthesize: keep samples a judge (trained on the same real subset) reads as their class with p >= this
    c.judge_steps = 1000  # synthesize: training steps of that judge
    c.split = "test"  # real split every classifier is scored on
    return c


# --------------------------------------------------------------------------------------------
# Arms.
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Arm:
    """One training recipe: which real images, augmentation, and synthetic fraction."""

    name: str
    real_factor: int  # 0: no real images; 1: the level's subset; 2: twice as many per class
    classical: bool
    synthetic_fraction: float


def parse_arms(spec: str, ratios: str) -> list[Arm]:
    """`jobs.augment.arms` and `ratios` -> the arms (an arm with `synthetic` and real images is
    one arm per ratio, named `<arm>@<ratio>` when there are several ratios)."""
    try:
        fractions = [float(r) for r in ratios.split(",") if r.strip()]
    except ValueError:
        fractions = []
    if not fractions or not all(0 < f < 1 for f in fractions):
        raise ConfigError(f"config.jobs.augment.ratios={ratios!r}: give fractions in (0, 1), e.g. '0.25,0.5'.")
    arms = []
    for name in (a.strip() for a in spec.split(",")):
        if not name:
            continue
        tokens = name.split("+")
        unknown = [t for t in tokens if t not in TOKENS]
        if unknown or len(set(tokens)) != len(tokens) or {"real", "2x_real"} <= set(tokens):
            raise ConfigError(
                f"config.jobs.augment.arms: {name!r} is not an arm; join {', '.join(TOKENS)} with '+' "
                "(one of real / 2x_real at most), e.g. 'real+classical+synthetic'."
            )
        factor = 2 if "2x_real" in tokens else int("real" in tokens)
        if not factor and "synthetic" not in tokens:
            raise ConfigError(f"config.jobs.augment.arms: {name!r} has no images: add real or synthetic.")
        if "synthetic" not in tokens:
            arms.append(Arm(name, factor, "classical" in tokens, 0.0))
        elif not factor:
            arms.append(Arm(name, 0, "classical" in tokens, 1.0))
        else:
            for f in fractions:
                arms.append(Arm(name if len(fractions) == 1 else f"{name}@{f:g}", factor, "classical" in tokens, f))
    if not arms:
        raise ConfigError("config.jobs.augment.arms is empty; e.g. 'real,real+classical,real+classical+synthetic'.")
    if len({a.name for a in arms}) != len(arms):
        raise ConfigError(f"config.jobs.augment.arms={spec!r} names an arm twice.")
    return arms


def parse_levels(spec: str) -> list[int]:
    try:
        levels = [int(v) for v in str(spec).split(",") if v.strip()]
    except ValueError:
        levels = []
    if not levels or any(v < 0 for v in levels):
        raise ConfigError(f"config.jobs.augment.per_class={spec!r}: give images per class, e.g. '5,10,50' (0 = all).")
    return levels


def level_name(level: int) -> str:
    return f"n{level}" if level else "all"


# --------------------------------------------------------------------------------------------
# Statistics.
# --------------------------------------------------------------------------------------------


def interval(values) -> dict:
    """Mean, sample std (ddof 1) and the 95% Student-t interval of the mean of `values`
    (mean +- t_{0.975, n-1} std / sqrt(n); no interval for n < 2)."""
    from scipy import stats

    v = np.asarray(values, np.float64)
    n = len(v)
    mean = float(v.mean()) if n else float("nan")
    std = float(v.std(ddof=1)) if n > 1 else float("nan")
    half = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else float("nan")
    return {"n": n, "mean": mean, "std": std, "ci95": half, "low": mean - half, "high": mean + half}


def summarize(results: dict, baseline: str) -> dict:
    """Per arm: `interval` of the accuracies, per-class means, and the paired difference to
    `baseline` (seed by seed) with its interval and whether that interval excludes zero."""
    out = {}
    base = results.get(baseline, {})
    for arm, seeds in results.items():
        acc = [seeds[s]["accuracy"] for s in sorted(seeds)]
        per_class = np.array([seeds[s]["per_class"] for s in sorted(seeds)], np.float64)
        entry = {**interval(acc), "per_class_mean": np.nanmean(per_class, 0).tolist()}
        if arm != baseline and base:
            paired = [seeds[s]["accuracy"] - base[s]["accuracy"] for s in sorted(seeds) if s in base]
            d = interval(paired)
            d["excludes_zero"] = bool(d["n"] > 1 and (d["low"] > 0 or d["high"] < 0))
            entry["vs_baseline"] = d
        out[arm] = entry
    return out


# --------------------------------------------------------------------------------------------
# Synthetic data.
# --------------------------------------------------------------------------------------------


def load_config_file(spec: str) -> ml_collections.ConfigDict:
    """`path/to/config.py[:variant]` -> its `get_config(variant)` (as launch.py's --config)."""
    path, _, variant = spec.partition(":")
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(path):
        raise ConfigError(f"config.jobs.augment.generator={spec!r}: no config file {path}.")
    root = os.path.dirname(os.path.dirname(path))
    if root not in sys.path:  # configs import each other as `configs.X`
        sys.path.insert(0, root)
    module_spec = importlib.util.spec_from_file_location(f"_augment_generator_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(variant or None)


def _is_tfds_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "dataset_info.json"))


def export_from_workdir(gen_workdir: str, output: str, name: str, ac, data_config, restore="latest") -> str:
    """The tfds dir of a generator's samples (synthesize) or translations (translate), written
    under `output` once and reused after."""
    from ganjax import gans, synthesize, translate

    config = runs.read_config(gen_workdir)
    for key in ("data_dir", "manual_dir"):  # where this machine keeps the real data
        if data_config.get(key):
            config.data[key] = data_config[key]
    config.restore = restore
    if gans.get(config.gan.name).can_translate:
        config.jobs.translate.output = os.path.join(output, name)
        summary_path = os.path.join(output, name, "translated.json")
        if not os.path.exists(summary_path):
            translate.run(config, gen_workdir)
    else:
        sc = config.jobs.synthesize
        sc.output, sc.name = output, name
        sc.num_per_class, sc.min_confidence, sc.judge_steps = ac.num_per_class, ac.min_confidence, ac.judge_steps
        summary_path = os.path.join(output, name, "synthesize.json")
        if not os.path.exists(summary_path):
            synthesize.run(config, gen_workdir)
    with open(summary_path) as f:
        return json.load(f)["tfds_dir"]


def _resolve_synthetic(spec: str, workdir: str, ac, data_config) -> list[str]:
    """`jobs.augment.synthetic` entries -> tfds dataset dirs."""
    from ganjax.data import writer

    dirs = []
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        path = os.path.abspath(os.path.expanduser(entry))
        if _is_tfds_dir(path):
            dirs.append(path)
        elif os.path.isfile(os.path.join(path, runs.CONFIG_FILE)):
            name = writer.safe_name(os.path.basename(path.rstrip("/")), lower=True)
            dirs.append(export_from_workdir(path, os.path.join(workdir, "synthetic"), name, ac, data_config))
        else:
            raise ConfigError(
                f"config.jobs.augment.synthetic: {path} is neither a tfds dataset directory (holding "
                "dataset_info.json, e.g. <output>/<name>/1.0.0 of job=synthesize) nor a training workdir."
            )
    return dirs


def train_generator(ac, config, workdir: str, level: int, subset_seed: int) -> str:
    """Trains `jobs.augment.generator` on the real subset of `level` (resuming if started) and
    returns the tfds dir of its samples."""
    from ganjax import train

    gen = load_config_file(ac.generator)
    gen.data.per_class, gen.data.subset_seed = level, subset_seed
    for key in ("data_dir", "manual_dir"):
        if config.data.get(key):
            gen.data[key] = config.data[key]
    if ac.generator_steps:
        gen.train.num_steps = ac.generator_steps
    gen.train.best_metric = ""
    gen.evals = ml_collections.ConfigDict()  # scored by what it does for the classifier
    name = f"{level_name(level)}_subset{subset_seed}"
    gen_workdir = os.path.join(workdir, "generators", name)
    logging.info("Generator %s (%s) on the real subset %s: %d steps in %s", gen.name, gen.gan.name, name,
                 gen.train.num_steps, gen_workdir)
    train.train_and_evaluate(gen, gen_workdir)
    return export_from_workdir(gen_workdir, os.path.join(workdir, "synthetic"), name, ac, gen.data)


# --------------------------------------------------------------------------------------------
# The job.
# --------------------------------------------------------------------------------------------


def classifier_config(config, arm: Arm, level: int, subset_seed: int, model: str, seed: int,
                      synthetic: list[str], ac) -> ml_collections.ConfigDict:
    """The training config of one run: the job's classifier and data, with the arm applied."""
    c = copy.deepcopy(config)
    c.job, c.seed = "train", seed
    c.classifier.model = model
    c.evals = ml_collections.ConfigDict()
    c.train.best_metric = ""
    c.train.checkpoint_every = c.train.num_steps
    d = c.data
    d.per_class = level * max(arm.real_factor, 1) if level else 0
    d.subset_seed = subset_seed
    d.shift, d.rotate, d.flip = (ac.shift, ac.rotate, ac.flip) if arm.classical else (0, 0.0, False)
    d.synthetic = ",".join(synthetic) if arm.synthetic_fraction else ""
    d.synthetic_fraction = arm.synthetic_fraction
    return c


def _progress(total: int):
    try:
        from tqdm import tqdm

        return tqdm(total=total, desc="augment (arms x seeds)", unit="run", file=sys.stderr,
                    dynamic_ncols=True, disable=None)
    except ImportError:  # pragma: no cover
        return None


def run(config, workdir: str) -> dict:
    """Runs the benchmark (see the module docstring); returns what augment.json holds."""
    from ganjax import gans, train
    from ganjax.data import pipeline
    from ganjax.metrics.accuracy import per_class_accuracy

    ac = config.jobs.augment
    if config.gan.name != "classifier":
        raise ConfigError("config.job=augment trains classifiers: start the config from "
                          "base_config('classifier') (see configs/augment_mnist.py).")
    arms, levels = parse_arms(ac.arms, ac.ratios), parse_levels(ac.per_class)
    models = [m.strip() for m in ac.models.split(",") if m.strip()]
    from ganjax.gans.classifier import MODELS

    if not models or any(m not in MODELS for m in models):
        raise ConfigError(f"config.jobs.augment.models={ac.models!r}: choose from {sorted(MODELS)} (comma list).")
    if ac.seeds < 1:
        raise ConfigError(f"config.jobs.augment.seeds must be >= 1, got {ac.seeds}.")
    if ac.baseline and ac.baseline not in {a.name for a in arms}:
        raise ConfigError(f"config.jobs.augment.baseline={ac.baseline!r} is not one of the arms "
                          f"{[a.name for a in arms]}.")
    needs_synthetic = any(a.synthetic_fraction for a in arms)
    if needs_synthetic and not (ac.synthetic.strip() or ac.generator):
        raise ConfigError("Arms with 'synthetic' need images: set config.jobs.augment.generator (a config "
                          "trained on each real subset) or config.jobs.augment.synthetic (tfds dirs or workdirs).")
    if ac.flip and config.data.name.startswith("mnist"):
        logging.warning("jobs.augment.flip on digits: a mirrored digit is not the same digit.")
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    test_images, test_labels, info = pipeline.load_arrays(config.data, ac.split)
    shared = _resolve_synthetic(ac.synthetic, workdir, ac, config.data) if needs_synthetic else []

    subset_seeds = {s: (s if ac.subset_per_seed else ac.subset_seed) for s in range(ac.seeds)}
    total = len(levels) * len(models) * len(arms) * ac.seeds
    bar, done, started, classifier_time = _progress(total), 0, time.time(), 0.0
    results: dict = {}
    budget = {"train.num_steps": config.train.num_steps, "data.batch_size": config.data.batch_size}
    for level in levels:
        generated = {}
        for seed in range(ac.seeds):
            ss = subset_seeds[seed]
            if needs_synthetic and ac.generator and ss not in generated:
                generated[ss] = [train_generator(ac, config, workdir, level, ss)]
        for model in models:
            table = results.setdefault(level_name(level), {}).setdefault(model, {})
            for arm in arms:
                for seed in range(ac.seeds):
                    ss = subset_seeds[seed]
                    synthetic = generated.get(ss, []) + shared
                    c = classifier_config(config, arm, level, ss, model, seed, synthetic, ac)
                    run_dir = os.path.join(workdir, "runs", level_name(level), model,
                                           arm.name.replace("+", "_plus_").replace("@", "_at_"), f"seed{seed}")
                    run_start = time.time()
                    state = train.train_and_evaluate(c, run_dir)
                    accuracy, per_class = per_class_accuracy(
                        gans.create(c, info).predict(state, test_images), test_labels, info.num_classes
                    )
                    table.setdefault(arm.name, {})[seed] = {
                        "accuracy": accuracy, "per_class": per_class, "workdir": run_dir,
                        "per_class_train": c.data.per_class, "synthetic_fraction": arm.synthetic_fraction,
                        "subset_seed": ss,
                    }
                    done += 1
                    classifier_time += time.time() - run_start
                    eta = classifier_time / done * (total - done)  # generators left not counted
                    logging.info("augment [%d/%d] %s %s %s seed %d: test accuracy %.2f%% (ETA %.0f min)",
                                 done, total, level_name(level), model, arm.name, seed, 100 * accuracy, eta / 60)
                    if bar is not None:
                        bar.update(1)
    if bar is not None:
        bar.close()
    summary = {level: {model: summarize(t, ac.baseline) for model, t in by_model.items()}
               for level, by_model in results.items()}
    report = {
        "dataset": info.name, "class_names": list(info.class_names), "split": ac.split,
        "num_test": int(len(test_labels)), "budget": budget, "seeds": ac.seeds,
        "baseline": ac.baseline, "arms": [dataclasses.asdict(a) for a in arms],
        "levels": levels, "models": models, "subset_seed": ac.subset_seed,
        "subset_per_seed": ac.subset_per_seed, "generator": ac.generator, "synthetic": ac.synthetic,
        "min_confidence": ac.min_confidence, "num_per_class": ac.num_per_class,
        "wall_time_s": time.time() - started,
        "runs": {lvl: {m: {a: {str(s): v for s, v in seeds.items()} for a, seeds in t.items()}
                       for m, t in by_model.items()} for lvl, by_model in results.items()},
        "summary": summary,
    }
    _write(workdir, report)
    return report


# --------------------------------------------------------------------------------------------
# Output.
# --------------------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.1f}"


def markdown(report: dict) -> str:
    """The tables of augment.md: one per level and model."""
    names = report["class_names"]
    lines = [
        f"# Augmentation benchmark: {report['dataset']}",
        "",
        f"Test accuracy (%) on the real `{report['split']}` split ({report['num_test']} images), "
        f"{report['seeds']} seeds per arm, every arm {report['budget']['train.num_steps']} steps of "
        f"{report['budget']['data.batch_size']} images. 95% CI: Student-t interval of the mean over "
        f"seeds. Δ: paired difference to `{report['baseline']}` (seed by seed) with its 95% CI; "
        "* = the interval excludes zero.",
    ]
    for level, by_model in report["summary"].items():
        for model, arms in by_model.items():
            lines += ["", f"## {level} real images per class, {model} classifier", "",
                      "| arm | mean ± std | 95% CI | Δ vs baseline (95% CI) | " + " | ".join(names) + " |",
                      "|---|---|---|---|" + "---|" * len(names)]
            for arm, s in arms.items():
                d = s.get("vs_baseline")
                delta = "baseline" if arm == report["baseline"] else (
                    f"{100 * d['mean']:+.1f} ({_pct(d['low'])}, {_pct(d['high'])}){' *' if d['excludes_zero'] else ''}"
                    if d else "")
                lines.append(
                    f"| {arm} | {_pct(s['mean'])} ± {_pct(s['std'])} | {_pct(s['low'])}–{_pct(s['high'])} | {delta} | "
                    + " | ".join(_pct(v) for v in s["per_class_mean"]) + " |"
                )
    return "\n".join(lines) + "\n"


def chart(report: dict) -> np.ndarray:
    """Accuracy per arm with 95% intervals, one panel per level and model."""
    panels = [(level, model, arms) for level, by_model in report["summary"].items() for model, arms in by_model.items()]
    fig = plots.new_figure(7.0, 2.6 * len(panels) + 0.4)
    for i, (level, model, arms) in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, i + 1)
        names = list(arms)
        means = [100 * arms[a]["mean"] for a in names]
        errors = [100 * arms[a]["ci95"] if np.isfinite(arms[a]["ci95"]) else 0.0 for a in names]
        colors = ["#DD8452" if a == report["baseline"] else "#4C72B0" for a in names]
        ax.bar(np.arange(len(names)), means, yerr=errors, capsize=3, color=colors)
        ax.set_xticks(np.arange(len(names)), names, rotation=20, fontsize=7, ha="right")
        low = min(m - e for m, e in zip(means, errors))
        ax.set_ylim(max(0.0, low - 5), min(100.0, max(m + e for m, e in zip(means, errors)) + 2))
        ax.set_ylabel("test accuracy (%)", fontsize=8)
        ax.set_title(f"{level}: {model} classifier (mean, 95% CI over seeds)", fontsize=9)
    return plots.figure_to_array(fig)


def _write(workdir: str, report: dict) -> None:
    from ganjax import images as image_lib

    for name, text in (("augment.json", json.dumps(report, indent=1)), ("augment.md", markdown(report))):
        path = os.path.join(workdir, name)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
    image_lib.save_png(chart(report), os.path.join(workdir, "augment.png"))
    logging.info("Augmentation benchmark written to %s/augment.{json,md,png}", workdir)
