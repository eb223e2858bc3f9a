"""SSIM and MS-SSIM in pure jax.numpy, matching `tf.image.ssim` / `tf.image.ssim_multiscale`.

SSIM (Wang, Bovik, Sheikh & Simoncelli, "Image quality assessment: from error visibility to
structural similarity", IEEE TIP 2004). With Gaussian-weighted local statistics (window
`filter_size`, std `filter_sigma`) mu_x, mu_y, sigma_x^2, sigma_y^2, sigma_xy and
C1 = (k1 L)^2, C2 = (k2 L)^2 for the dynamic range L = `max_val`:

    l(x, y)  = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)         (luminance)
    cs(x, y) = (2 sigma_xy + C2) / (sigma_x^2 + sigma_y^2 + C2)    (contrast-structure)
    SSIM     = mean over window positions of l * cs, then mean over channels.

MS-SSIM (Wang, Simoncelli & Bovik, "Multiscale structural similarity for image quality
assessment", Asilomar 2003). With M = len(power_factors) scales, each a 2x2 average pool of
the previous one (an odd size first gets one symmetric row/column, as in TF):

    MS-SSIM = relu(SSIM_M)^b_M * prod_{j<M} relu(cs_j)^b_j   per channel, then mean over channels,

where cs_j is the mean contrast-structure term at scale j.

Conventions shared with TF: biased local statistics (no 1 - sum(w^2) compensation), VALID
filtering, and every scale must be at least `filter_size` high and wide. ganjax images live
in [-1, 1], so callers pass ``max_val=2.0``.

Deliberate differences from TF (values are otherwise equal, see tests/test_metrics_ssim.py):
  * A too-small image raises a `ValueError` at trace time that names the size, the minimum and
    what to change; TF fails at run time with an opaque `InvalidArgumentError`.
  * A clipped (zero) MS-SSIM term gets a zero gradient instead of NaN, so MS-SSIM is safe as a
    training loss.
  * `a` and `b` must have the same shape (TF broadcasts leading dimensions).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

MS_SSIM_POWER_FACTORS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Scale weights of Wang et al. (2003), finest scale first (TF's defaults)."""


def ssim(a, b, max_val, filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03) -> jax.Array:
    """Structural similarity of two image batches, one value per image.

    Args:
        a, b: images [..., H, W, C] of the same shape (gray C=1 or RGB C=3). Integer images are
            cast to float32 (SSIM is invariant to scaling images and `max_val` together).
        max_val: dynamic range of the pixel values (2.0 for ganjax's [-1, 1] images).
        filter_size, filter_sigma: size and std of the Gaussian window.
        k1, k2: stabilising constants, C1 = (k1 max_val)^2, C2 = (k2 max_val)^2.

    Returns:
        SSIM per image, shape ``a.shape[:-3]`` (e.g. [N]), in (-1, 1].

    Raises:
        ValueError: different shapes, or H or W smaller than `filter_size`.
    """
    return _ssim(a, b, max_val, **_static(filter_size, filter_sigma, k1, k2))


def ms_ssim(a, b, max_val, power_factors=MS_SSIM_POWER_FACTORS, filter_size=11,
            filter_sigma=1.5, k1=0.01, k2=0.03) -> jax.Array:
    """Multi-scale structural similarity of two image batches, one value per image.

    Args:
        a, b: images [..., H, W, C] of the same shape; see `ssim`.
        max_val: dynamic range of the pixel values (2.0 for ganjax's [-1, 1] images).
        power_factors: one exponent per scale, finest first; its length is the number of
            scales. Five scales with an 11-pixel window need images of at least 161x161. For
            48x48 (FER) use ``ms_ssim_power_factors(3)``; for 28x28 (MNIST) 2 scales, or 3
            scales with ``filter_size=7``. `max_num_scales` tells how many scales fit.
        filter_size, filter_sigma, k1, k2: as in `ssim`, at every scale.

    Returns:
        MS-SSIM per image, shape ``a.shape[:-3]``, in [0, 1].

    Raises:
        ValueError: different shapes, empty `power_factors`, or an image smaller than
            `filter_size` at the coarsest scale.
    """
    try:
        power_factors = tuple(float(p) for p in power_factors)
    except TypeError as e:
        raise ValueError(f"ms_ssim: power_factors must be a sequence of Python numbers "
                         f"(static; one weight per scale), got {power_factors!r}.") from e
    if not power_factors:
        raise ValueError("ms_ssim: power_factors must be non-empty (one weight per scale).")
    return _ms_ssim(a, b, max_val, power_factors=power_factors,
                    **_static(filter_size, filter_sigma, k1, k2))


