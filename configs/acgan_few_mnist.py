"""The quick start's ACGAN for a few real digits per class: DiffAugment on every D input (Zhao et al. 2020; docs/references.md).

With 5-50 real digits per class D memorises the training set within a few hundred steps and G
draws noise (measured: the quick start on 5 digits per class, `evals/` of the augmentation
benchmark's first run); DiffAugment's translation and cutout on real and fake images keep
the game going (digits by 500 steps on the same 50 images). The augmentation benchmark
(`configs/augment_mnist.py`) trains this on each real subset.

    python launch.py --config=configs/acgan_few_mnist.py --config.data.per_class=10
    python launch.py --config=configs/acgan_few_mnist.py:tiny --workdir=/tmp/tiny
"""

from configs import quickstart_mnist


def get_config(arg: str | None = None):
    c = quickstart_mnist.get_config(arg)
    c.name = "acgan_few_mnist" + ("_tiny" if arg == "tiny" else "")
    c.gan.diff_augment = "translation,cutout"
    c.data.per_class = 10
    if arg != "tiny":
        c.train.num_steps = 2000
    return c
