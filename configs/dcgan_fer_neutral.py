"""Report 001's "fake Neutral" generator: an unconditional DCGAN trained on FER2013's Neutral faces only, 48x48 gray.

Its samples, labelled Neutral by `job=synthesize`, are one of the synthetic sources of the
FER2013 augmentation benchmark (`configs/augment_fer.py`; report 001 in docs/references.md).

    python launch.py --config=configs/dcgan_fer_neutral.py --config.data.manual_dir=/path/to/fer_csv_dir
    python launch.py --config=configs/dcgan_fer_neutral.py --config.job=synthesize   # labelled Neutral
    python launch.py --config=configs/dcgan_fer_neutral.py:tiny --workdir=/tmp/tiny   # seconds
"""

from ganjax.config import apply_variant, base_config


def get_config(arg: str | None = None):
    c = base_config("dcgan")
    c.name = "dcgan_fer_neutral"
    c.gan.loss = "non_saturating"
    c.gan.real_target = 0.9  # soft real labels (report 001)
    c.model.z_dim = 100
    c.model.g_width = 64
    c.model.d_width = 64
    c.data.name = "fer2013"
    c.data.classes = "Neutral"
    c.data.image_size = 48
    c.data.channels = 1
    c.data.flip = True
    c.data.batch_size = 64
    c.train.num_steps = 20_000
    c.train.log_every = 100
    c.train.sample_every = 1000
    c.train.checkpoint_every = 1000
    return apply_variant(c, arg)
