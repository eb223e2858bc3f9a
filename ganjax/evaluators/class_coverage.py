"""Which classes does a generator draw when nobody asks for one? (mode coverage)

`num_samples` images from the latent prior (an unconditional GAN, InfoGAN, BEGAN; a
conditional one draws its labels uniformly) are read by the independent label judge
(`evaluators.JudgedEvaluator`). Writes `eval/<name>/min_fraction` and `/max_fraction` (every
class near 1/K: all covered, none dominant), `/covered` (classes with at least one sample),
`/kl_to_uniform` (`metrics.diversity.class_coverage`) and the histogram `<name>` (PNG).
"""

from __future__ import annotations

import ml_collections

from ganjax import evaluators, plots
from ganjax.errors import ConfigError
from ganjax.metrics import diversity


class Evaluator(evaluators.JudgedEvaluator):
    TINY = {"num_samples": 100, "judge_steps": 30}

    @classmethod
    def default_config(cls) -> ml_collections.ConfigDict:
        c = ml_collections.ConfigDict()
        c.num_samples = 1000  # generated images read by the judge
        c.judge_steps = 1000  # training steps of the judge (fitted once, cached in the workdir)
        return c

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
        predicted = judge.predict(evaluators.generate_in_batches(self._generate, state, parts))
        coverage = diversity.class_coverage(predicted, k)
        fractions = coverage.fractions
        yield f"{self.name}/min_fraction", float(fractions.min())
        yield f"{self.name}/max_fraction", float(fractions.max())
        yield f"{self.name}/covered", coverage.num_covered
        yield f"{self.name}/kl_to_uniform", coverage.kl_to_uniform
        yield self.name, plots.bar_chart(
            fractions, judge.names, title=f"classes of {len(predicted)} samples (step {step})",
            ylabel="fraction", reference=1.0 / k,
        )
