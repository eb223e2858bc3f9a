"""The classic DCGAN (Radford et al. 2015) on CelebA faces at 64x64 RGB (report 003, docs/references.md).

Needs tfds `celeb_a` prepared in the tfds data dir (its download is flaky: see
docs/datasets.md for preparing it from manually downloaded files). Faces are centre-cropped to
178x178 and resized to 64x64, as in the reports.

    python launch.py --config=configs/dcgan_celeba64.py --config.data.data_dir=/path/to/tfds
    python launch.py --config=configs/dcgan_celeba64.py --config.model.spectral_norm=True \
        --config.model.d_batch_norm=False      # report 003's SN variant
    python launch.py --config=configs/dcgan_celeba64.py:tiny --workdir=/tmp/tiny
"""

from ganjax.config import apply_variant, base_config


def get_config(arg: str | None = None):
    c = base_config()
    c.name = "dcgan_celeba64"
    c.gan.loss = "non_saturating"
    c.model.z_dim = 100
    c.model.g_width = 64
    c.model.d_width = 64
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
    return apply_variant(c, arg)
