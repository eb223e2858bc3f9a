"""The augmentation benchmark on the offline digits, low-data protocol (report 001's question; docs/augmentation.md).

At 5, 10 and 50 real digits per class (`jobs.augment.per_class`), the quick start's ACGAN with
DiffAugment on D's inputs (`configs/acgan_few_mnist.py`; without it D memorises the few real
digits and G draws noise) is trained on that subset alone for 2,000 steps and exports 1,000
samples per digit; report 001's simple CNN is then trained, 3 seeds per arm, on: the real
subset; the subset with classical augmentation (shifts of 2 px, rotations of 10 degrees); the
subset plus synthetic digits (half of each batch); both; synthetic digits only (the
Classification Accuracy Score); and twice the real subset with classical augmentation (the
"more real data" ceiling). Every arm trains 1,000 steps of 64 images; every classifier is scored on the 500 held-out
real digits.

    python launch.py --config=configs/augment_mnist.py
    python launch.py --config=configs/augment_mnist.py --config.jobs.augment.min_confidence=0.9
    python launch.py --config=configs/augment_mnist.py --config.jobs.augment.models=simple,vgg
    python launch.py --config=configs/augment_mnist.py:tiny --workdir=/tmp/augment   # a minute, for tests
"""

import os

from ganjax.config import apply_variant, base_config

HERE = os.path.dirname(os.path.abspath(__file__))


def get_config(arg: str | None = None):
    c = base_config("classifier")
    c.name = "augment_mnist"
    c.job = "augment"
    c.data.name = "mnist_offline"
    c.data.batch_size = 64
    c.train.num_steps = 1000
    c.train.log_every = 250
    c.classifier.model = "simple"
    c.classifier.learning_rate = 1e-3
    a = c.jobs.augment
    a.per_class = "5,10,50"
    a.seeds = 3
    a.models = "simple"
    a.ratios = "0.5"
    a.shift, a.rotate, a.flip = 2, 10.0, False
    a.generator = os.path.join(HERE, "acgan_few_mnist.py")
    a.generator_steps = 2000
    a.num_per_class = 1000
    c = apply_variant(c, arg)
    if arg == "tiny":
        a.per_class = "3"
        a.seeds = 2
        a.generator = os.path.join(HERE, "acgan_few_mnist.py:tiny")
        a.generator_steps = 0
        a.num_per_class = 20
    return c
