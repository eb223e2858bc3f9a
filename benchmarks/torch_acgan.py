"""Reference: `configs/acgan_mnist.py`'s ACGAN train step in PyTorch (report 002's ResNet networks), images/s.

G: concat(z 100, one-hot label 10) -> Linear 7*7*64 (no bias) -> BN -> per stage: 2x nearest
up-sampling, two residual blocks (conv3x3, BN, LeakyReLU 0.2, conv3x3, BN, + skip (1x1 conv
when the channels change), LeakyReLU 0.2) with 64 then 32 channels -> conv3x3 to 1, tanh.
D: residual down-blocks 16, 32, 64, 128 (conv3x3, LeakyReLU, conv3x3, 2x2 average pool; skip
pooled then 1x1 conv; sum, LeakyReLU, dropout 0.25) -> 2x2x128 -> score and a 10-way class head.
One step = one D update on a real and a fake batch (BCE + the class cross-entropy on both) + one
G update on the same fakes (non-saturating BCE + the class cross-entropy), Adam(2e-4, b1 0.5):
the networks and step of `ganjax/models/resnet.py` and `ganjax/gans/acgan.py`.
Run alone: python benchmarks/torch_acgan.py
"""

from __future__ import annotations

from torch_dcgan import calls_per_second


def measure(batch_size: int = 64, steps: int = 10, warmup: int = 2) -> float:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.manual_seed(0)
    lrelu = lambda x: F.leaky_relu(x, 0.2)  # noqa: E731

    class ResBlock(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
            self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
            self.skip = nn.Conv2d(cin, cout, 1, bias=False) if cin != cout else nn.Identity()

        def forward(self, x):
            h = self.bn2(self.conv2(lrelu(self.bn1(self.conv1(x)))))
            return lrelu(h + self.skip(x))

    class DownBlock(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1), nn.Conv2d(cout, cout, 3, 1, 1)
            self.skip = nn.Conv2d(cin, cout, 1, bias=False) if cin != cout else nn.Identity()

        def forward(self, x):
            pool = lambda y: F.avg_pool2d(y, 2, ceil_mode=True)  # noqa: E731  (7 -> 4 as ganjax's)
            h = pool(self.conv2(lrelu(self.conv1(x))))
            return F.dropout(lrelu(h + self.skip(pool(x))), 0.25, self.training)

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense, self.bn = nn.Linear(110, 7 * 7 * 64, bias=False), nn.BatchNorm2d(64)
            self.stages = nn.ModuleList([nn.Sequential(ResBlock(64, 64), ResBlock(64, 64)),
                                         nn.Sequential(ResBlock(64, 32), ResBlock(32, 32))])
            self.to_image = nn.Conv2d(32, 1, 3, 1, 1)

        def forward(self, z, y):
            h = self.bn(self.dense(torch.cat([z, F.one_hot(y, 10).float()], 1)).view(-1, 64, 7, 7))
            for stage in self.stages:
                h = stage(F.interpolate(h, scale_factor=2, mode="nearest"))
            return torch.tanh(self.to_image(h))

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            widths = (1, 16, 32, 64, 128)
            self.blocks = nn.Sequential(*[DownBlock(a, b) for a, b in zip(widths, widths[1:])])
            self.score, self.aux = nn.Linear(2 * 2 * 128, 1), nn.Linear(2 * 2 * 128, 10)

        def forward(self, x):
            h = self.blocks(x).flatten(1)
            return self.score(h).view(-1), self.aux(h)

    G, D = Generator(), Discriminator()
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.rand(batch_size, 1, 28, 28) * 2 - 1
    labels = torch.randint(0, 10, (batch_size,))
    ones, zeros = torch.ones(batch_size), torch.zeros(batch_size)
    bce = F.binary_cross_entropy_with_logits

    def step():
        z = torch.rand(batch_size, 100) * 2 - 1
        gen_labels = labels[torch.randperm(batch_size)]
        fake = G(z, gen_labels)
        opt_d.zero_grad()
        (score_r, aux_r), (score_f, aux_f) = D(real), D(fake.detach())
        err_d = (bce(score_r, ones) + bce(score_f, zeros)
                 + F.cross_entropy(aux_r, labels) + F.cross_entropy(aux_f, gen_labels))
        err_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        score, aux = D(fake)
        err_g = bce(score, ones) + F.cross_entropy(aux, gen_labels)
        err_g.backward()
        opt_g.step()

    return batch_size * calls_per_second(step, steps, warmup)


if __name__ == "__main__":
    import torch

    print(f"PyTorch {torch.__version__} ACGAN MNIST train step (ResNet G and D), batch 64, "
          f"{torch.get_num_threads()} threads: {measure():.1f} images/s")
