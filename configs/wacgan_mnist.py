"""WACGAN on the offline digits: does report 002's collapse happen here, and when?

`acgan_mnist` with the Wasserstein loss, weight clipping at 0.01, RMSprop 5e-5 and 5 critic
updates per G update (as `wacgan_celeba64`). Report 002 saw WACGAN collapse after ~13 epochs
on CelebA. The `curves` evaluator plots the critic loss, D's class accuracy on real digits and
the judge's label accuracy of the samples, and marks the first step where the label accuracy
fell more than 0.2 below its best (`eval/curves/collapse_step`, -1 = never). With clipping, this
ResNet critic's outputs shrink to ~1e-6 and nothing trains (docs/controllable.md); the
gradient-penalty variant (second command) keeps the weights free.

    python launch.py --config=configs/wacgan_mnist.py --workdir=/tmp/wacgan
    python launch.py --config=configs/wacgan_mnist.py --config.gan.weight_clip=0 --config.gan.gp_weight=10 \
        --config.optim.optimizer=adam --config.optim.b1=0.5 --config.optim.b2=0.9 \
        --config.optim.g_lr=1e-4 --config.optim.d_lr=1e-4 --workdir=/tmp/wacgan_gp   # gradient penalty
    python launch.py --config=configs/wacgan_mnist.py:tiny --workdir=/tmp/tiny
"""

from configs import acgan_mnist
from ganjax import evaluators
from ganjax.config import apply_variant


def get_config(arg: str | None = None):
    c = acgan_mnist.get_config()
    c.name = "wacgan_mnist"
    c.gan.loss = "wasserstein"
    c.gan.weight_clip = 0.01
    c.gan.d_steps = 5
    c.optim.optimizer = "rmsprop"
    c.optim.g_lr = 5e-5
    c.optim.d_lr = 5e-5
    c.train.num_steps = 3000
    c.evals.label_accuracy.every = 250
    c.evals.curves = evaluators.entry(
        "curves", every=500, series=("train/d_loss", "train/g_loss", "train/d_aux_accuracy", "eval/label_accuracy"),
        watch="eval/label_accuracy", drop=0.2,
    )
    return apply_variant(c, arg)
