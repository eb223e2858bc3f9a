"""Unconditional DCGAN (Radford et al. 2015) on the offline MNIST digits (reports 003 and 004, docs/references.md).

Every knob of the report 003 study is a config key, e.g.
    python launch.py --config=configs/dcgan_mnist.py
    python launch.py --config=configs/dcgan_mnist.py --config.model.d_batch_norm=False \
        --config.model.d_dropout=0.3 --config.gan.real_target=0.9 --config.optim.g_lr=1e-4
    python launch.py --config=configs/dcgan_mnist.py --config.model.spectral_norm=True
    python launch.py --config=configs/dcgan_mnist.py:tiny --workdir=/tmp/tiny
"""

from ganjax.config import apply_variant, base_config


def get_config(arg: str | None = None):
    c = base_config()
    c.name = "dcgan_mnist"
    c.gan.loss = "non_saturating"
    c.model.z_dim = 100
    c.model.g_width = 64
    c.model.d_width = 64
    c.data.name = "mnist_offline"
    c.data.batch_size = 64
    c.train.num_steps = 3000
    c.train.log_every = 100
    c.train.sample_every = 500
    c.train.checkpoint_every = 500
    return apply_variant(c, arg)
