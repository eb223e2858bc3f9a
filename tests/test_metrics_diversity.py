"""Diversity metrics: pairwise MS-SSIM, successive-batch FID, class coverage."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax.metrics import diversity, fid
from ganjax.metrics import ssim as ssim_lib

PF = ssim_lib.ms_ssim_power_factors(2)  # 2 scales for 24x24 images


def test_mean_pairwise_ms_ssim_identical_vs_different():
    rng = np.random.default_rng(0)
    one = rng.uniform(-1, 1, (1, 24, 24, 1)).astype(np.float32)
    collapsed = np.repeat(one, 8, axis=0)
    assert diversity.mean_pairwise_ms_ssim(collapsed, batch_size=4, power_factors=PF) == \
        pytest.approx(1.0, abs=1e-5)
    diverse = rng.uniform(-1, 1, (8, 24, 24, 1)).astype(np.float32)
    score = diversity.mean_pairwise_ms_ssim(diverse, batch_size=4, power_factors=PF)
    assert score < 0.2


def test_mean_pairwise_ms_ssim_is_the_mean_over_pairs_within_batches():
    # Independent computation: explicit loops over batches and pairs i < j.
    rng = np.random.default_rng(1)
    base = rng.uniform(-1, 1, (1, 24, 24, 3))
    images = np.clip(base + 0.5 * rng.normal(size=(11, 24, 24, 3)), -1, 1).astype(np.float32)
    expected = np.mean([
        np.mean([float(ssim_lib.ms_ssim(images[b + i][None], images[b + j][None], 2.0,
                                        power_factors=PF)[0])
                 for i, j in itertools.combinations(range(5), 2)])
        for b in (0, 5)])  # two full batches of 5; the 11th image is dropped
    got = diversity.mean_pairwise_ms_ssim(images, batch_size=5, power_factors=PF)
    np.testing.assert_allclose(got, expected, rtol=1e-5)  # same function, float32 sums
    first = diversity.mean_pairwise_ms_ssim(images, batch_size=5, num_batches=1, power_factors=PF)
    assert first != got
    with pytest.raises(ValueError, match="only 2 full batches"):
        diversity.mean_pairwise_ms_ssim(images, batch_size=5, num_batches=3, power_factors=PF)


def test_successive_fid():
    rng = np.random.default_rng(2)
    same = rng.normal(size=(200, 8))
    batches = [same, same.copy(), same + 1.0, rng.normal(size=(150, 8))]
    scores = diversity.successive_fid(batches)
    assert scores.shape == (3,)
    assert scores[0] == pytest.approx(0.0, abs=1e-9)        # identical batches
    assert scores[1] == pytest.approx(8.0, rel=1e-9)        # pure mean shift of 1 in 8 dims
    np.testing.assert_allclose(scores[2], fid.fid_from_features(batches[2], batches[3]))
    with pytest.raises(ValueError, match="two"):
        diversity.successive_fid([same])


def test_class_coverage():
    balanced = diversity.class_coverage(np.arange(100) % 10, num_classes=10)
    np.testing.assert_array_equal(balanced.counts, np.full(10, 10))
    assert balanced.num_covered == 10
    assert balanced.kl_to_uniform == pytest.approx(0.0, abs=1e-12)
    collapsed = diversity.class_coverage(np.full(50, 3), num_classes=10)
    assert collapsed.num_covered == 1
    assert collapsed.kl_to_uniform == pytest.approx(np.log(10))
    # Two classes, 3:1, from logits: KL = 0.75 log(0.75 * 4) + 0.25 log(0.25 * 4).
    logits = np.eye(4)[[0, 0, 0, 2]] * 5.0
    partial = diversity.class_coverage(logits, num_classes=4)
    np.testing.assert_array_equal(partial.counts, [3, 0, 1, 0])
    np.testing.assert_allclose(partial.fractions, [0.75, 0, 0.25, 0])
    assert partial.kl_to_uniform == pytest.approx(0.75 * np.log(3.0))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        diversity.class_coverage([0, 4], num_classes=4)


def test_confident_fraction_against_closed_forms_and_jax_softmax():
    # Top probabilities 19/20, 4/5, 1/10 (ten equal logits) and 1 (a logit gap of 1000, no overflow).
    logits = np.zeros((4, 10))
    logits[0, 3], logits[1, 7], logits[3, 0] = np.log(19 * 9), np.log(4 * 9), 1000.0
    assert diversity.confident_fraction(logits, 0.9) == 0.5
    assert diversity.confident_fraction(logits, 0.75) == 0.75
    assert diversity.confident_fraction(logits, 0.05) == 1.0
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(1000, 10))
    top = np.asarray(jax.nn.softmax(jnp.asarray(logits, jnp.float32), axis=-1)).max(-1)
    for threshold in (0.5, 0.9, 0.99):  # jax's float32 softmax: at most one row of 1,000 may fall the other side
        assert diversity.confident_fraction(logits, threshold) == pytest.approx(np.mean(top >= threshold), abs=1e-3)
    with pytest.raises(ValueError, match="threshold"):
        diversity.confident_fraction(logits, 1.0)
    with pytest.raises(ValueError, match=r"\[N, K\]"):
        diversity.confident_fraction(np.zeros(5))
