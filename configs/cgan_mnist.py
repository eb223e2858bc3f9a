"""Conditional DCGAN (cDCGAN, report 004 in docs/references.md) on the 5,000 real MNIST digits bundled offline.

Labels go to G and D (dense -> reshape -> concatenate), non-saturating G
loss, Adam(2e-4, b1 0.5) decaying linearly to 0 over the last 60% of the steps. Every 500 steps
an independent judge (a CNN trained on the real digits, `ganjax/judges.py`) checks that each
sample shows the digit it was asked for (eval/label_accuracy).

    python launch.py --config=configs/cgan_mnist.py
    python launch.py --config=configs/cgan_mnist.py --config.data.name=mnist --config.data.download=True
    python launch.py --config=configs/cgan_mnist.py:tiny --workdir=/tmp/tiny   # seconds, for tests
"""

from ganjax import evaluators
from ganjax.config import apply_variant, base_config


def get_config(arg: str | None = None):
    c = base_config()
    c.name = "cgan_mnist"
    c.gan.conditional = True
    c.gan.loss = "non_saturating"
    c.model.z_dim = 64
    c.model.g_width = 48
    c.model.d_width = 48
    c.model.d_batch_norm = False
    c.model.d_dropout = 0.3
    c.optim.g_lr = 2e-4
    c.optim.d_lr = 2e-4
    c.optim.schedule = "linear_decay"  # settles G at the end instead of stopping mid-oscillation
    c.optim.decay_start = 0.4
    c.data.name = "mnist_offline"
    c.data.batch_size = 64
    c.train.num_steps = 5000
    c.train.log_every = 100
    c.train.sample_every = 500
    c.train.checkpoint_every = 500
    c.evals.label_accuracy = evaluators.entry("label_accuracy", every=500, num_samples=1000)
    return apply_variant(c, arg)
