"""Classification accuracy, overall and per true class (a classifier's or a judge's on real
held-out images)."""

from __future__ import annotations

import numpy as np


def per_class_accuracy(predicted, labels, num_classes: int) -> tuple[float, list[float]]:
    """(mean(predicted == labels), for each class c the accuracy on the examples labelled c;
    nan for a class with no example)."""
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    per = [float(np.mean(predicted[labels == c] == c)) if np.any(labels == c) else float("nan")
           for c in range(num_classes)]
    return float(np.mean(predicted == labels)), per
