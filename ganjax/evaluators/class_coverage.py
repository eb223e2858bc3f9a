"""Which classes does a generator draw when nobody asks for one? (mode coverage)

`num_samples` images from the latent prior (an unconditional GAN, InfoGAN, BEGAN; a
conditional one draws its labels uniformly) are read by the independent label judge
(`evaluators.JudgedEvaluator`). Writes `eval/<name>/min_fraction` and `/max_fraction` (every
class near 1/K: all covered, none dominant), `/covered` (classes with at least one sample),
`/kl_to_uniform` (`metrics.diversity.class_coverage`) and the histogram `<name>` (PNG).

The histogram files every sample under the judge's argmax, ambiguous ones included, so it also
writes `/confident`: the share of samples the judge reads with top softmax probability >=
`confidence` (`metrics.diversity.confident_fraction`), beside `/confident_real`, the same share
of the held-out real 'test' split (written when that split exists and the judge did not train on
it): real digits score about 0.94 at 0.9 under the digit judge, so a generator far below that
draws many shapes that are no clear class, and its histogram says less than it seems.
"""

from __future__ import annotations

import functools

import ml_collections

from ganjax import evaluators, plots
from ganjax.data import pipeline
from ganjax.errors import ConfigError, DatasetError
from ganjax.metrics import diversity


class Evaluator(evaluators.JudgedEvaluator):
    TINY = {"num_samples": 100, "judge_steps": 30}

    @classmethod
    def default_config(cls) -> ml_collections.ConfigDict:
        c = ml_collections.ConfigDict()
        c.num_samples = 1000  # generated images read by the judge
        c.judge_steps = 1000  # training steps of the judge (fitted once, cached in the workdir)
        c.confidence = 0.9  # `confident`: share of samples read with top softmax probability >= this
        return c

    def __init__(self, name, entry, config, algorithm, workdir):
        super().__init__(name, entry, config, algorithm, workdir)
        if not 0.0 < entry.confidence < 1.0:
            raise ConfigError(
                f"config.evals.{name}.confidence must be in (0, 1) (default 0.9), got {entry.confidence}."
            )

    @classmethod
    def check(cls, name, algorithm) -> None:
        if algorithm.latent is None or not algorithm.info.num_classes:
            raise ConfigError(
                f"config.evals.{name} (class_coverage) needs a generator that samples from a latent "
                f"and a dataset with class labels to train its judge on; gan.name={algorithm.name!r} "
                f"on {algorithm.info.name!r} has {'no latent' if algorithm.latent is None else 'no labels'}."
            )

    def run(self, state, step):
        judge, k = self.judge, self.algorithm.info.num_classes
        parts = self.algorithm.latent.sample(self.sample_key(step), self.entry.num_samples)
        logits = judge.logits(evaluators.generate_in_batches(self._generate, state, parts))
        coverage = diversity.class_coverage(logits, k)
        fractions = coverage.fractions
        yield f"{self.name}/min_fraction", float(fractions.min())
        yield f"{self.name}/max_fraction", float(fractions.max())
        yield f"{self.name}/covered", coverage.num_covered
        yield f"{self.name}/kl_to_uniform", coverage.kl_to_uniform
        yield f"{self.name}/confident", diversity.confident_fraction(logits, self.entry.confidence)
        if self._confident_real is not None:
            yield f"{self.name}/confident_real", self._confident_real
        yield self.name, plots.bar_chart(
            fractions, judge.names, title=f"classes of {len(logits)} samples (step {step})",
            ylabel="fraction", reference=1.0 / k,
        )

    @functools.cached_property
    def _confident_real(self) -> float | None:
        """`confident` of the real 'test' split (None: no such split, or the judge's own data)."""
        if self.config.data.split == "test":
            return None
        try:
            images = pipeline.load_arrays(self.config.data, "test")[0]
        except DatasetError:
            return None
        return diversity.confident_fraction(self.judge.logits(images), self.entry.confidence)
