"""Images/s of one stride-1 convolution layer (forward + both gradients) in each exact form that
`ganjax.models.layers.conv_valid` can choose, beside XLA's own convolution and PyTorch's.

The shapes are the CycleGAN generator's and critic's (48x48 input, batch 8):

    python benchmarks/conv_forms.py [--steps 20]

Forms: "xla" (lax.conv_general_dilated and its autodiff), "gemm_grad" (XLA forward and input
gradient, kernel gradient as matrix products), "shift_add" (one matrix product + shifted sums:
narrow outputs), "winograd" (F(4x4 or 2x2, 3x3): 3x3 kernels). "conv_valid" is what the models
run (the dispatch).
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from ganjax.models import layers, winograd  # noqa: E402
from torch_dcgan import calls_per_second  # noqa: E402

# (name, batch, output side, c_in, c_out, kernel side)
LAYERS = [
    ("ResNet block 3x3, 12x12, 256->256", 8, 12, 256, 256, 3),
    ("generator output 7x7, 48x48, 64->1", 8, 48, 64, 1, 7),
    ("generator input 7x7, 48x48, 1->64", 8, 48, 1, 64, 7),
    ("PatchGAN 4x4, 5x5, 256->512", 8, 5, 256, 512, 4),
    ("PatchGAN score 4x4, 4x4, 512->1", 8, 4, 512, 1, 4),
]

FORMS = {
    "xla": layers._conv_valid,
    "gemm_grad": layers.conv_valid_gemm_grad,
    "shift_add": layers.conv_valid_shift_add,
    "winograd": winograd.conv3x3,
    "conv_valid": layers.conv_valid,
}


def applicable(form: str, x_shape, k_shape) -> bool:
    if form == "shift_add":
        return k_shape[-1] < layers.NARROW_OUTPUT_CHANNELS
    if form == "winograd":
        return winograd.supported(x_shape, k_shape)
    return True


def layer_rate(conv, x, k, dy, steps: int) -> float:
    """Images/s of forward + input and kernel gradients (jit; the output is returned too, so
    the forward pass is not optimised away)."""

    def fwd_bwd(x, k, dy):
        y, vjp = jax.vjp(conv, x, k)
        return y, vjp(dy)

    step = jax.jit(fwd_bwd)
    call = lambda: jax.block_until_ready(step(x, k, dy))
    return x.shape[0] * calls_per_second(call, steps)


def torch_rate(n, size, c_in, c_out, ks, steps: int) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    x = torch.randn(n, c_in, size + ks - 1, size + ks - 1, requires_grad=True)
    k = (torch.randn(c_out, c_in, ks, ks) * 0.02).requires_grad_()
    dy = torch.randn(n, c_out, size, size)
    call = lambda: torch.autograd.grad(torch.nn.functional.conv2d(x, k), (x, k), dy)
    return n * calls_per_second(call, steps)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({os.cpu_count()} cores); "
          "images/s of forward + both gradients")
    for name, n, size, c_in, c_out, ks in LAYERS:
        keys = jax.random.split(jax.random.PRNGKey(0), 3)
        x = jax.random.normal(keys[0], (n, size + ks - 1, size + ks - 1, c_in))
        k = 0.02 * jax.random.normal(keys[1], (ks, ks, c_in, c_out))
        dy = jax.random.normal(keys[2], (n, size, size, c_out))
        rates = {f: layer_rate(conv, x, k, dy, args.steps)
                 for f, conv in FORMS.items() if applicable(f, x.shape, k.shape)}
        ref = torch_rate(n, size, c_in, c_out, ks, args.steps)
        cells = "  ".join(f"{f} {r:8.0f}" for f, r in rates.items())
        torch_cell = f"  torch {ref:8.0f}" if ref else ""
        print(f"{name:36s} {cells}{torch_cell}")


if __name__ == "__main__":
    main()
