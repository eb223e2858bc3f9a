"""Per-example image distances, chosen by name: what the predictor, latent recovery and editing
minimise between G's reconstruction and a target image (report 000, Sec. 7; docs/references.md).

    distance = distances.get("ms_ssim", config, workdir, image_shape=(28, 28, 1))
    d = distance(reconstructions, targets)            # [N], one value per image, >= 0

Names (images NHWC in [-1, 1]):

* `mse`: mean_pixels (a - b)^2;
* `l1`: mean_pixels |a - b|;
* `ssim`: 1 - SSIM (Gaussian window 11, sigma 1.5; a smaller window for images under 11 px);
* `ms_ssim`: 1 - MS-SSIM with as many scales as fit the image (`metrics.ssim.max_num_scales`:
  2 at 28 px, 3 at 48 and 64 px) and Wang et al.'s weights renormalised over them;
* `vgg`, `judge`: feature (perceptual) distances (see `FEATURE_DISTANCES`).

Every distance is per example so that callers can keep, per image, the best of several
restarts; a training loss is its mean.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from ganjax.metrics import ssim as ssim_lib

Distance = Callable[[jax.Array, jax.Array], jax.Array]

PIXEL_DISTANCES = ("mse", "l1", "ssim", "ms_ssim")
FEATURE_DISTANCES: tuple[str, ...] = ()


def names() -> tuple[str, ...]:
    return PIXEL_DISTANCES + FEATURE_DISTANCES


def _mean_per_example(x: jax.Array) -> jax.Array:
    return jnp.mean(x.reshape(x.shape[0], -1), axis=1)


def _ssim_window(image_shape) -> int:
    """The Gaussian window: 11 (Wang et al.), or the largest odd size that fits smaller images."""
    smallest = min(image_shape[:2])
    return 11 if smallest >= 11 else max(1, smallest - (1 - smallest % 2))


def pixel_distance(name: str, image_shape) -> Distance:
    """One of `PIXEL_DISTANCES` for images of `image_shape` (H, W, C)."""
    if name == "mse":
        return lambda a, b: _mean_per_example((a - b) ** 2)
    if name == "l1":
        return lambda a, b: _mean_per_example(jnp.abs(a - b))
    window = _ssim_window(image_shape)
    if name == "ssim":
        return lambda a, b: 1.0 - ssim_lib.ssim(a, b, 2.0, filter_size=window)
    if name == "ms_ssim":
        scales = max(1, ssim_lib.max_num_scales(image_shape[:2], window))
        factors = ssim_lib.ms_ssim_power_factors(scales)
        return lambda a, b: 1.0 - ssim_lib.ms_ssim(a, b, 2.0, power_factors=factors, filter_size=window)
    raise ValueError(f"unknown pixel distance {name!r}; choose one of {list(PIXEL_DISTANCES)}.")


def get(name: str, config=None, workdir: str | None = None, *, image_shape) -> Distance:
    """The distance `name` for images of `image_shape`; `config` (the run's) and `workdir` are
    read by the feature distances (weights file, the dataset a judge is trained on, its cache).

    Raises ValueError naming the choices for an unknown name.
    """
    if name in PIXEL_DISTANCES:
        return pixel_distance(name, tuple(image_shape))
    raise ValueError(f"unknown distance {name!r}; choose one of {list(names())}.")
