"""Images/s of the CycleGAN train step (configs/cyclegan_fer.py: 48x48 gray, ResNet-6 generators,
70x70 PatchGANs, LSGAN, cycle + identity, pools of 50, batch 8), beside the PyTorch reference
step (benchmarks/torch_cyclegan.py). One image = one A image + one B image of the batch.

    python benchmarks/cyclegan_step.py [--steps 5] [--batch 8] [--sampling k4|k3] [--no-torch]
"""

from __future__ import annotations

import argparse
import os
import sys

import jax

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from ganjax import gans  # noqa: E402
from ganjax.data.core import DataInfo  # noqa: E402

sys.path.insert(0, HERE)
from train_step import load_config, steps_per_second  # noqa: E402


def images_per_second(config, steps: int, warmup: int = 2) -> float:
    info = DataInfo("synthetic", (48, 48, 1), 1, ("x",), 10_000)
    gan = gans.create(config, info)
    state = gan.init_state(jax.random.PRNGKey(0))
    b, n = config.data.batch_size, gan.n_micro
    key = jax.random.PRNGKey(1)
    batch = {
        "a": jax.random.uniform(key, (n, b, 48, 48, 1), minval=-1, maxval=1),
        "b": jax.random.uniform(jax.random.fold_in(key, 1), (n, b, 48, 48, 1), minval=-1, maxval=1),
    }
    return b * steps_per_second(gan, state, batch, steps, warmup)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--sampling", default="k4")
    parser.add_argument("--conv-impl", default="fast")
    parser.add_argument("--config", default="cyclegan_fer")
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({os.cpu_count()} cores)")
    config = load_config(args.config)
    config.data.batch_size = args.batch
    config.cyclegan.sampling = args.sampling
    config.model.conv_impl = args.conv_impl
    rate = images_per_second(config, args.steps)
    print(f"{args.config} ResNet-{config.cyclegan.g_blocks} 48x48 batch {args.batch} sampling={args.sampling} conv_impl={args.conv_impl}: {rate:6.2f} images/s")
    if not args.no_torch:
        try:
            sys.path.insert(0, HERE)
            import torch_cyclegan

            ref = torch_cyclegan.measure(batch_size=args.batch, steps=args.steps, sampling=args.sampling)
            print(f"PyTorch reference ResNet-6 48x48 batch {args.batch} sampling={args.sampling}: "
                  f"{ref:6.2f} images/s; ratio {rate / ref:.2f}")
        except ImportError:
            print("(PyTorch not installed: pip install torch==2.13.0 for the reference)")


if __name__ == "__main__":
    main()
