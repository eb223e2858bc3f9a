"""BEGAN (Berthelot et al. 2017; report 000 in docs/references.md) on the offline digits (28x28).

D is an autoencoder (3 scales: 28 -> 14 -> 7 px, n = 32 channels, a 64-dim embedding), G its
decoder's twin; z ~ U(-1, 1)^64, gamma 0.5, lambda_k 0.001, k_0 = 0, Adam 1e-4 (beta1 0.5),
batch 16 (the paper's and carpedm20/BEGAN-tensorflow's settings, n smaller for 28 px digits).
Logged every 100 steps: M_global, k_t, L(x), L(G(z)), the learning rates
(`train/m_global`, `train/k_t`, ...). Evaluated: the curves of M_global and k_t (PNG), the
classes an independent digit judge reads in 1,000 samples (`eval/class_coverage/*`: every digit
near 10%), FID of 1,000 samples against the 500 held-out real digits in the judge's features
(`eval/fid`; compare with `configs/dcgan_mnist.py` under the same settings, docs/controllable.md),
and a kNN memorisation grid.

    python launch.py --config=configs/began_mnist.py --workdir=/work/runs/began_mnist
    python launch.py --config=configs/began_mnist.py --config.began.gamma=0.75   # more diverse
    python launch.py --config=configs/began_mnist.py --config.began.lr_plateau_factor=0.5  # halve the lr when M_global stalls
    python launch.py --config=configs/began_mnist.py:tiny --workdir=/tmp/tiny   # seconds, for tests
"""

from ganjax import evaluators
from ganjax.config import apply_variant, base_config


def fid_entry(every: int):
    """FID of 1,000 samples against the 500 held-out real digits in the judge's features (the
    same entry `configs/dcgan_mnist.py` is compared under)."""
    return evaluators.entry("fid", every=every, num_samples=1000, real_split="test")


def get_config(arg: str | None = None):
    c = base_config("began")
    c.name = "began_mnist"
    c.data.name = "mnist_offline"
    c.model.width = 32
    c.train.num_steps = 4000
    c.train.log_every = 100
    c.train.sample_every = 500
    c.train.checkpoint_every = 500
    c.evals.curves = evaluators.entry(
        "curves", every=1000, series=("train/m_global", "train/k_t", "train/l_real", "train/l_fake"))
    c.evals.class_coverage = evaluators.entry("class_coverage", every=1000, num_samples=1000)
    c.evals.fid = fid_entry(every=1000)
    c.evals.memorisation = evaluators.entry("memorisation", every=0)
    return apply_variant(c, arg)
