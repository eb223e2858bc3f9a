"""Reference: the classic PyTorch DCGAN train step (PyTorch's DCGAN tutorial), images/s.

G: ConvTranspose 100->512 (4x4) -> 256 -> 128 -> 64 -> 3 (64x64), BN + ReLU, tanh.
D: Conv 3->64 -> 128 -> 256 -> 512 -> 1, BN (not on the first) + LeakyReLU(0.2).
One step = one D update on a real and a fake batch (BCE) + one G update (non-saturating),
Adam(2e-4, betas (0.5, 0.999)). Run alone: python benchmarks/torch_dcgan.py
"""

from __future__ import annotations

import statistics
import time


def calls_per_second(step, steps: int, warmup: int = 2) -> float:
    """1 / median seconds per call of `step()` after `warmup` untimed calls. The median keeps
    a shared machine's hiccups out of the figure. `step` must block until its work is done
    (PyTorch runs eagerly; JAX callers block on the result)."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1.0 / statistics.median(times)


def measure(batch_size: int = 64, steps: int = 10, warmup: int = 2) -> float:
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    nz, ngf, ndf, nc = 100, 64, 64, 3
    G = nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
    )
    D = nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
    )
    loss = nn.BCEWithLogitsLoss()
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.rand(batch_size, nc, 64, 64) * 2 - 1
    ones, zeros = torch.ones(batch_size), torch.zeros(batch_size)

    def step():
        z = torch.randn(batch_size, nz, 1, 1)
        fake = G(z)
        opt_d.zero_grad()
        err_d = loss(D(real).view(-1), ones) + loss(D(fake.detach()).view(-1), zeros)
        err_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        err_g = loss(D(fake).view(-1), ones)
        err_g.backward()
        opt_g.step()

    return batch_size * calls_per_second(step, steps, warmup)


if __name__ == "__main__":
    import torch

    print(f"PyTorch {torch.__version__} DCGAN-64 train step, batch 64, "
          f"{torch.get_num_threads()} threads: {measure():.1f} images/s")
