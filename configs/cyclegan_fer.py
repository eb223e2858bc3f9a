"""CycleGAN emotion transfer on FER2013 (report 001, docs/references.md): Neutral <-> Happy, 48x48 gray.

The reference CycleGAN (ResNet-6 generators, 70x70 PatchGAN discriminators, LSGAN, cycle L1 with
lambda 10, identity loss 0.5 * lambda, image pools of 50 fakes) with report 001's fixes:
training augmentation (flip + jitter), G lr 2e-4 / D lr 1e-4 (Adam, beta1 0.5), constant then
linear decay to 0, soft real labels (0.9); the weighted cycle loss is a switch. See
docs/cyclegan.md.

    python launch.py --config=configs/cyclegan_fer.py --config.data.manual_dir=/path/to/fer_csv_dir
    python launch.py --config=configs/cyclegan_fer.py --config.data.domain_b=Surprise
    python launch.py --config=configs/cyclegan_fer.py --config.cyclegan.weighted_cycle=True
    python launch.py --config=configs/cyclegan_fer.py --config.cyclegan.g_blocks=9
    python launch.py --config=configs/cyclegan_fer.py:tiny --workdir=/tmp/tiny   # seconds
"""

from ganjax.config import apply_variant, base_config


def get_config(arg: str | None = None):
    c = base_config("cyclegan")
    c.name = "cyclegan_fer"
    c.gan.loss = "least_squares"
    c.gan.real_target = 0.9  # soft real labels (report 001)
    c.cyclegan.g_blocks = 6  # 9 also available
    c.cyclegan.g_width = 64
    c.cyclegan.d_width = 64
    c.cyclegan.d_layers = 3
    c.cyclegan.cycle_weight = 10.0
    c.cyclegan.identity_weight = 0.5  # x cycle_weight; 0 = no identity loss
    c.cyclegan.pool_size = 50
    c.cyclegan.weighted_cycle = False  # report 001's weighted cycle loss when True
    c.cyclegan.sample_split = "public_test"
    c.optim.g_lr = 2e-4
    c.optim.d_lr = 1e-4
    c.optim.b1 = 0.5
    c.optim.schedule = "linear_decay"
    c.optim.decay_start = 0.5
    c.data.name = "fer2013"
    c.data.domain_a = "Neutral"
    c.data.domain_b = "Happy"
    c.data.channels = 1
    c.data.image_size = 48
    c.data.batch_size = 8  # the reference uses 1; instance norm makes the step batch-independent
    c.data.flip = True  # training augmentation (report 001)
    c.data.jitter = 4  # resize to 52, random crop back to 48 (the reference's 286 -> 256)
    c.train.num_steps = 20_000  # ~26 epochs of Neutral at batch 8
    c.train.log_every = 100
    c.train.sample_every = 1000
    c.train.checkpoint_every = 1000
    c.train.sample_cols = 8
    c = apply_variant(c, arg)
    if arg == "tiny":
        c.cyclegan.pool_size = 4
    return c
