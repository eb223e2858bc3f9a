"""Info-BEGAN (report 000 in docs/references.md) on the offline digits: BEGAN plus InfoGAN's codes.

`configs/began_mnist.py`'s BEGAN (its digit settings) whose generator also takes a 10-way categorical code and 2
continuous codes U(-1, 1), read back by a Q head on D's embedding (Dense 128 + ELU, then the
code outputs) and trained with InfoGAN's information loss (lambda 1) in both players' losses
(`began.categorical`, `began.continuous`, `began.lambda_cat`, ... as InfoGAN's `infogan.*`).
Evaluated as `configs/infogan_mnist.py`: the categorical code's accuracy as a digit classifier on
the 500 held-out real digits (`eval/code_accuracy`, Hungarian matching), traversal grids of each
continuous code with the slant / thickness they carry (`eval/traversals/*`), class coverage under
an independent digit judge, a kNN memorisation grid; and the curves of M_global and k_t.
Measured in 2,000-step runs only, at gamma 1.0: G draws one digit (with or without the pull-away
term) or faint textures (with noise recovery); code accuracy 18-26% (docs/controllable.md).

    python launch.py --config=configs/infobegan_mnist.py --workdir=workdirs/infobegan_mnist
    python launch.py --config=configs/infobegan_mnist.py --config.began.lambda_noise=0.1   # noise recovery
    python launch.py --config=configs/infobegan_mnist.py --config.job=synthesize   # 1,000 digits per code, named by Q
    python launch.py --config=configs/infobegan_mnist.py:tiny --workdir=/tmp/tiny   # seconds, for tests
"""

from configs import began_mnist
from ganjax import evaluators
from ganjax.config import apply_variant, base_config


def get_config(arg: str | None = None):
    c = began_mnist.digit_settings(base_config("infobegan"))
    c.name = "infobegan_mnist"
    c.began.categorical = 10
    c.began.continuous = 2
    c.evals.curves = evaluators.entry(
        "curves", every=1000, series=("train/m_global", "train/k_t", "train/info_cat", "train/info_cont"))
    c.evals.code_accuracy = evaluators.entry("code_accuracy", every=1000)
    c.evals.traversals = evaluators.entry("traversals", every=1000)
    c.evals.class_coverage = evaluators.entry("class_coverage", every=0)
    c.evals.memorisation = evaluators.entry("memorisation", every=0)
    return apply_variant(c, arg)
