"""DiffAugment (Zhao et al. 2020, docs/references.md): differentiable augmentation of every image
D sees, real and generated, so that D cannot memorise a small training set.

With a few hundred real images D learns them by heart within a few hundred steps, its loss goes
to zero, and G gets no useful gradient (on 50 digits the quick start's ACGAN drew noise after
2,000 steps). Augmenting only the real images would teach G the augmentations; DiffAugment
applies the same random family of transformations to real and fake images, in D's updates and
in G's, and keeps them differentiable so G's gradient flows through them.

    x_aug = diff_augment(x, key, ("translation", "cutout"))

Policies (images [N, H, W, C] in [-1, 1]; each image draws its own parameters):

* `translation`: shift by up to 1/8 of the size in each direction, zeros where the image moved
  away (the reference implementation's padding);
* `cutout`: a square of half the size at a random place set to 0;
* `color`: brightness + U(-0.5, 0.5); saturation: (x - mean over channels) * U(0, 2) + that
  mean; contrast: (x - image mean) * U(0.5, 1.5) + that mean.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

POLICIES = ("color", "translation", "cutout")  # the order they are applied in


def parse_policy(spec: str) -> tuple[str, ...]:
    """"translation,cutout" -> ("translation", "cutout"); ValueError naming the choices."""
    names = tuple(p.strip() for p in spec.split(",") if p.strip())
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(f"config.gan.diff_augment={spec!r}: unknown policy {unknown[0]!r}; "
                         f"choose from {', '.join(POLICIES)} (comma-separated).")
    return names


def translation(x: jax.Array, key: jax.Array, ratio: float = 0.125) -> jax.Array:
    """Each image shifted by integers in [-r, r] (r = round(ratio * size)) per axis, zero-filled."""
    n, h, w, c = x.shape
    rh, rw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ky, kx = jax.random.split(key)
    dy = jax.random.randint(ky, (n,), -rh, rh + 1)
    dx = jax.random.randint(kx, (n,), -rw, rw + 1)
    padded = jnp.pad(x, ((0, 0), (rh, rh), (rw, rw), (0, 0)))
    crop = lambda image, y0, x0: jax.lax.dynamic_slice(image, (y0, x0, 0), (h, w, c))  # noqa: E731
    return jax.vmap(crop)(padded, rh - dy, rw - dx)


def cutout(x: jax.Array, key: jax.Array, ratio: float = 0.5) -> jax.Array:
    """A square of round(ratio * size) at a random centre per image set to 0 (it may be cut by
    the border)."""
    n, h, w, _ = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ky, kx = jax.random.split(key)
    cy = jax.random.randint(ky, (n, 1, 1), 0, h + (1 - sh % 2))
    cx = jax.random.randint(kx, (n, 1, 1), 0, w + (1 - sw % 2))
    rows = jnp.arange(h)[None, :, None]
    cols = jnp.arange(w)[None, None, :]
    # The reference's square: rows [cy - sh // 2, cy - sh // 2 + sh), clipped to the image.
    top, left = cy - sh // 2, cx - sw // 2
    inside = (rows >= top) & (rows < top + sh) & (cols >= left) & (cols < left + sw)
    return x * (1.0 - inside[..., None].astype(x.dtype))


def color(x: jax.Array, key: jax.Array) -> jax.Array:
    """Random brightness, saturation and contrast per image (see the module docstring)."""
    n = x.shape[0]
    kb, ks, kc = jax.random.split(key, 3)
    x = x + (jax.random.uniform(kb, (n, 1, 1, 1)) - 0.5)
    mean = x.mean(axis=3, keepdims=True)
    x = (x - mean) * (jax.random.uniform(ks, (n, 1, 1, 1)) * 2.0) + mean
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return (x - mean) * (jax.random.uniform(kc, (n, 1, 1, 1)) + 0.5) + mean


_FUNCTIONS = {"translation": translation, "cutout": cutout, "color": color}


def diff_augment(x: jax.Array, key: jax.Array, policy: Sequence[str]) -> jax.Array:
    """`x` through each policy in order (color, then translation, then cutout, as the reference
    applies them when all are named); the identity for an empty policy."""
    for i, name in enumerate(p for p in POLICIES if p in policy):
        x = _FUNCTIONS[name](x, jax.random.fold_in(key, i))
    return x
