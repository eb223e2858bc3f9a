"""Sample-diversity and mode-collapse signals.

* `mean_pairwise_ms_ssim`: the MS-SSIM diversity score of Odena et al. (ACGAN, 2017) as
  compare_gan computes it (after Fedus, Rosca et al., "Many paths to equilibrium", 2018,
  Sec. 5.3): within each batch of B samples, the mean MS-SSIM over all B(B-1)/2 pairs
  i < j; then the mean over batches (compare_gan: 5 batches of 64). Higher = less diverse;
  a collapsed generator approaches 1.
* `successive_fid`: FID between the samples of successive checkpoints / epochs (report 003,
  Fig. 2): FID_t = FID(features_t, features_{t+1}).
* `class_coverage`: histogram of the classes a classifier predicts for the samples, the
  number of classes hit, and KL(p || uniform) = log K - H(p) (0 = perfectly balanced,
  log K = a single class); report 004's mode check.
* `confident_fraction`: the share of samples whose top softmax probability under a classifier
  reaches a threshold: how many read as one clear class (a class histogram also files every
  ambiguous sample under its argmax).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ganjax.metrics import fid as fid_lib
from ganjax.metrics import ssim as ssim_lib


def mean_pairwise_ms_ssim(images, batch_size: int = 64, num_batches: int | None = None,
                          max_val: float = 2.0, **ms_ssim_kwargs) -> float:
    """Mean MS-SSIM over the pairs within consecutive batches of `images` [N, H, W, C].

    Args:
        images: samples in [-1, 1] (``max_val=2``); shuffle them first if order matters.
        batch_size: B; the last partial batch is dropped.
        num_batches: use only the first batches (compare_gan: 5); default all full batches.
        max_val, **ms_ssim_kwargs: passed to `ganjax.metrics.ssim.ms_ssim` (e.g.
            ``power_factors=ms_ssim_power_factors(3)`` for 48x48 images).

    Returns:
        mean over batches of mean_{i<j} MS-SSIM(x_i, x_j).
    """
    images = np.asarray(images)
    available = images.shape[0] // batch_size
    if batch_size < 2 or available == 0:
        raise ValueError(f"mean_pairwise_ms_ssim: need at least one batch of >= 2 images, "
                         f"got {images.shape[0]} images and batch_size={batch_size}.")
    num_batches = available if num_batches is None else num_batches
    if not 1 <= num_batches <= available:
        raise ValueError(f"mean_pairwise_ms_ssim: num_batches={num_batches} but only "
                         f"{available} full batches of {batch_size} in {images.shape[0]} images.")
    first, second = np.triu_indices(batch_size, k=1)

    @jax.jit
    def batch_score(batch):
        return jnp.mean(ssim_lib.ms_ssim(batch[first], batch[second], max_val, **ms_ssim_kwargs))

    scores = [float(batch_score(images[i * batch_size:(i + 1) * batch_size]))
              for i in range(num_batches)]
    return float(np.mean(scores))


def successive_fid(feature_batches: Sequence[np.ndarray]) -> np.ndarray:
    """FID between consecutive feature sets: out[t] = FID(feature_batches[t], [t + 1]).

    A steady rise or fall is report 003's mode-collapse signal (samples drifting apart or
    converging); each set is the features of one checkpoint's samples.
    """
    if len(feature_batches) < 2:
        raise ValueError("successive_fid needs at least two feature sets.")
    return np.array([fid_lib.fid_from_features(a, b)
                     for a, b in zip(feature_batches[:-1], feature_batches[1:])])


@dataclasses.dataclass(frozen=True)
class ClassCoverage:
    counts: np.ndarray     # [K] samples predicted as each class
    num_covered: int       # classes predicted at least once
    kl_to_uniform: float   # KL(p || U_K) in nats, in [0, log K]

    @property
    def fractions(self) -> np.ndarray:
        return self.counts / self.counts.sum()


def class_coverage(predictions, num_classes: int) -> ClassCoverage:
    """Class histogram of generated samples under a classifier.

    Args:
        predictions: predicted labels [N] (ints), or logits / probabilities [N, K] (argmax).
        num_classes: K.

    Returns:
        `ClassCoverage` with counts, number of classes covered and
        KL(p || uniform) = sum_c p_c log(K p_c) = log K - H(p).
    """
    predictions = np.asarray(predictions)
    if predictions.ndim == 2:
        predictions = predictions.argmax(axis=-1)
    if predictions.ndim != 1 or predictions.size == 0:
        raise ValueError(f"class_coverage needs labels [N] or logits [N, K], got shape "
                         f"{predictions.shape}.")
    if predictions.min() < 0 or predictions.max() >= num_classes:
        raise ValueError(f"class_coverage: labels must be in [0, {num_classes}), got "
                         f"[{predictions.min()}, {predictions.max()}].")
    counts = np.bincount(predictions.astype(np.int64), minlength=num_classes)
    p = counts / counts.sum()
    nonzero = p > 0
    kl = float(np.sum(p[nonzero] * np.log(num_classes * p[nonzero])))
    return ClassCoverage(counts=counts, num_covered=int(nonzero.sum()), kl_to_uniform=kl)


def confident_fraction(logits, threshold: float = 0.9) -> float:
    """The share of rows of `logits` [N, K] whose top softmax probability is >= `threshold`.

    max_k softmax(l)_k = 1 / sum_j exp(l_j - max_k l_k), computed in float64 in that form (no
    overflow for any finite logits).
    """
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 2 or logits.shape[0] == 0 or logits.shape[1] < 2:
        raise ValueError(f"confident_fraction needs logits [N, K] with N >= 1 and K >= 2, got shape {logits.shape}.")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"confident_fraction: threshold must be in (0, 1), got {threshold}.")
    top = 1.0 / np.exp(logits - logits.max(axis=1, keepdims=True)).sum(axis=1)
    return float(np.mean(top >= threshold))
