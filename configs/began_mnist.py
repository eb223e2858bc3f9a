"""BEGAN (Berthelot et al. 2017; report 000 in docs/references.md) on the offline digits (28x28).

D is an autoencoder (3 scales: 28 -> 14 -> 7 px, n = 16 channels, a 64-dim embedding), G its
decoder's twin; z ~ U(-1, 1)^64, k_0 = 0, batch 16, Adam beta1 0.5. The paper's gamma 0.5,
lambda_k 0.001 and lr 1e-4 (with n = 32) kept k_t pinned at 0 on these digits and drew one blob
for every z after 1,000 steps (the known MNIST failure, carpedm20/BEGAN-tensorflow#12); these
settings were the best of the fixes tried (docs/controllable.md): lambda_k 0.01, lr 5e-4; G's
loss also carries EBGAN's pull-away term on D's embeddings of the fakes with weight 0.6
(`began.pull_away`; without it G draws thin 1s only, at 0.3 the digits come unevenly, 1.5-21.7%,
at 1.0 more unevenly); gamma is 1.5, beyond the paper's range: G's images are held 1.5 times
harder to reconstruct than real digits (k_t 0.1-0.3), which turned rough strokes into digits
(gamma 1.75 and 2.0 break the run). Measured at 6,000 steps over seeds 0-9: every digit
5.2-15.5% / 5.5-14.2% / 4.7-13.9% / 3.0-15.6% / 5.2-14.4% / - / 3.7-21.8% / 6.4-17.9% / 4.6-14.1% /
4.4-17.4% of 1,000 samples, FID 101 / 59 / 104 / 76 / 83 / - / 80 / 52 / 79 / 81 (DCGAN: 94); on
seed 5 k_t fell to near 0 at step 1,300 (0.4-31.0%, FID 191), on seed 6 to 0.02-0.08 from step
2,600: the 5-15% target holds on 2 seeds of 10.
Logged every 100 steps: M_global, k_t, L(x), L(G(z)), the learning rates (`train/m_global`,
`train/k_t`, ...). Evaluated: the curves of M_global and k_t (PNG), the classes an independent
digit judge reads in 1,000 samples (`eval/class_coverage/*`: every digit near 10%; `confident`, the
share it reads with probability >= 0.9, about half, against 0.94 for real digits), FID of 1,000
samples against the 500 held-out real digits in the judge's features (`eval/fid`; beside
`configs/dcgan_mnist.py` under the same entry: `fid_entry` below), a kNN memorisation grid.

    python launch.py --config=configs/began_mnist.py --workdir=workdirs/began_mnist
    python launch.py --config=configs/began_mnist.py --config.began.gamma=0.5 --config.began.lambda_k=0.001 \
        --config.optim.g_lr=1e-4 --config.optim.d_lr=1e-4 --config.model.width=32   # the paper's settings
    python launch.py --config=configs/began_mnist.py --config.began.lr_plateau_factor=0.5  # halve the lr when M_global stalls
    python launch.py --config=configs/began_mnist.py --config.began.gamma_from=1.25 --config.began.gamma_ramp_steps=4000  # gamma 1.25 -> 1.5 (2 of 10 seeds in the band, as without)
    python launch.py --config=configs/began_mnist.py --config.model.width=32   # twice the width: more even digits, but 2 of 6 runs diverge late
    python launch.py --config=configs/began_mnist.py --config.model.width=32 --config.optim.grad_clip_norm=10   # gradients clipped: 0 of 4 diverge, 1 of 4 in the band
    python launch.py --config=configs/began_mnist.py --config.began.embedding_mmd=1.0   # MMD of D's real / fake codes in L_G (1 of 4 seeds in the band)
    python launch.py --config=configs/began_mnist.py --config.began.gamma=1.0   # the earlier setting (rough strokes)
    python launch.py --config=configs/began_mnist.py --config.began.pull_away=0.3   # the earlier weight (digits less even)
    python launch.py --config=configs/began_mnist.py --config.began.pull_away=0   # no pull-away term (thin 1s at gamma 1.0)
    python launch.py --config=configs/began_mnist.py --config.began.latent_constraint=0.1   # BEGAN-CS's constraint (less even here)
    python launch.py --config=configs/began_mnist.py:tiny --workdir=/tmp/tiny   # seconds, for tests
"""

from ganjax import evaluators
from ganjax.config import apply_variant, base_config


def fid_entry(every: int):
    """FID of 1,000 samples against the 500 held-out real digits in the judge's features (the
    same entry `configs/dcgan_mnist.py` is compared under)."""
    return evaluators.entry("fid", every=every, num_samples=1000, real_split="test")


def digit_settings(c):
    """The network and equilibrium settings for the digits (shared with infobegan_mnist)."""
    c.data.name = "mnist_offline"
    c.model.width = 16
    c.optim.g_lr = 5e-4
    c.optim.d_lr = 5e-4
    c.began.gamma = 1.0
    c.began.lambda_k = 0.01
    c.train.num_steps = 2000
    c.train.log_every = 100
    c.train.sample_every = 500
    c.train.checkpoint_every = 500
    return c


def get_config(arg: str | None = None):
    c = digit_settings(base_config("began"))
    c.name = "began_mnist"
    c.began.pull_away = 0.6
    c.began.gamma = 1.5
    c.train.num_steps = 6000
    c.evals.curves = evaluators.entry(
        "curves", every=2000, series=("train/m_global", "train/k_t", "train/l_real", "train/l_fake"))
    c.evals.class_coverage = evaluators.entry("class_coverage", every=2000, num_samples=1000)
    c.evals.fid = fid_entry(every=2000)
    c.evals.memorisation = evaluators.entry("memorisation", every=0)
    return apply_variant(c, arg)
