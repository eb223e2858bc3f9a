"""InfoGAN categorical-code accuracy after Hungarian matching."""

import numpy as np
import pytest

from ganjax.metrics import codes


def test_permuted_labelling_is_perfect():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 500)
    permutation = rng.permutation(10)
    match = codes.categorical_code_accuracy(permutation[labels], labels)
    assert match.accuracy == 1.0
    assert match.mapping == {int(permutation[c]): c for c in range(10)}
    # One-hot / logits input gives the same.
    one_hot = np.eye(10)[permutation[labels]]
    assert codes.categorical_code_accuracy(one_hot, labels).accuracy == 1.0


def test_known_partial_case():
    # Code 0 -> class 1 (3 of 4 right), code 1 -> class 0 (2 of 3), code 2 -> class 2 (2 of 3).
    code = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    label = np.array([1, 1, 1, 0, 0, 0, 2, 2, 2, 1])
    match = codes.categorical_code_accuracy(code, label)
    assert match.accuracy == pytest.approx(0.7)
    assert match.mapping == {0: 1, 1: 0, 2: 2}
    np.testing.assert_array_equal(match.confusion, [[1, 3, 0], [2, 0, 1], [0, 1, 2]])
    # Greedy matching fails here: confusion [[3, 2], [3, 0]]; taking cell (0, 0) first gives
    # 3/8, the optimal code 0 -> class 1, code 1 -> class 0 gives 5/8.
    code = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    label = np.array([0, 0, 0, 1, 1, 0, 0, 0])
    match = codes.categorical_code_accuracy(code, label)
    assert match.accuracy == pytest.approx(5 / 8)
    assert match.mapping == {0: 1, 1: 0}


def test_more_codes_than_classes_and_errors():
    code = np.array([0, 1, 2, 3])
    label = np.array([0, 0, 1, 1])
    match = codes.categorical_code_accuracy(code, label, num_codes=4, num_classes=2)
    assert match.accuracy == pytest.approx(0.5)  # two codes stay unmatched
    assert len(match.mapping) == 2
    with pytest.raises(ValueError, match="must be two non-empty"):
        codes.categorical_code_accuracy(code, label[:3])
    with pytest.raises(ValueError, match="labels in"):
        codes.categorical_code_accuracy(code, label, num_classes=1)
