"""Reference: an InfoGAN train step on MNIST in PyTorch (openai/InfoGAN's networks), images/s.

G: FC 74->1024 (BN, ReLU) -> FC 7x7x128 (BN, ReLU) -> ConvTranspose 128->64 4x4 s2 (BN, ReLU)
-> ConvTranspose 64->1 4x4 s2, tanh. D: Conv 1->64 4x4 s2 (LeakyReLU 0.2) -> Conv 64->128
(BN, LeakyReLU) -> FC 1024 (BN, LeakyReLU) -> score; Q: FC 1024->128 (BN, LeakyReLU) -> 12
(10 code logits + 2 continuous means). Latent: 62 U(-1, 1) noise, a 10-way code, 2 U(-1, 1)
codes. One step = one D+Q update on a real and a fake batch (BCE + information loss on the
fakes) + one G update (non-saturating + information loss), Adam b1 0.5, G 1e-3, D 2e-4: what
`configs/infogan_mnist.py` runs. Run alone: python benchmarks/torch_infogan.py
"""

from __future__ import annotations

from torch_dcgan import calls_per_second


def measure(batch_size: int = 128, steps: int = 10, warmup: int = 2) -> float:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.manual_seed(0)
    G = nn.Sequential(
        nn.Linear(74, 1024, bias=False), nn.BatchNorm1d(1024), nn.ReLU(),
        nn.Linear(1024, 7 * 7 * 128, bias=False), nn.BatchNorm1d(7 * 7 * 128), nn.ReLU(),
        nn.Unflatten(1, (128, 7, 7)),
        nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh(),
    )
    trunk = nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(7 * 7 * 128, 1024, bias=False), nn.BatchNorm1d(1024), nn.LeakyReLU(0.2),
    )
    d_head = nn.Linear(1024, 1)
    q_head = nn.Sequential(nn.Linear(1024, 128, bias=False), nn.BatchNorm1d(128), nn.LeakyReLU(0.2),
                           nn.Linear(128, 12))
    d_params = list(trunk.parameters()) + list(d_head.parameters()) + list(q_head.parameters())
    opt_d = torch.optim.Adam(d_params, lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    real = torch.rand(batch_size, 1, 28, 28) * 2 - 1
    ones, zeros = torch.ones(batch_size), torch.zeros(batch_size)

    def info_loss(q, cat, cont):
        return F.cross_entropy(q[:, :10], cat) + 0.5 * ((q[:, 10:] - cont) ** 2).sum(1).mean()

    def step():
        z = torch.rand(batch_size, 62) * 2 - 1
        cat = torch.randint(0, 10, (batch_size,))
        cont = torch.rand(batch_size, 2) * 2 - 1
        fake = G(torch.cat([z, F.one_hot(cat, 10).float(), cont], 1))
        opt_d.zero_grad()
        h_real, h_fake = trunk(real), trunk(fake.detach())
        err_d = (F.binary_cross_entropy_with_logits(d_head(h_real).view(-1), ones)
                 + F.binary_cross_entropy_with_logits(d_head(h_fake).view(-1), zeros)
                 + info_loss(q_head(h_fake), cat, cont))
        err_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        h = trunk(fake)
        err_g = F.binary_cross_entropy_with_logits(d_head(h).view(-1), ones) + info_loss(q_head(h), cat, cont)
        err_g.backward()
        opt_g.step()

    return batch_size * calls_per_second(step, steps, warmup)


if __name__ == "__main__":
    import torch

    print(f"PyTorch {torch.__version__} InfoGAN MNIST train step, batch 128, "
          f"{torch.get_num_threads()} threads: {measure():.1f} images/s")
