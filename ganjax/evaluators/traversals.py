"""What each continuous code does: traversal grids and their measured factors (InfoGAN Fig. 2).

For each continuous code j, a grid whose rows are the values of the first categorical code
(or `rows` random inputs when there is none) and whose columns sweep c_j over
linspace(-span, span, cols) with every other input fixed along a row (`span` = 2 looks past
the U(-1, 1) prior, as the paper does): PNG `<name>_c<j>`.

For digits the two factors InfoGAN finds are measured (`metrics.codes`): along `num_rows`
traversals of c_j over the prior's range [-1, 1], the mean Spearman correlation between c_j and
the digit's slant (image moments) and its ink mass (stroke thickness):
`eval/<name>/c<j>_slant` and `eval/<name>/c<j>_thickness`. The paper's c1 is slant and c2
thickness; which code carries which factor is the run's choice, so read the larger |rho|.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ganjax import evaluators, images
from ganjax.errors import ConfigError
from ganjax.metrics import codes


class Evaluator(evaluators.Evaluator):
    TINY = {"num_rows": 4, "cols": 5}

    @classmethod
    def default_config(cls) -> ml_collections.ConfigDict:
        c = ml_collections.ConfigDict()
        c.cols = 9  # values of the swept code per grid row
        c.span = 2.0  # the grid sweeps c_j over [-span, span]
        c.rows = 10  # grid rows when the latent has no categorical code
        c.num_rows = 100  # traversals over [-1, 1] whose factors are measured (0 = no measures)
        return c

    @classmethod
    def check(cls, name, algorithm) -> None:
        if algorithm.latent is None or not algorithm.latent.continuous:
            raise ConfigError(
                f"config.evals.{name} (traversals) needs a generator with continuous codes "
                f"(gan.name=infogan or infobegan); gan.name={algorithm.name!r} has none."
            )

    def run(self, state, step):
        latent, e = self.algorithm.latent, self.entry
        key = jax.random.PRNGKey(self.config.seed + 3)  # the same inputs at every step
        grid_values = jnp.linspace(-e.span, e.span, e.cols)
        measure_values = np.linspace(-1.0, 1.0, e.cols)
        for j in range(latent.continuous):
            rows = latent.categorical[0] if latent.categorical else e.rows
            parts, _ = latent.traversal(key, rows, grid_values, code=j)
            if latent.categorical:
                parts["cat"] = parts["cat"].at[:, 0].set(jnp.repeat(jnp.arange(rows), e.cols))
            picture = evaluators.generate_in_batches(self._generate, state, parts)
            yield f"{self.name}_c{j}", images.make_grid(picture, rows)
            if e.num_rows:
                parts, _ = latent.traversal(jax.random.fold_in(key, j + 1), e.num_rows, measure_values, code=j)
                samples = evaluators.generate_in_batches(self._generate, state, parts)
                shape = (e.num_rows, e.cols)
                yield f"{self.name}/c{j}_slant", codes.traversal_correlation(
                    codes.slant(samples).reshape(shape), measure_values)
                yield f"{self.name}/c{j}_thickness", codes.traversal_correlation(
                    codes.ink_mass(samples).reshape(shape), measure_values)
