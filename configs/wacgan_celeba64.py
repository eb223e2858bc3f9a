"""WACGAN on CelebA's 40 attributes at 64x64 RGB (report 002 in docs/references.md).

`acgan_celeba64` with the Wasserstein loss (a critic score, no sigmoid) and weight clipping
at 0.01, RMSprop 5e-5 and 5 critic updates per G update (Arjovsky et al. 2017). Report 002 saw
this model collapse after ~13 epochs; the run logs D's class accuracy on real faces
(`train/d_aux_accuracy`) and the critic's estimate (`train/d_loss`) to see when.
`--config.gan.weight_clip=0 --config.gan.gp_weight=10 --config.optim.optimizer=adam
--config.optim.b1=0.5 --config.optim.b2=0.9` gives the gradient-penalty variant.

    python launch.py --config=configs/wacgan_celeba64.py --config.data.data_dir=/path/to/tfds
    python launch.py --config=configs/wacgan_celeba64.py:tiny --workdir=/tmp/tiny
"""

from configs import acgan_celeba64
from ganjax.config import apply_variant


def get_config(arg: str | None = None):
    c = acgan_celeba64.get_config()
    c.name = "wacgan_celeba64"
    c.gan.loss = "wasserstein"
    c.gan.weight_clip = 0.01
    c.gan.d_steps = 5
    c.optim.optimizer = "rmsprop"
    c.optim.g_lr = 5e-5
    c.optim.d_lr = 5e-5
    return apply_variant(c, arg)
