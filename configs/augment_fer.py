"""The augmentation benchmark on FER2013, report 001's setup: do synthetic faces help an emotion classifier?

Report 001 (docs/references.md) added to the real FER2013 training split the Neutral faces
translated into Happy and into Surprise by CycleGAN, and the faces of a DCGAN trained on the
Neutral class alone; its simple CNN and VGG-style CNN were then compared with and without them.
Here each arm trains 3 seeds of both classifiers for the same budget and is scored on the
PublicTest split, with per-emotion accuracy (report 001 saw Neutral fall 6 points while the
total rose). Train the three generators first (each a ganjax workdir; the job translates and
samples them into its own workdir):

    python launch.py --config=configs/cyclegan_fer.py --workdir=workdirs/cyclegan_fer
    python launch.py --config=configs/cyclegan_fer.py --config.data.domain_b=Surprise --workdir=workdirs/cyclegan_fer_surprise
    python launch.py --config=configs/dcgan_fer_neutral.py --workdir=workdirs/dcgan_fer_neutral
    python launch.py --config=configs/augment_fer.py --config.data.manual_dir=/path/to/fer_csv_dir
    python launch.py --config=configs/augment_fer.py:tiny --workdir=/tmp/augment_fer   # tests

`jobs.augment.synthetic` lists the three workdirs; `ratios` is the synthetic fraction of every
batch.
"""

from ganjax.config import apply_variant, base_config


def get_config(arg: str | None = None):
    c = base_config("classifier")
    c.name = "augment_fer"
    c.job = "augment"
    c.data.name = "fer2013"
    c.data.image_size = 48
    c.data.channels = 1
    c.data.batch_size = 64
    c.train.num_steps = 10_000
    c.train.log_every = 500
    a = c.jobs.augment
    a.per_class = "0"  # the whole real training split, as report 001
    a.split = "public_test"
    a.seeds = 3
    a.models = "simple,vgg"
    a.arms = "real,real+classical,real+synthetic,real+classical+synthetic,synthetic"
    a.ratios = "0.1"  # report 001 added a few thousand images to 28,709
    a.shift, a.rotate, a.flip = 2, 10.0, True
    a.synthetic = "workdirs/cyclegan_fer,workdirs/cyclegan_fer_surprise,workdirs/dcgan_fer_neutral"
    a.num_per_class = 3000
    c = apply_variant(c, arg)
    if arg == "tiny":
        a.seeds = 2
        a.models = "simple"
        a.arms = "real,real+synthetic"
        a.baseline = "real"
        a.ratios = "0.25"
        a.num_per_class = 8
    return c
