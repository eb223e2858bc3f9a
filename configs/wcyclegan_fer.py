"""Wasserstein CycleGAN on FER2013 (report 001, docs/references.md): critics with no sigmoid (a raw score),
trained with a gradient penalty (WGAN-GP, lambda 10; weight clipping as an option) and
`gan.d_steps` critic updates per generator update. Everything else as configs/cyclegan_fer.py.

    python launch.py --config=configs/wcyclegan_fer.py --config.data.manual_dir=/path/to/fer_csv_dir
    python launch.py --config=configs/wcyclegan_fer.py --config.gan.gp_weight=0 --config.gan.weight_clip=0.01
    python launch.py --config=configs/wcyclegan_fer.py --config.gan.d_steps=5
"""

from configs import cyclegan_fer


def get_config(arg: str | None = None):
    c = cyclegan_fer.get_config(arg)
    c.name = "wcyclegan_fer" + ("_tiny" if arg == "tiny" else "")
    c.gan.loss = "wasserstein"
    c.gan.real_target = 1.0  # no labels for a critic
    c.gan.gp_weight = 10.0  # WGAN-GP (Gulrajani et al. 2017)
    c.gan.weight_clip = 0.0  # e.g. 0.01 for WGAN weight clipping instead (set gp_weight=0)
    c.gan.d_steps = 2  # n_critic: critic updates per generator update (5 in WGAN-GP's paper)
    return c
