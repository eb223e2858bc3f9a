"""BEGAN (Berthelot et al. 2017; report 000 in docs/references.md) on CelebA faces at 128x128 RGB.

`configs/began_celeba64.py` with one scale more (5 scales, 8 -> 128 px; n = 128): the paper's
128 px model. carpedm20/BEGAN-tensorflow shows its 128 px faces after 200k steps and notes
that they are less diverse than the 64 px ones (carpedm20/BEGAN-tensorflow#10). Needs tfds
`celeb_a` prepared (docs/datasets.md).

    python launch.py --config=configs/began_celeba128.py --config.data.data_dir=/path/to/tfds
    python launch.py --config=configs/began_celeba128.py:tiny --workdir=/tmp/tiny
"""

from configs import began_celeba64
from ganjax.config import apply_variant


def get_config(arg: str | None = None):
    c = began_celeba64.get_config()
    c.name = "began_celeba128"
    c.data.image_size = 128
    c.train.num_steps = 200_000
    return apply_variant(c, arg)
