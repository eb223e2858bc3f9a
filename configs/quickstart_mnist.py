"""The quick start: ACGAN (Odena et al. 2017; report 002 in docs/references.md) with small DCGAN networks, on the 5,000 real MNIST digits bundled offline.

G is told the digit as a one-hot vector concatenated with the noise (`model.g_label=input`) and
D predicts it with an auxiliary softmax head beside its real/fake score; the networks are
openai/InfoGAN's MNIST ones (G: FC 1024, FC 7x7x128, two 4x4 up-convolutions; D: two 4x4
convolutions, FC 1024), which train in minutes on a laptop CPU, where report 002's ResNet
(`configs/acgan_mnist.py`) takes most of an hour. Adam (b1 0.5), G lr 1e-3, D lr 2e-4, batch 64.

Every 500 steps: `eval/label_accuracy` (an independent judge, a CNN trained on the real
digits, reads 1,000 samples, 100 per requested digit), `eval/fid` (FID of 1,000 samples against
the real training digits in that judge's features), `eval/ms_ssim` (sample diversity within a
class beside the real digits'), the classes the judge reads in samples drawn from the prior
(`eval/class_coverage/*`), and a kNN memorisation grid; the checkpoint with the lowest FID
is kept beside the latest (`--config.restore=best` for the jobs).

    python launch.py --config=configs/quickstart_mnist.py
    python launch.py --config=configs/quickstart_mnist.py --config.job=synthesize --config.restore=best
    python launch.py --config=configs/quickstart_mnist.py:tiny --workdir=/tmp/tiny   # seconds, for tests
"""

from ganjax import evaluators
from ganjax.config import apply_variant, base_config


def get_config(arg: str | None = None):
    c = base_config("acgan", arch="dcgan")
    c.name = "quickstart_mnist"
    c.model.z_dim = 62
    c.model.g_width = 64
    c.model.d_width = 64
    c.model.g_hidden = 1024
    c.model.d_hidden = 1024
    c.model.head_hidden = 128
    c.model.g_label = "input"  # the label map of report 004 is too weak a signal here: G ignored it
    c.optim.g_lr = 1e-3
    c.optim.d_lr = 2e-4
    c.data.name = "mnist_offline"
    c.data.batch_size = 64
    c.train.num_steps = 3000
    c.train.log_every = 100
    c.train.sample_every = 500
    c.train.checkpoint_every = 500
    c.train.best_metric = "fid"
    c.evals.label_accuracy = evaluators.entry("label_accuracy", every=500, num_samples=1000)
    c.evals.fid = evaluators.entry("fid", every=500)
    c.evals.ms_ssim = evaluators.entry("ms_ssim", every=500)
    c.evals.class_coverage = evaluators.entry("class_coverage", every=500)
    c.evals.memorisation = evaluators.entry("memorisation", every=500)
    c = apply_variant(c, arg)
    if arg == "tiny":
        c.model.g_hidden, c.model.d_hidden, c.model.head_hidden = 16, 16, 8
    return c
