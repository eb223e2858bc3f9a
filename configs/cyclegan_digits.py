"""Offline CycleGAN demo: MNIST digit 1 <-> digit 7 on the bundled digits (no download).

A new user can watch CycleGAN train in minutes on a laptop CPU: small networks (width 16,
3 residual blocks, 28x28, a 2-layer PatchGAN), batch 8, LSGAN, cycle
L1 (lambda 10), identity 0.5, image pools of 50. The sample grid (workdir/samples/*.png) shows
per row [1 | G(1) | F(G(1)) | 7 | F(7) | G(F(7))].

    python launch.py --config=configs/cyclegan_digits.py            # ~400 steps, a few minutes
    python launch.py --config=configs/cyclegan_digits.py --config.data.domain_b=0
    python launch.py --config=configs/cyclegan_digits.py:tiny --workdir=/tmp/tiny
"""

from ganjax.config import apply_variant, base_config


def get_config(arg: str | None = None):
    c = base_config("cyclegan")
    c.name = "cyclegan_digits"
    c.gan.loss = "least_squares"
    c.gan.real_target = 0.9
    c.cyclegan.g_width = 16
    c.cyclegan.g_blocks = 3
    c.cyclegan.d_width = 16
    c.cyclegan.d_layers = 2
    c.cyclegan.pool_size = 50
    c.cyclegan.sample_split = "test"
    c.optim.g_lr = 2e-4
    c.optim.d_lr = 1e-4
    c.optim.schedule = "linear_decay"
    c.optim.decay_start = 0.5
    c.data.name = "mnist_offline"
    c.data.domain_a = "1"
    c.data.domain_b = "7"
    c.data.batch_size = 8
    c.train.num_steps = 400
    c.train.log_every = 50
    c.train.sample_every = 100
    c.train.checkpoint_every = 200
    c.train.sample_cols = 6
    return apply_variant(c, arg)
