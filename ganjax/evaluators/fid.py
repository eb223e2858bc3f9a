"""FID of generated samples against the real data, in a stated feature space (report 003).

Two feature spaces (`features`):

* `judge` (default): the penultimate layer (128 features) of the independent judge, a CNN
  trained once on the real training split and cached in `workdir/judges/`
  (`evaluators.JudgedEvaluator`; its label head, or its attribute head on data without classes).
  The right space for 28x28 digits and 48x48 gray faces, where ImageNet features say little.
* `inception`: FID-Inception-v3 pool3 (2048 features) with the standard pytorch-fid weights
  named by `config.eval.inception_weights` (nothing is downloaded); images are resized to
  299x299 bilinearly (pytorch-fid's resizer) and gray ones repeated to 3 channels.

The real statistics (mean and covariance of the features of at most `max_real` images of
`real_split`) are computed once and cached in `workdir/fid_stats/` beside a JSON naming what
they are; a changed judge, weights file or data config means computing them again. Each
evaluation draws `num_samples` images from the latent prior (a conditional generator: labels
uniform over the classes) with the same key at a step, and writes

* `eval/<name>`: FID(samples, real), stated in the log line as e.g. "FID judge features, 1000
  samples vs 4500 real 'train' images, no resize";
* `eval/<name>/successive`: FID between these samples and those of the previous evaluation of
  this run (report 003's collapse signal: a steady fall means samples converging).

`train.best_metric=<name>` keeps the checkpoint with the lowest FID beside the latest ones.
"""

from __future__ import annotations

import hashlib
import json
import os

import flax.serialization
import ml_collections
import numpy as np
from absl import logging

from ganjax import evaluators, judges
from ganjax.data import pipeline
from ganjax.errors import ConfigError
from ganjax.metrics import fid as fid_lib

FEATURES = ("judge", "inception")


def judge_target(num_classes: int) -> str:
    """The judge whose features FID uses: its label head, or its attribute head without classes."""
    return "label" if num_classes >= 2 else "attributes"


def feature_space(features: str, config, get_judge):
    """(images in [-1, 1] -> features [N, D], a fingerprint of the space, the resizer) for
    `features` "judge" (`get_judge()`'s penultimate layer) or "inception" (FID-Inception pool3
    with `config.eval.inception_weights`; a one-line error naming the download if absent)."""
    if features == "judge":
        judge = get_judge()
        digest = hashlib.sha256(flax.serialization.to_bytes(judge.variables)).hexdigest()[:16]
        return judge.features, f"judge_{judge.target}_{digest}", "no resize"
    if features != "inception":
        raise ConfigError(f"FID features must be one of {list(FEATURES)}, got {features!r}.")
    from ganjax.metrics import features as features_lib, inception

    path = config.eval.inception_weights
    variables = inception.load_variables(path)
    extract = features_lib.batched_feature_extractor(inception.inception_apply_fn(variables), batch_size=100)
    return extract, f"inception_{os.path.basename(path)}_{os.stat(path).st_size}", "bilinear resize to 299x299"


class Evaluator(evaluators.JudgedEvaluator):
    TINY = {"num_samples": 64, "max_real": 128, "judge_steps": 30}

    @classmethod
    def default_config(cls) -> ml_collections.ConfigDict:
        c = ml_collections.ConfigDict()
        c.features = "judge"  # judge (a CNN trained on the real training split) | inception
        c.num_samples = 1000  # generated images per evaluation
        c.real_split = "train"  # real images the samples are compared with
        c.max_real = 10_000  # at most this many real images in the statistics (0 = all)
        c.judge_steps = 1000  # training steps of the judge (fitted once, cached in the workdir)
        return c

    @classmethod
    def check(cls, name, algorithm) -> None:
        evaluators.require_latent(name, "fid", algorithm)

    def __init__(self, name, entry, config, algorithm, workdir):
        super().__init__(name, entry, config, algorithm, workdir)
        if entry.features not in FEATURES:
            raise ConfigError(
                f"config.evals.{name}.features must be one of {list(FEATURES)}, got {entry.features!r}."
            )
        if entry.features == "inception" and not os.path.isfile(config.eval.inception_weights):
            from ganjax.metrics import inception

            inception.load_variables(config.eval.inception_weights)  # the error naming the fix
        self.judge_target = judge_target(algorithm.info.num_classes)
        self._extract = None
        self._real = None  # (mu, sigma, number of images)
        self._previous = None  # features of the previous evaluation's samples

    def _feature_fn(self):
        return feature_space(self.entry.features, self.config, lambda: self.judge)

    def _real_statistics(self):
        if self._real is not None:
            return self._real
        e, data = self.entry, self.config.data
        extract, space, self._resizer = self._feature_fn()
        self._extract = extract
        key = json.dumps({"space": space, "split": e.real_split, "max_real": e.max_real,
                          "data": {k: data.get(k) for k in judges.DATA_KEYS if k != "split"}},
                         sort_keys=True)
        tag = hashlib.sha256(key.encode()).hexdigest()[:12]
        base = os.path.join(self.workdir, "fid_stats", f"{e.features}_{e.real_split}_{tag}")
        if os.path.exists(base + ".npz") and os.path.exists(base + ".json"):
            try:
                with np.load(base + ".npz") as f:
                    self._real = (f["mu"], f["sigma"], int(f["count"]))
                return self._real
            except Exception as error:  # noqa: BLE001  (a damaged cache is recomputed)
                logging.warning("FID statistics %s.npz unreadable (%s); computing them again.", base, error)
        try:
            images = pipeline.load_arrays(data, e.real_split, limit=e.max_real or None)[0]
        except pipeline.DatasetError as error:
            raise ConfigError(
                f"config.evals.{self.name}.real_split={e.real_split!r}: {error}"
            ) from None
        feats = extract(images)
        mu, sigma = fid_lib.feature_statistics(feats)
        os.makedirs(os.path.dirname(base), exist_ok=True)
        np.savez(base + ".tmp.npz", mu=mu, sigma=sigma, count=len(feats))
        os.replace(base + ".tmp.npz", base + ".npz")
        with open(base + ".json", "w") as f:
            json.dump({"features": e.features, "space": space, "split": e.real_split,
                       "num_images": len(feats), "dim": int(mu.shape[0]), "key": json.loads(key)}, f, indent=1)
        self._real = (mu, sigma, len(feats))
        return self._real

    # -- evaluation -------------------------------------------------------------------------

    def run(self, state, step):
        mu_real, sigma_real, count = self._real_statistics()
        parts = self.algorithm.latent.sample(self.sample_key(step), self.entry.num_samples)
        feats = self._extract(evaluators.generate_in_batches(self._generate, state, parts))
        mu, sigma = fid_lib.feature_statistics(feats)
        value = fid_lib.frechet_distance(mu, sigma, mu_real, sigma_real)
        logging.info(
            "step %d: %s = %.4f (FID %s features, %d samples vs %d real %r images, %s)",
            step, self.name, value, self.entry.features, len(feats), count, self.entry.real_split,
            self._resizer,
        )
        yield self.name, value
        if self._previous is not None:
            yield f"{self.name}/successive", fid_lib.fid_from_features(self._previous, feats)
        self._previous = feats