def max_num_scales(image_size: int | Sequence[int], filter_size: int = 11) -> int:
    """Most MS-SSIM scales whose coarsest image still fits the filter (0 if none does).

    Examples with an 11-pixel window: 28 px -> 2, 48 px -> 3, 64 px -> 3, 161 px -> 5.
    """
    smallest = min(_as_hw(image_size))
    scales = 0
    while math.ceil(smallest / 2**scales) >= filter_size:
        scales += 1
    return scales


def ms_ssim_power_factors(num_scales: int) -> tuple[float, ...]:
    """The first `num_scales` weights of Wang et al., renormalised to sum to 1.

    Renormalising keeps MS-SSIM a weighted geometric mean when small images force fewer
    scales. For 5 scales this returns TF's defaults unchanged.
    """
    if not 1 <= num_scales <= len(MS_SSIM_POWER_FACTORS):
        raise ValueError(f"num_scales must be in [1, {len(MS_SSIM_POWER_FACTORS)}], "
                         f"got {num_scales}.")
    if num_scales == len(MS_SSIM_POWER_FACTORS):
        return MS_SSIM_POWER_FACTORS
    head = MS_SSIM_POWER_FACTORS[:num_scales]
    return tuple(w / sum(head) for w in head)


# The public functions normalise the static arguments (hashable Python scalars) and call
# these jit-compiled implementations: one compilation per shape and setting, also when called
# eagerly (op-by-op dispatch of the multi-scale graph is ~5x slower on CPU).
_STATIC = ("filter_size", "filter_sigma", "k1", "k2")


def _static(filter_size, filter_sigma, k1, k2) -> dict:
    if int(filter_size) != filter_size or filter_size < 1:
        raise ValueError(f"filter_size must be a positive integer, got {filter_size!r}.")
    return dict(filter_size=int(filter_size), filter_sigma=float(filter_sigma), k1=float(k1),
                k2=float(k2))


@functools.partial(jax.jit, static_argnames=_STATIC)
def _ssim(a, b, max_val, *, filter_size, filter_sigma, k1, k2):
    x, y, lead = _prepare(a, b)
    _check_min_size(x.shape[1:3], filter_size, 1, "ssim")
    kernel = _gaussian_kernel(filter_size, filter_sigma, x.dtype)
    ssim_c, _ = _ssim_per_channel(x, y, max_val, kernel, k1, k2)
    return jnp.mean(ssim_c, axis=-1).reshape(lead)


@functools.partial(jax.jit, static_argnames=_STATIC + ("power_factors",))
def _ms_ssim(a, b, max_val, *, power_factors, filter_size, filter_sigma, k1, k2):
    num_scales = len(power_factors)
    x, y, lead = _prepare(a, b)
    _check_min_size(x.shape[1:3], filter_size, num_scales, "ms_ssim")
    kernel = _gaussian_kernel(filter_size, filter_sigma, x.dtype)
    terms = []
    for scale in range(num_scales):
        if scale > 0:
            x, y = _downsample(x), _downsample(y)
        ssim_c, cs_c = _ssim_per_channel(x, y, max_val, kernel, k1, k2)
        # Contrast-structure at the finer scales; full SSIM (with luminance) at the coarsest.
        terms.append(ssim_c if scale == num_scales - 1 else cs_c)
    terms = jax.nn.relu(jnp.stack(terms, axis=-1))  # [B, C, scales]
    weights = jnp.asarray(power_factors, terms.dtype)
    per_channel = jnp.prod(_safe_pow(terms, weights), axis=-1)
    return jnp.mean(per_channel, axis=-1).reshape(lead)


def _as_hw(image_size) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = image_size
    return int(h), int(w)


