"""Frechet distance, streaming feature statistics and the FID sample-size study.

References: scipy.linalg.sqrtm (the pytorch-fid / TTUR computation), closed forms for
diagonal and commuting covariances, numpy.cov on the full feature set, and the exact FID of
small feature sets in 40-digit mpmath arithmetic (mpmath comes with sympy, a torch dependency;
the test skips without it).
"""

import numpy as np
import pytest
import scipy.linalg

from ganjax.metrics import fid


def _scipy_fid(mu1, s1, mu2, s2):
    """The classic computation: real part of sqrtm(S1 S2)."""
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2)**2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _covariance(rng, d, condition, rank=None):
    """Random SPD (or PSD of the given rank) covariance with the given condition number."""
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    eigenvalues = np.logspace(0, -np.log10(condition), d)
    if rank is not None:
        eigenvalues[rank:] = 0.0
    return (q * eigenvalues) @ q.T


@pytest.mark.parametrize("condition", [1e2, 1e6, 1e10])
def test_frechet_distance_matches_scipy_sqrtm_on_ill_conditioned_covariances(condition):
    rng = np.random.default_rng(int(np.log10(condition)))
    d = 64
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _covariance(rng, d, condition), _covariance(rng, d, condition)
    got, expected = fid.frechet_distance(mu1, s1, mu2, s2), _scipy_fid(mu1, s1, mu2, s2)
    # tolerance: 1e-8 relative (measured <= 1e-11: both are float64 and well defined here).
    np.testing.assert_allclose(got, expected, rtol=1e-8)


def test_frechet_distance_closed_form_diagonal_gaussians():
    # For diagonal covariances: |mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2.
    rng = np.random.default_rng(0)
    d = 50
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    a = rng.uniform(0, 2, d) * np.logspace(0, -12, d)  # spans 12 decades
    b = rng.uniform(0, 2, d)
    expected = np.sum((mu1 - mu2)**2) + np.sum((np.sqrt(a) - np.sqrt(b))**2)
    got = fid.frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)  # float64 round-off
    assert fid.frechet_distance(mu1, np.diag(a), mu1, np.diag(a)) == pytest.approx(0, abs=1e-10)


def test_frechet_distance_singular_commuting_covariances_closed_form():
    # Rank-deficient (as with fewer samples than features) but commuting: S1 = Q diag(a) Q^T,
    # S2 = Q diag(b) Q^T, so Tr sqrt(S1 S2) = sum sqrt(a_i b_i) exactly.
    rng = np.random.default_rng(1)
    d = 80
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    a, b = rng.uniform(0, 3, d), rng.uniform(0, 3, d)
    a[30:], b[20:40] = 0.0, 0.0
    s1, s2 = (q * a) @ q.T, (q * b) @ q.T
    expected_trace = np.sum(np.sqrt(a * b))
    # tolerance 1e-12 relative (measured 7e-16): round-off eigenvalues of the zero directions
    # are dropped, not square-rooted (which gave errors ~1e-8 per direction).
    np.testing.assert_allclose(fid.trace_sqrt_product(s1, s2), expected_trace, rtol=1e-12)
    expected = np.trace(s1) + np.trace(s2) - 2 * expected_trace
    got = fid.frechet_distance(np.zeros(d), s1, np.zeros(d), s2)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert fid.trace_sqrt_product(np.zeros((d, d)), s2) == 0.0


def _mp_exact_fid(x, y, mp):
    """Exact FID (40 digits) of the sample covariances (ddof=1) of features x [n1, d], y [n2, d]:
    the covariances are formed in mpmath from the float64 features (no float64 rounding of the
    covariance), and Tr((S1 S2)^(1/2)) is taken two independent ways: the symmetric square
    roots via mpmath's eigensolver, Tr((S1^(1/2) S2 S1^(1/2))^(1/2)), and the nuclear norm of
    the centred cross product, ||A B^T||_* / sqrt((n1 - 1)(n2 - 1)). (mpmath.sqrtm itself does
    not converge on singular matrices.) Round-off at 40 digits is ~1e-40, so square roots of
    zero eigenvalues contribute ~1e-20 each, far below the tolerances."""
    def stats(features):
        n, d = features.shape
        rows = [[mp.mpf(float(v)) for v in row] for row in features]
        mean = [mp.fsum(row[j] for row in rows) / n for j in range(d)]
        centred = mp.matrix([[row[j] - mean[j] for j in range(d)] for row in rows])
        return mean, centred.T * centred / (n - 1), centred

    def psd_sqrt(matrix):
        eigenvalues, vectors = mp.eigsy(matrix)
        root = mp.diag([mp.sqrt(max(e, 0)) for e in eigenvalues])
        return vectors * root * vectors.T

    (mu1, s1, a), (mu2, s2, b) = stats(x), stats(y)
    d = len(mu1)
    base = (mp.fsum((p - q)**2 for p, q in zip(mu1, mu2))
            + mp.fsum(s1[i, i] + s2[i, i] for i in range(d)))
    root1 = psd_sqrt(s1)
    inner = root1 * s2 * root1
    trace_eig = mp.fsum(mp.sqrt(max(e, 0)) for e in mp.eigsy((inner + inner.T) / 2)[0])
    trace_nuc = (mp.fsum(mp.svd_r(a * b.T, compute_uv=False))
                 / mp.sqrt((x.shape[0] - 1) * (y.shape[0] - 1)))
    # The routes agree to ~1e-19 (square roots of 1e-40 round-off); 1e-15 is ample here.
    assert abs(trace_eig - trace_nuc) < mp.mpf(10)**-15 * trace_nuc
    return base - 2 * trace_nuc


