"""Does a conditional generator draw the class it is asked for?

An independent judge (`ganjax.judges`: a CNN trained on the real training split, sharing
nothing with the GAN; fitted once and cached in `workdir/judges/`) reads `num_samples`
generated images, an equal number per requested class. Writes

* `eval/<name>`: the fraction read as the requested class (TF-GAN's conditional MNIST eval, as a
  plain accuracy);
* `eval/<name>/judge_test_accuracy`: the judge's own accuracy on the real held-out split, which
  bounds what the score can show;
* `<name>_per_class` (PNG): the accuracy for each requested class, and `<name>_histogram`:
  the classes the judge reads, all samples together.
"""

from __future__ import annotations

import jax.numpy as jnp
import ml_collections
import numpy as np

from ganjax import evaluators, plots
from ganjax.errors import ConfigError


class Evaluator(evaluators.JudgedEvaluator):
    TINY = {"num_samples": 100, "judge_steps": 30}

    @classmethod
    def default_config(cls) -> ml_collections.ConfigDict:
        c = ml_collections.ConfigDict()
        c.num_samples = 1000  # generated images scored, the same number per class
        c.judge_steps = 1000  # training steps of the judge (fitted once, cached in the workdir)
        return c

    @classmethod
    def check(cls, name, algorithm) -> None:
        latent = algorithm.latent
        if latent is None or not latent.num_classes:
            raise ConfigError(
                f"config.evals.{name} (label_accuracy) needs a generator told a class label, and "
                f"gan.name={algorithm.name!r} here has none (set gan.conditional=True for the DCGAN "
                f"family), or remove the entry."
            )

    def run(self, state, step):
        judge, k, n = self.judge, self.algorithm.latent.num_classes, self.entry.num_samples
        labels = np.arange(n, dtype=np.int32) % k
        parts = self.algorithm.latent.sample(self.sample_key(step), n, label=jnp.asarray(labels))
        predicted = judge.predict(evaluators.generate_in_batches(self._generate, state, parts))
        correct = predicted == labels
        yield self.name, float(correct.mean())
        yield f"{self.name}/judge_test_accuracy", judge.test_accuracy
        per_class = [float(correct[labels == c].mean()) for c in range(k)]
        yield f"{self.name}_per_class", plots.bar_chart(
            per_class, judge.names, title=f"read as the requested class (step {step})", ylabel="accuracy"
        )
        counts = np.bincount(predicted, minlength=k) / n
        yield f"{self.name}_histogram", plots.bar_chart(
            counts, judge.names, title=f"classes the judge reads (step {step})", ylabel="fraction",
            reference=1.0 / k,
        )
