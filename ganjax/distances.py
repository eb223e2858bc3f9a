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
* `vgg`: sum_l w_l mean (phi_l(a) - phi_l(b))^2 over the elements of each chosen VGG-16 layer l
  (ReLU outputs; `ganjax/models/vgg.py`), ImageNet weights from `config.eval.vgg16_weights`,
  layers `eval.vgg16_layers` (default conv4_3, report 000's "first 23 layers"), weights w_l
  `eval.vgg16_layer_weights` (default 1), `eval.vgg16_resize`; plus `eval.vgg16_pixel_weight`
  times the pixel MSE (Johnson et al. 2016's feature reconstruction loss; report 000, Sec. 7.3);
* `judge`: mean (f(a) - f(b))^2 over the 128 penultimate features f of the run's judge (a CNN
  trained on the real training split, `ganjax/judges.py`; its label head, or its attribute head
  on data without classes, as the FID evaluator), for data where ImageNet features say little
  (digits, 48 px gray faces); trained for `eval.judge_distance_steps` and cached in
  `<workdir>/judges/` (the evaluators' judge when those match); plus
  `eval.judge_distance_pixel_weight` times the pixel MSE.

Every distance is per example so that callers can keep, per image, the best of several
restarts; a training loss is its mean. Each is a pure jax function (feature networks closed
over constant weights): it can be jitted, differentiated with respect to the images and run
inside `lax.scan`. A missing VGG weights file is a one-line ConfigError raised by `get`, before
any work.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from ganjax import losses
from ganjax.errors import ConfigError
from ganjax.metrics import ssim as ssim_lib

Distance = Callable[[jax.Array, jax.Array], jax.Array]

PIXEL_DISTANCES = ("mse", "l1", "ssim", "ms_ssim")
FEATURE_DISTANCES: tuple[str, ...] = ("vgg", "judge")


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

    Raises ValueError naming the choices for an unknown name; ConfigError (one line) for a
    missing VGG weights file or an `eval.vgg16_*` / image shape that cannot work, before
    loading anything. `judge` trains its judge here unless the workdir caches it.
    """
    image_shape = tuple(image_shape)
    if name in PIXEL_DISTANCES:
        return pixel_distance(name, image_shape)
    if name not in FEATURE_DISTANCES:
        raise ValueError(f"unknown distance {name!r}; choose one of {list(names())}.")
    if config is None:
        raise ValueError(f"distance {name!r} needs the run's config (its weights, data and judge keys).")
    if name == "vgg":
        return vgg_distance(config, image_shape)
    return judge_distance(config, workdir, image_shape)


# --------------------------------------------------------------------------------------------
# Feature distances.
# --------------------------------------------------------------------------------------------


def feature_distance(feature_fn: Callable, layer_weights: Sequence[float] | None = None,
                     pixel_weight: float = 0.0) -> Distance:
    """sum_l w_l mean_elements (phi_l(a) - phi_l(b))^2 [+ pixel_weight * mse(a, b)] -> [N].

    `feature_fn` maps a batch to one feature array [N, ...] or a list of them (one per layer),
    a pure function closed over frozen weights (`losses._per_example_feature_distance`).
    """
    def distance(a, b):
        d = losses._per_example_feature_distance(feature_fn(a), feature_fn(b), 2.0, layer_weights)
        if pixel_weight:
            d = d + pixel_weight * _mean_per_example((a - b) ** 2)
        return d

    return distance


def _floats(text: str, key: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"config.{key}={text!r} must be comma-separated numbers.") from None


def vgg_distance(config, image_shape) -> Distance:
    """The `vgg` distance for images of `image_shape` from the `eval.vgg16_*` keys."""
    from ganjax.models import vgg

    e = config.eval
    if not e.vgg16_weights or not os.path.isfile(e.vgg16_weights):
        vgg.load_variables(e.vgg16_weights)  # the one-line error naming the download
    layers = vgg.check_layers(v.strip() for v in e.vgg16_layers.split(",") if v.strip())
    weights = _floats(e.vgg16_layer_weights, "eval.vgg16_layer_weights") or None
    if weights is not None and len(weights) != len(layers):
        raise ConfigError(f"config.eval.vgg16_layer_weights has {len(weights)} weights for "
                          f"{len(layers)} layers {list(layers)}.")
    if e.vgg16_resize < 0:
        raise ConfigError(f"config.eval.vgg16_resize must be >= 0 (0 = keep), got {e.vgg16_resize}.")
    size, need = e.vgg16_resize or min(image_shape[:2]), 2 ** vgg.num_pools(layers)
    if size < need or image_shape[-1] not in (1, 3):
        raise ConfigError(
            f"distance 'vgg' needs gray or RGB images of at least {need} px for layers "
            f"{list(layers)}, got {image_shape}: set config.eval.vgg16_resize or choose "
            "earlier layers (config.eval.vgg16_layers).")
    fn = vgg.feature_fn(vgg.load_variables(e.vgg16_weights), layers, e.vgg16_resize)
    return feature_distance(fn, weights, e.vgg16_pixel_weight)


def judge_distance(config, workdir: str | None, image_shape) -> Distance:
    """The `judge` distance: the run's judge (trained on `config.data`, cached in
    `<workdir>/judges/`) and its penultimate features, for images of the data's shape."""
    from ganjax import judges
    from ganjax.data import pipeline
    from ganjax.evaluators import fid

    if workdir is None:
        raise ValueError("distance 'judge' needs the run's workdir (its judge is cached there).")
    info = pipeline.open_split(config.data, config.data.split).info
    if tuple(info.image_shape) != tuple(image_shape):
        raise ConfigError(f"distance 'judge' compares images of the data's shape {info.image_shape} "
                          f"(its judge is trained on config.data), got {image_shape}.")
    judge = judges.load_or_train(
        os.path.join(workdir, "judges"), config.data, fid.judge_target(info.num_classes),
        seed=config.seed, steps=config.eval.judge_distance_steps)
    model, variables = judge.model, jax.tree.map(jnp.asarray, judge.variables)

    def features(x):
        return model.apply(variables, x, return_features=True)

    return feature_distance(features, None, config.eval.judge_distance_pixel_weight)
