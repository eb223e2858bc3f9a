"""WGAN-GP (Gulrajani et al. 2017) on the offline MNIST digits.

Critic without batch norm, linear score, gradient penalty 10 on the whole flattened example,
5 critic updates (each on its own real batch) per G update, Adam(1e-4, betas (0.5, 0.9)).

    python launch.py --config=configs/wgangp_mnist.py
    python launch.py --config=configs/wgangp_mnist.py --config.gan.gp_weight=0 \
        --config.gan.weight_clip=0.01 --config.optim.optimizer=rmsprop \
        --config.optim.g_lr=5e-5 --config.optim.d_lr=5e-5           # original WGAN
    python launch.py --config=configs/wgangp_mnist.py:tiny --workdir=/tmp/tiny
"""

from ganjax.config import apply_variant, base_config


def get_config(arg: str | None = None):
    c = base_config()
    c.name = "wgangp_mnist"
    c.gan.loss = "wasserstein"
    c.gan.gp_weight = 10.0
    c.gan.d_steps = 5
    c.model.z_dim = 100
    c.model.g_width = 64
    c.model.d_width = 64
    c.model.d_batch_norm = False
    c.optim.g_lr = 1e-4
    c.optim.d_lr = 1e-4
    c.optim.b1 = 0.5
    c.optim.b2 = 0.9
    c.data.name = "mnist_offline"
    c.data.batch_size = 64
    c.train.num_steps = 2000
    c.train.log_every = 100
    c.train.sample_every = 500
    c.train.checkpoint_every = 500
    return apply_variant(c, arg)
