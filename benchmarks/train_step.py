"""Images/s of the jit-compiled train step, per config, on synthetic batches.

    python benchmarks/train_step.py                 # DCGAN-64 (+ PyTorch reference) and MNIST configs
    python benchmarks/train_step.py --only dcgan64 --steps 20
    python benchmarks/train_step.py --only controllable   # ACGAN / WACGAN / InfoGAN / BEGAN steps

DCGAN-64 is the classic Radford architecture (batch 64, 64x64 RGB, ngf = ndf = 64), measured in
both conv formulations ("fast": stride-1 phase / space-to-depth forms; "native": lhs-dilated
and strided convolutions; the same function, see tests/test_layers.py) and side by side with
the PyTorch tutorial's step (benchmarks/torch_dcgan.py) when torch is installed.
One step = d_steps D updates + g_steps G updates; images/s counts the real images consumed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

import jax

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from ganjax import gans  # noqa: E402
from ganjax.config import base_config  # noqa: E402
from ganjax.data.pipeline import DataInfo  # noqa: E402

sys.path.insert(0, HERE)
from torch_dcgan import calls_per_second  # noqa: E402  (imports torch lazily)

MNIST = DataInfo("mnist_offline", (28, 28, 1), 10, tuple(map(str, range(10))), 4500)
CELEBA64 = DataInfo("celeb_a", (64, 64, 3), 0, (), 162_770, attribute_names=tuple(f"a{i}" for i in range(40)))
# The controllable generators: (config, data it is built for).
CONTROLLABLE = (("acgan_mnist", MNIST), ("infogan_mnist", MNIST), ("began_mnist", MNIST),
                ("acgan_celeba64", CELEBA64), ("wacgan_celeba64", CELEBA64))
# The PyTorch steps with the same networks and update (benchmarks/torch_<name>.py).
REFERENCES = {"acgan_mnist": "torch_acgan", "infogan_mnist": "torch_infogan", "began_mnist": "torch_began"}


def load_config(name: str):
    return importlib.import_module(f"configs.{name}").get_config()


def dcgan64(conv_impl: str):
    c = base_config()
    c.model.conv_impl = conv_impl
    c.data.batch_size = 64
    return c, DataInfo("synthetic", (64, 64, 3), 0, (), 10_000)


def steps_per_second(gan, state, batch, steps: int, warmup: int = 2) -> float:
    """Train steps per second of `gan.train_step` (jit, state donated): 1 / median step time
    after `warmup` steps (`torch_dcgan.calls_per_second`, the same rule as the references)."""
    step = jax.jit(gan.train_step, donate_argnums=0)
    holder = {"state": state}

    def call():
        holder["state"], metrics = step(holder["state"], batch)
        jax.block_until_ready(metrics)

    return calls_per_second(call, steps, warmup)


def images_per_second(config, info, steps: int, warmup: int = 2) -> float:
    gan = gans.create(config, info)
    state = gan.init_state(jax.random.PRNGKey(0))
    b = config.data.batch_size
    batch = gan.example_batch(jax.random.PRNGKey(1), b)  # uniform images, labels / attributes
    return b * gan.n_micro * steps_per_second(gan, state, batch, steps, warmup)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--only", choices=["dcgan64", "mnist", "controllable"], default=None)
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({os.cpu_count()} cores)")
    if args.only in (None, "dcgan64"):
        fast = images_per_second(*dcgan64("fast"), args.steps)
        native = images_per_second(*dcgan64("native"), max(args.steps // 3, 2))
        print(f"dcgan64  batch 64  conv_impl=fast    {fast:8.1f} images/s")
        print(f"dcgan64  batch 64  conv_impl=native  {native:8.1f} images/s")
        try:
            sys.path.insert(0, HERE)
            import torch_dcgan

            ref = torch_dcgan.measure(steps=args.steps)
            print(f"dcgan64  batch 64  PyTorch reference {ref:8.1f} images/s")
            print(f"ratio fast / PyTorch = {fast / ref:.2f}; native / PyTorch = {native / ref:.2f}")
        except ImportError:
            print("(PyTorch not installed: pip install torch==2.13.0 for the reference)")
    if args.only in (None, "mnist"):
        for name in ("cgan_mnist", "dcgan_mnist", "wgangp_mnist"):
            config = load_config(name)
            rate = images_per_second(config, MNIST, args.steps)
            print(f"{name:12s} batch {config.data.batch_size}  {rate:8.1f} images/s")
    if args.only in (None, "controllable"):
        for name, info in CONTROLLABLE:
            config = load_config(name)
            if name == "infogan_mnist":  # the step the PyTorch reference runs: no DiffAugment
                config.gan.diff_augment = ""
            rate = images_per_second(config, info, args.steps)
            print(f"{name:16s} batch {config.data.batch_size} {info.image_shape}  {rate:8.1f} images/s")
            if name in REFERENCES:
                try:
                    ref = importlib.import_module(REFERENCES[name]).measure(
                        batch_size=config.data.batch_size, steps=args.steps)
                    print(f"{'':16s} PyTorch reference (same networks)  {ref:8.1f} images/s; ratio {rate / ref:.2f}")
                except ImportError:
                    print("(PyTorch not installed: pip install torch==2.13.0 for the reference)")


if __name__ == "__main__":
    main()
