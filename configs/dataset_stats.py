"""Dataset summary: per-class distribution table of every split and preview grids per class.

Prints the number of examples of each class in each split (as report 001 showed FER2013) and
writes `class_counts.json` and `preview_<split>_<k>_<class>.png` grids to the workdir
(default workdirs/dataset_stats). Nothing trains. See docs/datasets.md for where each dataset
must be placed.

    python launch.py --config=configs/dataset_stats.py                       # offline MNIST digits
    python launch.py --config=configs/dataset_stats.py --config.data.name=fer2013 \
        --config.data.manual_dir=/path/to/dir_with_fer2013.csv
    python launch.py --config=configs/dataset_stats.py:fer2013                # same, default manual dir
    python launch.py --config=configs/dataset_stats.py --config.data.name=fer2013 \
        --config.data.classes=Neutral,Happy --config.data.preview=32
    python launch.py --config=configs/dataset_stats.py --config.data.name=celeb_a \
        --config.data.image_size=64                                          # 40 attribute counts
    python launch.py --config=configs/dataset_stats.py --config.data.name=celeb_a \
        --config.data.label_attribute=Smiling
    python launch.py --config=configs/dataset_stats.py --config.data.name=image_folder \
        --config.data.folder=/path/to/root --config.data.image_size=64
    python launch.py --config=configs/dataset_stats.py:fer2013 \
        --config.data.domain_a=Neutral --config.data.domain_b=Happy           # CycleGAN domains
"""

from ganjax.config import ConfigError, base_config

DATASETS = ("mnist_offline", "mnist", "fer2013", "celeb_a", "image_folder")


def get_config(arg: str | None = None):
    c = base_config()
    c.job = "dataset_stats"
    c.name = "dataset_stats"
    c.data.name = "mnist_offline"  # runs with no download; override with --config.data.name
    c.data.split = "train"  # preview grids come from this split; the table covers all splits
    c.data.preview = 64
    if arg:
        if arg not in DATASETS:
            raise ConfigError(f"unknown dataset {arg!r} in --config=configs/dataset_stats.py:{arg}; choose one of {DATASETS}.")
        c.data.name = arg
        if arg == "celeb_a":
            c.data.image_size = 64
    return c