def _check_min_size(hw, filter_size, num_scales: int, name: str) -> None:
    """Raises a ValueError saying what to change if the coarsest scale is below the filter."""
    h, w = hw
    factor = 2**(num_scales - 1)
    coarse_h, coarse_w = math.ceil(h / factor), math.ceil(w / factor)
    if min(coarse_h, coarse_w) >= filter_size:
        return
    minimum = (filter_size - 1) * factor + 1
    if num_scales == 1:
        raise ValueError(f"{name}: images of {h}x{w} are smaller than filter_size={filter_size} "
                         f"(need at least {minimum}x{minimum}); pass filter_size <= {min(h, w)}.")
    fits = max_num_scales((h, w), filter_size)
    fixes = [f"use {fits} scale(s), e.g. power_factors=ms_ssim_power_factors({fits})"] if fits \
        else []
    fixes.append(f"pass filter_size <= {min(coarse_h, coarse_w)} to keep {num_scales} scales")
    raise ValueError(
        f"{name}: images of {h}x{w} shrink to {coarse_h}x{coarse_w} at the coarsest of "
        f"{num_scales} scales, smaller than filter_size={filter_size}; {num_scales} scales with "
        f"filter_size={filter_size} need images of at least {minimum}x{minimum}. Either "
        + " or ".join(fixes) + ".")


def _prepare(a, b):
    """Returns x, y [B, H, W, C] in a float dtype (at least float32) and the leading shape."""
    a, b = jnp.asarray(a), jnp.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"SSIM needs two images of the same shape, got {a.shape} and {b.shape}.")
    if a.ndim < 3:
        raise ValueError(f"SSIM needs images [..., H, W, C], got shape {a.shape}.")
    dtype = jnp.result_type(a, b)
    if jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.promote_types(dtype, jnp.float32)
    else:
        dtype = jnp.float32
    lead = a.shape[:-3]
    x = a.astype(dtype).reshape((-1,) + a.shape[-3:])
    y = b.astype(dtype).reshape((-1,) + b.shape[-3:])
    return x, y, lead


def _gaussian_kernel(size: int, sigma, dtype) -> jax.Array:
    """Normalised 1-D Gaussian; its outer product is TF's 2-D `_fspecial_gauss` window."""
    coords = jnp.arange(size, dtype=dtype) - (size - 1) / 2.0
    g = jnp.exp(-0.5 * jnp.square(coords) / jnp.square(jnp.asarray(sigma, dtype)))
    return g / jnp.sum(g)


def _filter(maps: jax.Array, kernel: jax.Array) -> jax.Array:
    """Separable Gaussian filter (VALID) of every channel of maps [B, H, W, C]."""
    b, h, w, c = maps.shape
    x = jnp.moveaxis(maps, -1, 1).reshape(b * c, h, w, 1)
    k = kernel.shape[0]
    for rhs in (kernel.reshape(k, 1, 1, 1), kernel.reshape(1, k, 1, 1)):
        x = jax.lax.conv_general_dilated(
            x, rhs, window_strides=(1, 1), padding="VALID",
            dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=jax.lax.Precision.HIGHEST)
    return jnp.moveaxis(x.reshape(b, c, x.shape[1], x.shape[2]), 1, -1)


def _ssim_per_channel(x, y, max_val, kernel, k1, k2):
    """Returns (mean SSIM, mean cs), each [B, C], averaged over window positions."""
    c = x.shape[-1]
    stats = _filter(jnp.concatenate([x, y, x * x, y * y, x * y], axis=-1), kernel)
    mu_x, mu_y, e_xx, e_yy, e_xy = (stats[..., i * c:(i + 1) * c] for i in range(5))
    c1 = (k1 * max_val)**2
    c2 = (k2 * max_val)**2
    num0 = 2.0 * mu_x * mu_y
    den0 = jnp.square(mu_x) + jnp.square(mu_y)
    luminance = (num0 + c1) / (den0 + c1)
    # 2 sigma_xy = 2 E[xy] - 2 mu_x mu_y;  sigma_x^2 + sigma_y^2 = E[x^2] + E[y^2] - den0.
    cs = (2.0 * e_xy - num0 + c2) / (e_xx + e_yy - den0 + c2)
    return jnp.mean(luminance * cs, axis=(1, 2)), jnp.mean(cs, axis=(1, 2))


def _downsample(x: jax.Array) -> jax.Array:
    """2x2 average pool; an odd H or W first gets one symmetric row/column (TF's rule)."""
    _, h, w, _ = x.shape
    if h % 2 or w % 2:
        x = jnp.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="symmetric")
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _safe_pow(x: jax.Array, p: jax.Array) -> jax.Array:
    """x ** p for x >= 0, with a zero (not NaN) gradient where x == 0."""
    positive = x > 0
    return jnp.where(positive, jnp.where(positive, x, 1.0)**p, jnp.zeros_like(x)**p)
