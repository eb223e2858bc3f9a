"""Reference: a PyTorch CycleGAN train step in the style of junyanz/pytorch-CycleGAN-and-pix2pix.

ResNet-6 generators (ngf 64, reflect padding, InstanceNorm2d, k3 stride-2 down / ConvTranspose2d
k3 s2 p1 op1 up, tanh), 70x70 PatchGAN discriminators (ndf 64, 3 layers), LSGAN (MSE), cycle L1
lambda 10, identity 0.5 * lambda, Adam(2e-4, 0.5). One step = G/F update (both directions,
cycle and identity) then D_A and D_B updates (the image pool is left out: it costs nothing).
48x48 gray images. Run alone: python benchmarks/torch_cyclegan.py
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_dcgan import calls_per_second  # noqa: E402


def measure(batch_size: int = 8, steps: int = 5, warmup: int = 2, size: int = 48, blocks: int = 6,
            sampling: str = "k3") -> float:
    """Images/s; sampling="k3" is the reference's 3x3 down/up-sampling, "k4" ganjax's default
    4x4 stride-2 form (Conv2d(4, 2, 1) / ConvTranspose2d(4, 2, 1))."""
    import itertools

    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    nc, ngf, ndf = 1, 64, 64

    class Block(nn.Module):
        def __init__(self, f):
            super().__init__()
            self.body = nn.Sequential(
                nn.ReflectionPad2d(1), nn.Conv2d(f, f, 3, bias=True), nn.InstanceNorm2d(f), nn.ReLU(True),
                nn.ReflectionPad2d(1), nn.Conv2d(f, f, 3, bias=True), nn.InstanceNorm2d(f),
            )

        def forward(self, x):
            return x + self.body(x)

    k = {"k3": 3, "k4": 4}[sampling]

    def generator():
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(nc, ngf, 7, bias=True), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
        for i in range(2):
            m = 2**i
            layers += [nn.Conv2d(ngf * m, ngf * m * 2, k, 2, 1, bias=True), nn.InstanceNorm2d(ngf * m * 2), nn.ReLU(True)]
        layers += [Block(ngf * 4) for _ in range(blocks)]
        for i in range(2):
            m = 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, k, 2, 1, output_padding=k % 2, bias=True),
                       nn.InstanceNorm2d(ngf * m // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, nc, 7), nn.Tanh()]
        return nn.Sequential(*layers)

    def discriminator():
        return nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1), nn.InstanceNorm2d(ndf * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1), nn.InstanceNorm2d(ndf * 4), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 1, 1), nn.InstanceNorm2d(ndf * 8), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 1),
        )

    G, F, DA, DB = generator(), generator(), discriminator(), discriminator()
    opt_g = torch.optim.Adam(itertools.chain(G.parameters(), F.parameters()), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(itertools.chain(DA.parameters(), DB.parameters()), 1e-4, betas=(0.5, 0.999))
    mse, l1 = nn.MSELoss(), nn.L1Loss()
    a = torch.rand(batch_size, nc, size, size) * 2 - 1
    b = torch.rand(batch_size, nc, size, size) * 2 - 1

    def step():
        fake_b, fake_a = G(a), F(b)
        rec_a, rec_b = F(fake_b), G(fake_a)
        for p in itertools.chain(DA.parameters(), DB.parameters()):
            p.requires_grad_(False)
        opt_g.zero_grad()
        pb, pa = DB(fake_b), DA(fake_a)
        loss_g = (mse(pb, torch.ones_like(pb)) + mse(pa, torch.ones_like(pa))
                  + 10 * (l1(rec_a, a) + l1(rec_b, b)) + 5 * (l1(G(b), b) + l1(F(a), a)))
        loss_g.backward()
        opt_g.step()
        for p in itertools.chain(DA.parameters(), DB.parameters()):
            p.requires_grad_(True)
        opt_d.zero_grad()
        for D, real, fake in ((DA, a, fake_a), (DB, b, fake_b)):
            pr, pf = D(real), D(fake.detach())
            ((mse(pr, torch.full_like(pr, 0.9)) + mse(pf, torch.zeros_like(pf))) * 0.5).backward()
        opt_d.step()

    return batch_size * calls_per_second(step, steps, warmup)


if __name__ == "__main__":
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"PyTorch CycleGAN ResNet-6 48x48 batch 8: {measure():.2f} images/s")