@pytest.mark.parametrize("n1,n2,noise", [
    (12, 12, 1e-3),  # fewer samples than features, tiny FID: the previous code was 2 % off
    (30, 30, 1e-3),  # more samples than features (full rank), tiny FID
    (6, 15, None),   # different ranks, unrelated sets
])
def test_frechet_distance_matches_40_digit_reference(n1, n2, noise):
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 40
    rng = np.random.default_rng(n1 * 100 + n2)
    d = 20
    x = rng.normal(size=(n1, d))
    y = (x + noise * rng.normal(size=x.shape)) if noise else 0.5 + rng.normal(size=(n2, d))
    exact = float(_mp_exact_fid(x, y, mp))
    got = fid.frechet_distance(*fid.feature_statistics(x), *fid.feature_statistics(y))
    # tolerance 1e-7 relative (measured <= 1e-9 at FID ~1e-5: float64 cancellation of traces
    # ~40 against 1.5e-5). The previous sqrt-of-eigenvalues route was 2.1 % off at (12, 12).
    np.testing.assert_allclose(got, exact, rtol=1e-7)
    np.testing.assert_allclose(fid.fid_from_features(x, y), exact, rtol=1e-7)


def test_frechet_distance_from_statistics_equals_low_rank_path_64x2048():
    # 64 samples x 2048 features vs the same + 1e-3 noise: FID ~2e-3. The covariances have rank
    # 63 and 1985 round-off eigenvalues each; fid_from_features' nuclear-norm path is exact here
    # (within 1.3e-10 of a 50-digit integer/mpmath evaluation, 2.0538562460e-3), the previous
    # frechet_distance was 21 % low (1.63e-3). Two 2048x2048 eigendecompositions: seconds.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2048))
    y = x + 1e-3 * rng.normal(size=x.shape)
    reference = fid.fid_from_features(x, y)
    assert 1e-3 < reference < 4e-3
    got = fid.frechet_distance(*fid.feature_statistics(x), *fid.feature_statistics(y))
    np.testing.assert_allclose(got, reference, rtol=1e-6)  # tolerance 1e-6 (measured < 1e-15)


def test_feature_stats_streaming_matches_numpy_cov():
    rng = np.random.default_rng(2)
    d = 32
    features = rng.normal(size=(517, d)) @ rng.normal(size=(d, d)) + 1e3  # large offset
    stats = fid.FeatureStats.init(d)
    for lo, hi in [(0, 1), (1, 2), (2, 100), (100, 100), (100, 101), (101, 517)]:  # uneven
        stats = stats.update(features[lo:hi].astype(np.float32))
    mu, sigma = stats.finalize()
    f32 = features.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(mu, f32.mean(axis=0), rtol=1e-12)
    # tolerance 1e-9 relative to the largest entry (float64 Chan merging; measured ~1e-14).
    np.testing.assert_allclose(sigma, np.cov(f32, rowvar=False), rtol=0,
                               atol=1e-9 * np.abs(sigma).max())
    assert int(stats.count) == 517
    # merge() of two halves equals one pass.
    half = fid.FeatureStats.init(d).update(f32[:200]).merge(
        fid.FeatureStats.init(d).update(f32[200:]))
    np.testing.assert_allclose(half.finalize()[1], sigma, rtol=0, atol=1e-9 * np.abs(sigma).max())
    with pytest.raises(ValueError, match="dimensions"):
        stats.update(np.zeros((3, d + 1)))
    with pytest.raises(ValueError, match="need more than 1"):
        fid.FeatureStats.init(d).update(f32[:1]).finalize()


def test_fid_from_features_paths_agree_with_scipy():
    rng = np.random.default_rng(3)
    d = 48
    x = rng.normal(size=(300, d))
    y = 1.5 * rng.normal(size=(200, d)) + 0.3
    for n1, n2 in [(300, 200), (40, 30), (5, 48)]:  # covariance path, low-rank path (x2)
        expected = _scipy_fid(*fid.feature_statistics(x[:n1]), *fid.feature_statistics(y[:n2]))
        got = fid.fid_from_features(x[:n1], y[:n2])
        np.testing.assert_allclose(got, expected, rtol=1e-6)  # tolerance: 1e-6 relative
    assert fid.fid_from_features(x, x) == pytest.approx(0.0, abs=1e-8)
    assert fid.fid_from_features(x[:100], x[100:200]) < fid.fid_from_features(x[:100], y[:100])


def test_fid_sample_size_study_table():
    rng = np.random.default_rng(4)
    d = 16
    x, y = rng.normal(size=(400, d)), rng.normal(size=(400, d)) + 0.5
    rows = fid.fid_sample_size_study(x, y, batch_sizes=(4, 32, 256), num_trials=8, seed=0)
    assert [r.batch_size for r in rows] == [4, 32, 256]
    for r in rows:
        assert r.rel_std_percent == pytest.approx(100 * r.std / r.mean)
    # The true FID here is |0.5 * 1|^2 * 16 = 4; large samples approach it, small ones are
    # biased upwards and noisier.
    assert rows[-1].mean == pytest.approx(4.0, rel=0.25)
    assert rows[0].mean > rows[-1].mean
    assert rows[0].rel_std_percent > rows[-1].rel_std_percent
    table = fid.format_sample_size_table(rows)
    assert table.splitlines()[0].startswith("| batch size")
    assert len(table.splitlines()) == 2 + len(rows)
    # Reproducible from the seed.
    assert fid.fid_sample_size_study(x, y, (4,), 3, seed=1) == \
        fid.fid_sample_size_study(x, y, (4,), 3, seed=1)
    with pytest.raises(ValueError, match="batch size 500"):
        fid.fid_sample_size_study(x, y, batch_sizes=(500,))
