"""Input-pipeline throughput (images/s delivered as global arrays on the mesh).

    python benchmarks/input_pipeline.py [--fer_rows=3000] [--celeba_images=1500] [--batches=60]

Measures the same `build_train_data` / `build_two_domain_data` that training uses, on data of
the real formats written to a temporary directory (no download):

* FER2013 48x48x1: a synthetic `fer2013.csv` in the exact Kaggle format (`--fer_rows` rows),
  prepared by ganjax's tfds builder; plain, with augmentation + class balancing (report 001's
  setting), and as CycleGAN two-domain batches (Neutral -> Happy);
* CelebA 64x64x3: a synthetic `celeb_a` tfds dataset with the real features (218x178 JPEGs,
  40 attributes), centre crop 178 + resize 64 as configs/dcgan_celeba64.py; streamed (every
  image decoded and resized each time, `cache=False` as in that config) and cached.

Compare with the images/s a train step consumes (batch size x steps/s of the train-step
benchmark) on the same machine: the pipeline should deliver at least 5x that.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from ganjax import config as config_lib  # noqa: E402
from ganjax import sharding  # noqa: E402
from ganjax.data import fer2013, pipeline  # noqa: E402

tf.config.set_visible_devices([], "GPU")


def smooth_faces(rng, n, h, w, c) -> np.ndarray:
    """Low-frequency random images (JPEG/PNG sizes like real photos, unlike white noise)."""
    small = rng.integers(0, 256, (n, 6, 5, c)).astype(np.float32)
    big = tf.image.resize(small, (h, w), method="bicubic").numpy()
    big += rng.normal(0, 6, big.shape)
    return np.clip(big, 0, 255).astype(np.uint8)


def write_fer(root: str, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "manual"), exist_ok=True)
    # FER2013's class proportions (Angry 4953, Disgust 547, ..., Neutral 6198).
    p = np.array([4953, 547, 5121, 8989, 6077, 4002, 6198], np.float64)
    labels = rng.choice(7, rows, p=p / p.sum())
    usages = rng.choice(["Training", "PublicTest", "PrivateTest"], rows, p=[0.8, 0.1, 0.1])
    fer2013.write_csv(os.path.join(root, "manual", "fer2013.csv"), smooth_faces(rng, rows, 48, 48, 1), labels, usages)


def write_celeb_a(data_dir: str, n: int, seed: int = 0) -> None:
    """A `celeb_a` tfds dataset of the real format (features, JPEG 218x178) with n faces."""
    from tensorflow_datasets.datasets.celeb_a import celeb_a_dataset_builder as real

    rng = np.random.default_rng(seed)
    images = smooth_faces(rng, n, 218, 178, 3)

    class SyntheticCelebA(real.Builder, skip_registration=True):
        name = "celeb_a"

        @classmethod
        def _get_pkg_dir_path(cls):  # metadata (citation, tags) of the real builder
            return real.Builder._get_pkg_dir_path()

        def _split_generators(self, dl_manager):
            del dl_manager
            return {"train": self._examples(range(n - 40)), "validation": self._examples(range(n - 40, n - 20)),
                    "test": self._examples(range(n - 20, n))}

        def _examples(self, indices):
            for i in indices:
                yield i, {
                    "image": images[i],
                    "landmarks": {k: 0 for k in real.LANDMARK_HEADINGS},
                    "attributes": {k: bool(rng.integers(2)) for k in real.ATTR_HEADINGS},
                    "identity": {"Identity_No": i},
                }

    SyntheticCelebA(data_dir=data_dir).download_and_prepare()


def measure(make_iterator, images_per_batch: int, batches: int, warmup: int) -> float:
    iterator = make_iterator()
    for _ in range(warmup):
        jax.block_until_ready(next(iterator))
    start = time.perf_counter()
    for _ in range(batches):
        jax.block_until_ready(next(iterator))
    return batches * images_per_batch / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fer_rows", type=int, default=3000)
    parser.add_argument("--celeba_images", type=int, default=1500)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--workdir", default="")
    args = parser.parse_args()

    root = args.workdir or tempfile.mkdtemp(prefix="ganjax_input_bench_")
    tfds.disable_progress_bar()
    t = time.perf_counter()
    write_fer(root, args.fer_rows)
    write_celeb_a(os.path.join(root, "tfds"), args.celeba_images)
    print(f"wrote synthetic data to {root} in {time.perf_counter() - t:.1f}s")
    mesh = sharding.make_mesh()
    b = args.batch_size
    # Warm-up covers more than one epoch where the data are cached, so the timing is the
    # steady state (the first epoch decodes once; `ds.cache()` serves the rest).
    fer_warm = args.fer_rows // b + 2
    celeb_warm = args.celeba_images // b + 2

    def config(**data):
        c = config_lib.base_config()
        c.data.data_dir = os.path.join(root, "tfds")
        c.data.manual_dir = os.path.join(root, "manual")
        c.data.batch_size = b
        for k, v in data.items():
            c.data[k] = v
        config_lib.validate(c)
        return c

    cases = [
        ("FER2013 48x48x1, cached", config(name="fer2013"), "train", fer_warm),
        ("FER2013 48x48x1, flip+jitter4+rot10+balance", config(
            name="fer2013", flip=True, jitter=4, rotate=10.0, balance=True), "train", fer_warm),
        ("FER2013 48x48x1, two-domain Neutral/Happy + flip+jitter4", config(
            name="fer2013", domain_a="Neutral", domain_b="Happy", flip=True, jitter=4), "two", fer_warm),
        ("CelebA 64x64x3 crop178, streamed (cache=False)", config(
            name="celeb_a", center_crop=178, image_size=64, cache=False), "train", 3),
        ("CelebA 64x64x3 crop178, cached", config(
            name="celeb_a", center_crop=178, image_size=64), "train", celeb_warm),
    ]
    print(f"jax devices: {jax.device_count()} x {jax.devices()[0].platform}; CPU cores: {os.cpu_count()}; "
          f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"global batch {b}, {args.batches} timed batches after warm-up")
    print(f"{'pipeline':<62} {'images/s':>10}")
    for name, c, kind, warm in cases:
        if kind == "two":
            make = lambda c=c: pipeline.build_two_domain_data(c, mesh)[2]  # noqa: E731
            per_batch = 2 * b  # a and b images
        else:
            make = lambda c=c: pipeline.build_train_data(c, mesh)[1]  # noqa: E731
            per_batch = b
        rate = measure(make, per_batch, args.batches, warm)
        print(f"{name:<62} {rate:>10.0f}", flush=True)
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
