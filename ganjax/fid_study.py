"""The fid_study job: how much FID varies with the number of samples (report 003, Table 1).

    python launch.py --config=configs/cgan_mnist.py --config.job=fid_study \
        [--config.jobs.fid_study.batch_sizes=4,64,256,1024] [--config.jobs.fid_study.trials=10] \
        [--config.restore=best|latest|STEP]

For each batch size b, `trials` draws of b images from each of two sets, their FID, and the
mean, standard deviation and relative standard deviation (100 std / mean) over the draws
(`metrics.fid.fid_sample_size_study`), for two comparisons:

* `real_vs_real`: the real training split against the real held-out split (`real_split` vs
  `other_split`): the noise floor of the metric itself;
* `real_vs_generator`: the real training split against the run's samples (the workdir's
  checkpoint, `config.restore`), when the workdir holds a trained generator.

Features: the judge's penultimate layer (`features=judge`, a CNN trained on the real training
split and cached in `<workdir>/judges/`) or FID-Inception pool3 (`features=inception`, weights
from `config.eval.inception_weights`). Writes `<workdir>/fid_study.json` and
`<workdir>/fid_study.md` (an earlier study's files are kept as `fid_study_<time>.*`): the
tables beside report 003's relative standard deviations (28x28x1: 15.7% at b=4, 8.5% at 64,
10.3% at 256, 24.0% at 1024; 64x64x1: 8.0% at 64, 6.3% at 1024). FID is biased upwards at
small b, so compare means at one b only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import jax
import ml_collections
from absl import logging

from ganjax import evaluators, judges, runs
from ganjax.data import pipeline
from ganjax.errors import ConfigError
from ganjax.metrics import fid as fid_lib

# Report 003, Table 1: relative standard deviation of FID (%) by image size and batch size.
REPORT_003 = {"28x28x1": {4: 15.7, 64: 8.5, 256: 10.3, 1024: 24.0}, "64x64x1": {64: 8.0, 1024: 6.3}}


def default_config() -> ml_collections.ConfigDict:
    """`config.jobs.fid_study`."""
    c = ml_collections.ConfigDict()
    c.batch_sizes = "4,64,256,1024"  # samples per FID
    c.trials = 10  # draws per batch size
    c.features = "judge"  # judge | inception (config.eval.inception_weights)
    c.real_split = "train"  # the reference set
    c.other_split = "test"  # the real set compared with it ("" = skip real vs real)
    c.num_generated = 0  # generated images drawn once (0 = the largest batch size)
    c.judge_steps = 1000  # training steps of the judge (cached in the workdir)
    c.seed = 0
    return c


def _batch_sizes(spec: str) -> list[int]:
    try:
        sizes = [int(s) for s in spec.split(",") if s.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 2:
        raise ConfigError(f"config.jobs.fid_study.batch_sizes={spec!r}: give sizes >= 2, e.g. 4,64,256,1024.")
    return sizes


def _extractor(config, workdir: str, fc):
    """The FID feature space of the fid evaluator (`evaluators.fid.feature_space`)."""
    from ganjax import gans
    from ganjax.evaluators import fid as fid_evaluator

    def get_judge():
        target = fid_evaluator.judge_target(gans.get(config.gan.name).data_info(config).num_classes)
        return judges.load_or_train(os.path.join(workdir, "judges"), config.data, target,
                                    seed=config.seed, steps=fc.judge_steps)

    try:
        return fid_evaluator.feature_space(fc.features, config, get_judge)[0]
    except ConfigError:
        raise ConfigError(
            f"config.jobs.fid_study.features must be judge or inception, got {fc.features!r}.") from None


def _rows(a, b, sizes, fc, name: str) -> list[dict]:
    usable = [s for s in sizes if s <= min(len(a), len(b))]
    skipped = sorted(set(sizes) - set(usable))
    if skipped:
        logging.warning("fid_study %s: batch sizes %s exceed the sets (%d and %d images); skipped.",
                        name, skipped, len(a), len(b))
    rows = fid_lib.fid_sample_size_study(a, b, usable, num_trials=fc.trials, seed=fc.seed)
    logging.info("fid_study %s:\n%s", name, fid_lib.format_sample_size_table(rows))
    return [dataclasses.asdict(r) for r in rows]


def run(config, workdir: str) -> dict:
    """Runs the study (see the module docstring); returns what `fid_study.json` holds."""
    fc = config.jobs.fid_study
    sizes = _batch_sizes(fc.batch_sizes)
    if fc.trials < 2:
        raise ConfigError(f"config.jobs.fid_study.trials must be >= 2, got {fc.trials}.")
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    extract = _extractor(config, workdir, fc)
    real, _, info = pipeline.load_arrays(config.data, fc.real_split)
    real_features = extract(real)
    h, w, c = info.image_shape
    shape = f"{h}x{w}x{c}"
    result = {"features": fc.features, "image_shape": shape, "trials": fc.trials,
              "real_split": fc.real_split, "num_real": int(len(real)),
              "report_003_rel_std_percent": REPORT_003.get(shape, {}), "comparisons": {}}
    if fc.other_split:
        other = pipeline.load_arrays(config.data, fc.other_split)[0]
        result["comparisons"]["real_vs_real"] = {
            "sets": f"{fc.real_split} ({len(real)}) vs {fc.other_split} ({len(other)})",
            "rows": _rows(real_features, extract(other), sizes, fc, "real_vs_real")}
    if os.path.isdir(os.path.join(workdir, "checkpoints")):
        trained = runs.load_trained(workdir, config.restore, config=config)
        latent = trained.algorithm.latent
        if latent is None:
            raise ConfigError(f"gan.name={config.gan.name!r} does not sample from a latent; "
                              "run fid_study on a generator's workdir (or without checkpoints for real vs real).")
        n = fc.num_generated or max(sizes)
        parts = latent.sample(jax.random.PRNGKey(fc.seed + 1), n)
        samples = evaluators.generate_in_batches(jax.jit(trained.algorithm.generate), trained.state, parts)
        result["checkpoint_step"] = trained.step
        result["comparisons"]["real_vs_generator"] = {
            "sets": f"{fc.real_split} ({len(real)}) vs {n} samples of step {trained.step}",
            "rows": _rows(real_features, extract(samples), sizes, fc, "real_vs_generator")}
    if not result["comparisons"]:
        raise ConfigError("fid_study has nothing to compare: set jobs.fid_study.other_split or "
                          "point --workdir at a trained run.")
    for name, text in (("fid_study.json", json.dumps(result, indent=2)), ("fid_study.md", format_report(result))):
        path = os.path.join(workdir, name)
        if os.path.exists(path):  # an earlier study is kept, renamed with its time
            stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(os.path.getmtime(path)))
            stem, ext = os.path.splitext(path)
            os.replace(path, f"{stem}_{stamp}{ext}")
        with open(path, "w") as f:
            f.write(text)
    return result


def format_report(result: dict) -> str:
    """Markdown: one table per comparison, with report 003's relative std beside ours."""
    ref = {int(k): v for k, v in result["report_003_rel_std_percent"].items()}
    lines = [f"# FID against the number of samples ({result['features']} features, "
             f"{result['image_shape']} images, {result['trials']} draws per size)", ""]
    for name, comp in result["comparisons"].items():
        lines += [f"## {name}: {comp['sets']}", "",
                  "| batch size | mean FID | std | relative std (%) | report 003 (%) |",
                  "|---:|---:|---:|---:|---:|"]
        for r in comp["rows"]:
            theirs = f"{ref[r['batch_size']]:.1f}" if r["batch_size"] in ref else "-"
            lines.append(f"| {r['batch_size']} | {r['mean']:.4f} | {r['std']:.4f} | "
                         f"{r['rel_std_percent']:.1f} | {theirs} |")
        lines.append("")
    return "\n".join(lines)
