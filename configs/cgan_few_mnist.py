"""A conditional DCGAN (report 004 in docs/references.md) for a few real digits per class: the quick start's networks, DiffAugment on every D input.

The cGAN counterpart of `configs/acgan_few_mnist.py`, for the augmentation benchmark's
"conditional vs ACGAN generator" comparison (docs/augmentation.md): the same G (the one-hot
label concatenated with the noise, `model.g_label=input`) and D trunk (openai/InfoGAN's MNIST
networks), the same optimiser, DiffAugment (translation, cutout) and step count; the only
difference is how D uses the label: told it (cGAN, D's score is conditional) instead of
predicting it with an auxiliary head (ACGAN).

    python launch.py --config=configs/cgan_few_mnist.py --config.data.per_class=10
    python launch.py --config=configs/augment_mnist.py --config.jobs.augment.generator=configs/cgan_few_mnist.py \
        --config.jobs.augment.per_class=5,10 --config.jobs.augment.arms=real+classical,real+classical+synthetic,synthetic \
        --workdir=workdirs/augment_mnist_cgan
    python launch.py --config=configs/cgan_few_mnist.py:tiny --workdir=/tmp/tiny   # seconds, for tests
"""

from ganjax import evaluators
from ganjax.config import apply_variant, base_config


def get_config(arg: str | None = None):
    c = base_config("dcgan", arch="dcgan")
    c.name = "cgan_few_mnist" + ("_tiny" if arg == "tiny" else "")
    c.gan.conditional = True
    c.gan.loss = "non_saturating"
    c.gan.diff_augment = "translation,cutout"
    c.model.z_dim = 62
    c.model.g_width = 64
    c.model.d_width = 64
    c.model.g_hidden = 1024
    c.model.d_hidden = 1024
    c.model.g_label = "input"
    c.optim.g_lr = 1e-3
    c.optim.d_lr = 2e-4
    c.data.name = "mnist_offline"
    c.data.batch_size = 64
    c.data.per_class = 10
    c.train.num_steps = 2000
    c.train.log_every = 100
    c.train.sample_every = 500
    c.train.checkpoint_every = 500
    c.evals.label_accuracy = evaluators.entry("label_accuracy", every=500, num_samples=1000)
    c = apply_variant(c, arg)
    if arg == "tiny":
        c.model.g_hidden, c.model.d_hidden = 16, 16
    return c
