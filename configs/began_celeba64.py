"""BEGAN (Berthelot et al. 2017; report 000 in docs/references.md) on CelebA faces at 64x64 RGB.

The paper's network and carpedm20/BEGAN-tensorflow's settings: D an autoencoder of 4 scales
(8 -> 64 px), n = 128 channels, N_z = N_h = 64, 3x3 ELU convs, stride-2 sub-sampling and
nearest-neighbour up-sampling; gamma 0.5, lambda_k 0.001, k_0 = 0, Adam 1e-4 (beta1 0.5),
batch 16; the learning rate halved when M_global stalls (the paper; the mean of 1,000 steps as
one reading, 5 readings without a 1% fall), never below 2e-5 (carpedm20's floor). Faces are
centre-cropped to 128x128 (BEGAN's tight crops; carpedm20 crops 128x128 at (50, 25)) and
resized to 64x64. Needs tfds `celeb_a` prepared (docs/datasets.md).

    python launch.py --config=configs/began_celeba64.py --config.data.data_dir=/path/to/tfds
    python launch.py --config=configs/began_celeba64.py --config.began.gamma=0.75 \
        --config.began.lr_plateau_factor=0 --config.began.lr_halve_every=100000   # carpedm20's step halving
    python launch.py --config=configs/began_celeba64.py:tiny --workdir=/tmp/tiny

Logged: M_global, k_t, L(x), L(G(z)), the learning rates; the curves PNG every 10,000 steps.
carpedm20 shows its 64 px faces after 300k steps; Lucic et al. 2018 measured BEGAN's CelebA-64
FID (Inception features) at 38.9 after their search, about 49 with the authors' settings.
"""

from ganjax import evaluators
from ganjax.config import apply_variant, base_config


def get_config(arg: str | None = None):
    c = base_config("began")
    c.name = "began_celeba64"
    c.data.name = "celeb_a"
    c.data.center_crop = 128
    c.data.image_size = 64
    c.data.channels = 3
    c.data.cache = False  # 162,770 training faces: stream them
    c.model.width = 128
    c.began.lr_plateau_factor = 0.5
    c.began.lr_floor = 2e-5
    c.train.num_steps = 300_000
    c.train.log_every = 100
    c.train.sample_every = 1000
    c.train.checkpoint_every = 5000
    c.evals.curves = evaluators.entry(
        "curves", every=10_000, series=("train/m_global", "train/k_t", "train/g_lr"))
    return apply_variant(c, arg)
