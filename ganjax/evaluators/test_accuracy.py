"""How well does a trained classifier read real held-out images?

For algorithms that classify (`gan.name=classifier`: they have `predict(state, images)`): the
accuracy on the real `split` (default `test`, which `data.per_class` never subsets). Writes

* `eval/<name>`: the fraction of held-out images classified correctly;
* `<name>_per_class` (PNG): the accuracy on each true class (report 001 saw one class drop while
  the total rose).
"""

from __future__ import annotations

import ml_collections

from ganjax import evaluators, plots
from ganjax.data import pipeline
from ganjax.errors import ConfigError


class Evaluator(evaluators.Evaluator):
    @classmethod
    def default_config(cls) -> ml_collections.ConfigDict:
        c = ml_collections.ConfigDict()
        c.split = "test"  # real split scored
        c.limit = 0  # score at most this many images; 0 = all
        return c

    @classmethod
    def check(cls, name, algorithm) -> None:
        if not hasattr(algorithm, "predict"):
            raise ConfigError(
                f"config.evals.{name} (test_accuracy) scores a classifier; gan.name={algorithm.name!r} "
                "does not classify images (use gan.name=classifier), or remove the entry."
            )

    def __init__(self, name, entry, config, algorithm, workdir):
        super().__init__(name, entry, config, algorithm, workdir)
        self._real = None

    def held_out(self):
        """(images [-1, 1], labels) of the scored split, loaded once."""
        if self._real is None:
            try:
                self._real = pipeline.load_arrays(self.config.data, self.entry.split, self.entry.limit or None)[:2]
            except pipeline.DatasetError as e:
                raise ConfigError(f"config.evals.{self.name}.split={self.entry.split!r}: {e}") from None
        return self._real

    def run(self, state, step):
        from ganjax.metrics.accuracy import per_class_accuracy

        images, labels = self.held_out()
        accuracy, per_class = per_class_accuracy(
            self.algorithm.predict(state, images), labels, self.algorithm.info.num_classes
        )
        yield self.name, accuracy
        yield f"{self.name}_per_class", plots.bar_chart(
            per_class, self.algorithm.info.class_names,
            title=f"{self.entry.split} accuracy per class (step {step})", ylabel="accuracy",
        )
