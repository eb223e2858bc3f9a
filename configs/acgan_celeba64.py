"""ACGAN on CelebA's 40 attributes at 64x64 RGB (report 002 in docs/references.md).

Report 002's ResNet G (noise and the 40-attribute multi-hot vector through a dense layer, then
up-sampling stages of residual blocks, as many as 64 px needs) and D
(residual blocks of 16, 32, 64, 128 channels, LeakyReLU 0.2, dropout 0.25) with a 40-sigmoid
auxiliary head (BCE), chosen because celeb_a's examples carry attribute vectors. Needs tfds
`celeb_a` prepared (docs/datasets.md); faces centre-cropped to 178x178 and resized to 64x64.

    python launch.py --config=configs/acgan_celeba64.py --config.data.data_dir=/path/to/tfds
    python launch.py --config=configs/acgan_celeba64.py:tiny --workdir=/tmp/tiny

The attribute evaluator (`eval/attribute_accuracy/<attribute>`, an attribute judge trained on
the real faces) runs every 5,000 steps.
"""

from ganjax import evaluators
from ganjax.config import apply_variant, base_config


def get_config(arg: str | None = None):
    c = base_config("acgan")
    c.name = "acgan_celeba64"
    c.model.z_dim = 100
    c.optim.g_lr = 2e-4
    c.optim.d_lr = 2e-4
    c.data.name = "celeb_a"
    c.data.center_crop = 178
    c.data.image_size = 64
    c.data.channels = 3
    c.data.batch_size = 64
    c.data.cache = False  # 162,770 training faces: stream them
    c.train.num_steps = 50_000
    c.train.log_every = 100
    c.train.sample_every = 1000
    c.train.checkpoint_every = 2000
    c.evals.attribute_accuracy = evaluators.entry("attribute_accuracy", every=5000, num_samples=1000)
    return apply_variant(c, arg)
