"""ACGAN's multi-label path on real images: the offline digits with four binary attributes.

`mnist_offline_attributes` gives each real digit the attributes even, large (>= 5), loop (a
closed loop: 0, 6, 8, 9) and straight (only straight strokes: 1, 4, 7). G is told the
attribute vector (multi-hot), D's auxiliary head is 4 sigmoids trained with BCE (chosen by the
data: `acgan.aux_head=auto`), the same ResNet and schedule as `acgan_mnist`. Requested vectors
are those of real held-out digits; `eval/attribute_accuracy/<attribute>` is the fraction of
samples an independent attribute judge (a CNN trained on the real digits) reads as requested.
This is the CelebA 40-attribute path (`acgan_celeba64.py`) on data that is here offline.

    python launch.py --config=configs/acgan_digit_attributes.py --workdir=/tmp/acgan_attr
    python launch.py --config=configs/acgan_digit_attributes.py:tiny --workdir=/tmp/tiny
"""

from configs import acgan_mnist
from ganjax import evaluators
from ganjax.config import apply_variant


def get_config(arg: str | None = None):
    c = acgan_mnist.get_config()
    c.name = "acgan_digit_attributes"
    c.data.name = "mnist_offline_attributes"
    del c.evals["label_accuracy"]
    c.evals.attribute_accuracy = evaluators.entry("attribute_accuracy", every=1000, num_samples=1000)
    return apply_variant(c, arg)
