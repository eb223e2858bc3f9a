"""Does InfoGAN's categorical code pick the digit? (Chen et al. 2016, §7.1; report 000)

The Q head reads the real held-out images (`split`, default `test`); its categorical code is
matched one-to-one to the true classes by the Hungarian algorithm
(`metrics.codes.categorical_code_accuracy`: a code has no fixed meaning, code 3 may draw 7s).
Writes `eval/<name>` (the matched accuracy; the paper's best run: about 95% on MNIST) and
`<name>_confusion` (PNG: codes x classes, rows in matched order, so a 4/9 merge shows at once).

Q shares D's trunk, and D's batch-norm running averages mix the real and the generated batches
it normalised in training. `batch_stats` picks the statistics Q reads the held-out digits with:
`running` (the default: D as trained) or `real` (D's batch-norm means and variances re-estimated
on the real *training* images, `data.split`: "precise BN", Wu & Johnson 2021,
`NetState.with_data_batch_stats`; the held-out split gives only its labels to the score). Both
are logged when D has batch norm: `eval/<name>` by the chosen statistics, the other as
`eval/<name>_running` or `eval/<name>_real`. (On infogan_mnist they differ by about a point
either way late in training; docs/controllable.md.)
"""

from __future__ import annotations

import jax
import ml_collections
import numpy as np

from ganjax import evaluators, plots
from ganjax.data import pipeline
from ganjax.errors import ConfigError
from ganjax.metrics import codes


class Evaluator(evaluators.Evaluator):
    TINY = {"num_images": 100}

    @classmethod
    def default_config(cls) -> ml_collections.ConfigDict:
        c = ml_collections.ConfigDict()
        c.split = "test"  # real images whose classes the code is matched to
        c.num_images = 0  # 0 = the whole split
        c.batch_stats = "running"  # D's batch-norm statistics Q reads with: running | real (re-estimated on data.split)
        c.stats_batch_size = 500  # images per batch of that re-estimate
        return c

    @classmethod
    def check(cls, name, algorithm) -> None:
        if not hasattr(algorithm, "recover_codes") or not algorithm.latent.categorical:
            raise ConfigError(
                f"config.evals.{name} (code_accuracy) needs a Q head that reads a categorical code "
                f"(gan.name=infogan or infobegan); gan.name={algorithm.name!r} has none."
            )
        if not algorithm.info.num_classes:
            raise ConfigError(f"config.evals.{name} (code_accuracy) needs a dataset with class labels.")

    def __init__(self, name, entry, config, algorithm, workdir):
        super().__init__(name, entry, config, algorithm, workdir)
        if entry.batch_stats not in ("real", "running"):
            raise ConfigError(
                f"config.evals.{name}.batch_stats={entry.batch_stats!r}: use 'real' (D's batch-norm "
                "statistics re-estimated on the real training images) or 'running'."
            )
        self._recover = jax.jit(algorithm.recover_codes)
        self._real = self._train_images = None

    def run(self, state, step):
        if self._real is None:
            self._real = pipeline.load_arrays(self.config.data, self.entry.split,
                                              limit=self.entry.num_images or None)[:2]
        images, labels = self._real
        matches = {"running": match_codes(self.algorithm, state, images, labels, recover=self._recover)}
        if state.discriminator.batch_stats:
            if self._train_images is None:
                self._train_images = pipeline.load_arrays(self.config.data, self.config.data.split)[0]
            real = with_real_batch_stats(state, self._train_images, self.entry.stats_batch_size)
            matches["real"] = match_codes(self.algorithm, real, images, labels, recover=self._recover)
        match = matches.pop(self.entry.batch_stats, matches["running"])
        yield self.name, match.accuracy
        for other, m in matches.items():
            yield f"{self.name}_{other}", m.accuracy
        order = sorted(match.mapping, key=match.mapping.get)  # codes in the order of their class
        rest = [c for c in range(match.confusion.shape[0]) if c not in match.mapping]
        yield f"{self.name}_confusion", confusion_image(match.confusion[order + rest], order + rest, step)


def match_codes(algorithm, state, images, labels, batch_size: int = 500, recover=None) -> codes.CodeMatch:
    """Q's first categorical code on `images` (batches of `batch_size`), matched one-to-one to
    `labels` (Hungarian, `metrics.codes.categorical_code_accuracy`). `recover`: a compiled
    `algorithm.recover_codes` to reuse (compiled here if None)."""
    recover = recover or jax.jit(algorithm.recover_codes)
    logits = np.concatenate([
        np.asarray(recover(state, images[i:i + batch_size])["cat_logits"][0])
        for i in range(0, len(images), batch_size)
    ])
    return codes.categorical_code_accuracy(
        logits, labels, num_codes=algorithm.latent.categorical[0], num_classes=algorithm.info.num_classes,
    )


def with_real_batch_stats(state, train_images, batch_size: int = 500):
    """`state` with D's batch-norm statistics re-estimated on the real training images
    (`NetState.with_data_batch_stats`; D's dropout drawn with a fixed key: the same state gives the
    same statistics)."""
    d = state.discriminator.with_data_batch_stats(
        train_images, None, batch_size=min(batch_size, len(train_images)),
        rngs={"dropout": jax.random.PRNGKey(0)},
    )
    return state.replace(discriminator=d)


def configured_batch_stats(config) -> str:
    """The statistics the run's `code_accuracy` evaluator reads Q with (the first such entry of
    `config.evals`), so jobs that name codes by class agree with the reported accuracy;
    'running' for a run without one."""
    for entry in config.get("evals", {}).values():
        if entry.get("type") == "code_accuracy":
            return entry.get("batch_stats", "running")
    return "running"


def confusion_image(confusion: np.ndarray, code_order, step: int) -> np.ndarray:
    """Codes (rows) x true classes (columns) as a heat map with counts."""
    fig = plots.new_figure(5.0, 4.2)
    ax = fig.add_subplot()
    ax.imshow(confusion, cmap="Blues")
    for (r, c), v in np.ndenumerate(confusion):
        if v:
            ax.text(c, r, str(v), ha="center", va="center", fontsize=6)
    ax.set_yticks(range(len(code_order)), [f"code {c}" for c in code_order], fontsize=7)
    ax.set_xticks(range(confusion.shape[1]))
    ax.set_xlabel("true class")
    ax.set_title(f"categorical code vs class (step {step})")
    return plots.figure_to_array(fig)
