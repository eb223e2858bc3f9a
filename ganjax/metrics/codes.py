"""InfoGAN categorical-code accuracy (Chen et al., "InfoGAN", NeurIPS 2016; report 000).

An unsupervised categorical code has no fixed meaning: code 3 may end up drawing the digit 7.
The accuracy of the code as a classifier is therefore taken after the best one-to-one
matching of codes to classes: with the confusion matrix C[c, y] = #{i : code_i = c,
label_i = y},

    accuracy = max over injective maps m: codes -> classes of  sum_c C[c, m(c)] / N,

solved exactly by the Hungarian algorithm (`scipy.optimize.linear_sum_assignment`). The
InfoGAN paper reports about 5% error on MNIST. With more codes than classes, unmatched
codes count as errors.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclasses.dataclass(frozen=True)
class CodeMatch:
    accuracy: float
    mapping: dict[int, int]   # code -> class, for the matched codes
    confusion: np.ndarray     # [num_codes, num_classes] counts


def categorical_code_accuracy(codes, labels, num_codes: int | None = None,
                              num_classes: int | None = None) -> CodeMatch:
    """Accuracy of a categorical code against true classes after Hungarian matching.

    Args:
        codes: code per sample [N] (ints), or code logits / one-hot [N, num_codes] (argmax);
            e.g. the code the InfoGAN Q-head recovers from real images, or the code that
            generated each sample.
        labels: true class per sample [N] (ints).
        num_codes, num_classes: sizes (default: 1 + the largest value seen).

    Returns:
        `CodeMatch(accuracy, mapping, confusion)`.
    """
    codes, labels = np.asarray(codes), np.asarray(labels)
    if codes.ndim == 2:
        num_codes = codes.shape[1] if num_codes is None else num_codes
        codes = codes.argmax(axis=-1)
    if codes.ndim != 1 or codes.shape != labels.shape or codes.size == 0:
        raise ValueError(f"categorical_code_accuracy: codes {codes.shape} and labels "
                         f"{labels.shape} must be two non-empty [N] arrays.")
    codes, labels = codes.astype(np.int64), labels.astype(np.int64)
    num_codes = int(codes.max()) + 1 if num_codes is None else num_codes
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    if codes.min() < 0 or codes.max() >= num_codes or labels.min() < 0 \
            or labels.max() >= num_classes:
        raise ValueError(f"categorical_code_accuracy: codes must be in [0, {num_codes}) and "
                         f"labels in [0, {num_classes}).")
    confusion = np.zeros((num_codes, num_classes), np.int64)
    np.add.at(confusion, (codes, labels), 1)
    rows, cols = linear_sum_assignment(confusion, maximize=True)
    accuracy = float(confusion[rows, cols].sum() / codes.size)
    return CodeMatch(accuracy=accuracy, mapping={int(r): int(c) for r, c in zip(rows, cols)},
                     confusion=confusion)


# --------------------------------------------------------------------------------------------
# What a continuous code does: image moments along a traversal (InfoGAN's c1 = slant,
# c2 = stroke thickness on MNIST, Chen et al. 2016 Fig. 2).
# --------------------------------------------------------------------------------------------


def _ink(images) -> np.ndarray:
    """Images in [-1, 1] [N, H, W, C] -> ink intensity in [0, 1] [N, H, W] (channel mean)."""
    images = np.asarray(images, np.float64)
    return np.clip((images.mean(axis=-1) + 1.0) / 2.0, 0.0, 1.0)


def slant(images) -> np.ndarray:
    """Shear of each image's ink from its second-order central moments -> [N].

        slant = mu_11 / mu_02,   mu_pq = sum_xy w(x, y) (x - x_bar)^p (y - y_bar)^q

    with w the ink intensity and y the row index (downwards): the horizontal shift of the ink
    per row, the quantity deskewing removes (0 for an upright digit; the sign tells the lean).
    """
    w = _ink(images)
    n, h, wd = w.shape
    ys, xs = np.mgrid[0:h, 0:wd].astype(np.float64)
    mass = w.sum(axis=(1, 2)) + 1e-12
    xbar = (w * xs).sum(axis=(1, 2)) / mass
    ybar = (w * ys).sum(axis=(1, 2)) / mass
    dx, dy = xs[None] - xbar[:, None, None], ys[None] - ybar[:, None, None]
    mu11 = (w * dx * dy).sum(axis=(1, 2))
    mu02 = (w * dy * dy).sum(axis=(1, 2)) + 1e-12
    return mu11 / mu02


def ink_mass(images) -> np.ndarray:
    """Mean ink intensity of each image -> [N]: for digits of one size, the stroke thickness."""
    return _ink(images).mean(axis=(1, 2))


def traversal_correlation(measure: np.ndarray, values: np.ndarray) -> float:
    """Mean over rows of Spearman's rho between a code's `values` [C] and a per-image
    `measure` [R, C] along each row of a traversal (other inputs fixed within a row).

    Rows where the measure is constant (rho undefined) are skipped; nan if all are.
    """
    from scipy.stats import spearmanr

    rhos = []
    for row in np.asarray(measure, np.float64):
        if np.ptp(row) > 0:
            rhos.append(spearmanr(values, row).statistic)
    return float(np.mean(rhos)) if rhos else float("nan")
