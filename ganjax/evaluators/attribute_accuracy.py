"""Does a multi-label generator draw the attributes it is asked for? (ACGAN on CelebA's 40, or
the digits' derived attributes; report 002)

The requested attribute vectors are those of real held-out images (`split`, default `test`,
cycled to `num_samples`), so every request is a combination that occurs in real data. An
independent attribute judge (`evaluators.JudgedEvaluator`, target "attributes": a CNN with one
sigmoid per attribute trained on the real training split) reads the samples. Writes
`eval/<name>/<attribute>` (the fraction of samples whose attribute the judge reads as
requested), `eval/<name>` (their mean), `eval/<name>/judge_test_accuracy` (the judge's own mean
per-attribute accuracy on real held-out images) and the PNG `<name>` (per attribute, both).
"""

from __future__ import annotations

import jax.numpy as jnp
import ml_collections
import numpy as np

from ganjax import evaluators, plots
from ganjax.data import pipeline
from ganjax.errors import ConfigError


def real_attributes(data_config, split: str, limit: int) -> np.ndarray:
    """The attribute vectors [N, A] in {0, 1} of the first `limit` examples of a real split
    (no image is decoded)."""
    source = pipeline.open_split(data_config, split)
    rows = [b["attributes"] for b in source.ds.take(limit).batch(1024).as_numpy_iterator()]
    if not rows:
        raise pipeline.DatasetError(f"Split {split!r} of {source.info.name!r} is empty.")
    return (np.concatenate(rows) > 0.5).astype(np.float32)


class Evaluator(evaluators.JudgedEvaluator):
    judge_target = "attributes"
    TINY = {"num_samples": 100, "judge_steps": 30}

    @classmethod
    def default_config(cls) -> ml_collections.ConfigDict:
        c = ml_collections.ConfigDict()
        c.num_samples = 1000  # generated images scored
        c.split = "test"  # real images whose attribute vectors are requested
        c.judge_steps = 1000  # training steps of the judge (fitted once, cached in the workdir)
        return c

    @classmethod
    def check(cls, name, algorithm) -> None:
        latent = algorithm.latent
        if latent is None or not latent.num_attributes:
            raise ConfigError(
                f"config.evals.{name} (attribute_accuracy) needs a generator told an attribute "
                f"vector (gan.name=acgan on data with attributes, e.g. mnist_offline_attributes or "
                f"celeb_a); gan.name={algorithm.name!r} here has none."
            )

    def __init__(self, name, entry, config, algorithm, workdir):
        super().__init__(name, entry, config, algorithm, workdir)
        self._requests = None

    def run(self, state, step):
        e, judge = self.entry, self.judge
        if self._requests is None:
            real = real_attributes(self.config.data, e.split, e.num_samples)
            self._requests = np.resize(real, (e.num_samples, real.shape[1]))
        requested = self._requests
        parts = self.algorithm.latent.sample(self.sample_key(step), len(requested),
                                             attributes=jnp.asarray(requested))
        read = judge.predict(evaluators.generate_in_batches(self._generate, state, parts))
        per_attribute = (read == requested.astype(read.dtype)).mean(axis=0)
        for attribute, value in zip(judge.names, per_attribute):
            yield f"{self.name}/{attribute}", float(value)
        yield self.name, float(per_attribute.mean())
        yield f"{self.name}/judge_test_accuracy", judge.test_accuracy
        fig = plots.new_figure(max(6.0, 0.25 * len(judge.names)), 3.5)
        ax = fig.add_subplot()
        x = np.arange(len(judge.names))
        ax.bar(x - 0.2, per_attribute, 0.4, label="samples read as requested")
        ax.bar(x + 0.2, judge.test_accuracy_per_name, 0.4, label="judge on real held-out")
        ax.set_xticks(x, judge.names, rotation=90 if len(x) > 8 else 0, fontsize=7)
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=7, loc="lower right")
        ax.set_title(f"attributes as requested (step {step})")
        yield self.name, plots.figure_to_array(fig)
