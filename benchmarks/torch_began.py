"""Reference: `configs/began_mnist.py`'s BEGAN train step in PyTorch (the paper's ELU networks), images/s.

n = 16, N_z = N_h = 64, 28x28 digits in 3 scales (7 -> 14 -> 28). G (and D's decoder): Linear
to 7x7xn -> per scale two conv3x3 + ELU, 2x nearest up-sampling between scales -> conv3x3 to 1
(linear). D's encoder: conv3x3 + ELU -> per scale i two conv3x3 with n(i+1) channels + ELU and,
between scales, a 3x3 stride-2 conv + ELU -> Linear to N_h. One step = one pass of D over
[x, G(z)]: L_D = L(x) - k_t L(G(z)) and L_G = L(G(z)) + 0.6 f_PT (EBGAN's pull-away term on D's
embeddings of the fakes), each network's gradient from that one pass (a simultaneous update, as
carpedm20/BEGAN-tensorflow), Adam(5e-4, b1 0.5), then k_t's update: what `ganjax/gans/began.py`
runs. Run alone: python benchmarks/torch_began.py
"""

from __future__ import annotations

from torch_dcgan import calls_per_second


def measure(batch_size: int = 16, steps: int = 10, warmup: int = 2, n: int = 16) -> float:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.manual_seed(0)
    dim, scales, base = 64, 3, 7

    def decoder():
        layers = [nn.Linear(dim, base * base * n), nn.Unflatten(1, (n, base, base))]
        for i in range(scales):
            layers += [nn.Conv2d(n, n, 3, 1, 1), nn.ELU(), nn.Conv2d(n, n, 3, 1, 1), nn.ELU()]
            if i < scales - 1:
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        return nn.Sequential(*layers, nn.Conv2d(n, 1, 3, 1, 1))

    def encoder():
        layers, c_in = [nn.Conv2d(1, n, 3, 1, 1), nn.ELU()], n
        for i in range(scales):
            c = n * (i + 1)
            layers += [nn.Conv2d(c_in, c, 3, 1, 1), nn.ELU(), nn.Conv2d(c, c, 3, 1, 1), nn.ELU()]
            if i < scales - 1:
                layers += [nn.Conv2d(c, c, 3, 2, 1), nn.ELU()]
            c_in = c
        return nn.Sequential(*layers, nn.Flatten(), nn.Linear(base * base * c_in, dim))

    G, enc, dec = decoder(), encoder(), decoder()
    g_params, d_params = list(G.parameters()), list(enc.parameters()) + list(dec.parameters())
    opt_d = torch.optim.Adam(d_params, lr=5e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(g_params, lr=5e-4, betas=(0.5, 0.999))
    real = torch.rand(batch_size, 1, 28, 28) * 2 - 1
    state = {"k": 0.1}

    def pull_away(e):
        u = F.normalize(e, dim=1)
        cos2 = (u @ u.t()) ** 2
        return (cos2.sum() - cos2.diagonal().sum()) / (batch_size * (batch_size - 1))

    def step():
        fake = G(torch.rand(batch_size, dim) * 2 - 1)
        x = torch.cat([real, fake])
        h = enc(x)
        per_image = (x - dec(h)).abs().flatten(1).mean(1)
        l_real, l_fake = per_image[:batch_size].mean(), per_image[batch_size:].mean()
        d_loss = l_real - state["k"] * l_fake
        g_loss = l_fake + 0.6 * pull_away(h[batch_size:])
        d_grads = torch.autograd.grad(d_loss, d_params, retain_graph=True)
        g_grads = torch.autograd.grad(g_loss, g_params)
        for params, grads, opt in ((d_params, d_grads, opt_d), (g_params, g_grads, opt_g)):
            for p, g in zip(params, grads):
                p.grad = g
            opt.step()
        state["k"] = min(max(state["k"] + 0.01 * (1.5 * l_real.item() - l_fake.item()), 0.0), 1.0)

    return batch_size * calls_per_second(step, steps, warmup)


if __name__ == "__main__":
    import torch

    print(f"PyTorch {torch.__version__} BEGAN MNIST train step (n = 16), batch 16, "
          f"{torch.get_num_threads()} threads: {measure():.1f} images/s")
