"""FID against a float64 SciPy reference and against closed forms."""
import numpy as np
import pytest
from scipy import linalg

from gankit.metrics.fid import FeatureStats, MetricError, fid, frechet_distance, trace_sqrt_product


def reference_fid(x: np.ndarray, y: np.ndarray) -> float:
    """pytorch-fid's recipe in float64: sqrtm of the product, eps offset if singular."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        off = np.eye(len(s1)) * 1e-6
        covmean = linalg.sqrtm((s1 + off) @ (s2 + off))
    assert np.abs(np.imag(covmean)).max() < 1e-6
    covmean = np.real(covmean)
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("d", [8, 64])
def test_fid_matches_scipy_reference(d):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, d)) @ rng.normal(size=(d, d))
    y = rng.normal(0.3, 1.5, size=(800, d)) @ rng.normal(size=(d, d)) + 0.5
    np.testing.assert_allclose(fid(x, y), reference_fid(x, y), rtol=1e-6)


def test_fid_of_nearby_distributions_matches_reference():
    # Small FIDs are where cancellation bites: compare there too.
    rng = np.random.default_rng(1)
    a = rng.normal(size=(32, 32))
    x = rng.normal(size=(3000, 32)) @ a
    y = rng.normal(size=(3000, 32)) @ a
    ref = reference_fid(x, y)
    assert 0 < ref < 5
    np.testing.assert_allclose(fid(x, y), ref, rtol=1e-6)


def test_diagonal_gaussians_closed_form():
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.normal(size=20), rng.normal(size=20)
    s1, s2 = rng.uniform(0.1, 3, 20), rng.uniform(0.1, 3, 20)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    got = frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_rotated_gaussians_closed_form():
    # Commuting covariances in a random basis: tr sqrt(S1 S2) = sum sqrt(l1 l2).
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    l1, l2 = rng.uniform(0.1, 2, 16), rng.uniform(0.1, 2, 16)
    s1, s2 = q @ np.diag(l1) @ q.T, q @ np.diag(l2) @ q.T
    mu = rng.normal(size=16)
    expected = mu @ mu + np.sum(l1 + l2 - 2 * np.sqrt(l1 * l2))
    np.testing.assert_allclose(frechet_distance(mu, s1, np.zeros(16), s2), expected, rtol=1e-10)


def test_singular_covariances_are_exact_and_real():
    # Rank-deficient covariances: no eps offset needed, no complex leftovers.
    s1, s2 = np.diag([1.0, 0.0, 0.0]), np.diag([4.0, 0.0, 9.0])
    assert trace_sqrt_product(s1, s2) == pytest.approx(2.0)
    assert frechet_distance(np.zeros(3), s1, np.zeros(3), s2) == pytest.approx(1 + 4 - 4 + 9)


def test_identical_sets_give_zero():
    x = np.random.default_rng(4).normal(size=(500, 10))
    assert fid(x, x) == pytest.approx(0.0, abs=1e-9)


def test_sample_estimate_of_known_gaussians():
    rng = np.random.default_rng(5)
    n, d = 200_000, 4
    s1, s2 = np.array([1.0, 2.0, 0.5, 1.0]), np.array([2.0, 1.0, 0.5, 4.0])
    x = rng.normal(size=(n, d)) * np.sqrt(s1)
    y = rng.normal(size=(n, d)) * np.sqrt(s2) + 1.0
    expected = d * 1.0 + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert fid(x, y) == pytest.approx(expected, rel=0.02)


def test_too_few_samples_refused():
    x = np.random.default_rng(6).normal(size=(64, 128))
    with pytest.raises(MetricError, match="more samples than feature dimensions"):
        FeatureStats.from_features(x)


def test_mismatched_feature_spaces_refused():
    with pytest.raises(MetricError, match="mismatched"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_non_covariance_refused():
    with pytest.raises(MetricError, match="negative eigenvalue"):
        frechet_distance(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))


def test_nan_features_refused():
    x = np.random.default_rng(7).normal(size=(50, 3))
    x[3, 1] = np.nan
    with pytest.raises(MetricError, match="NaN"):
        FeatureStats.from_features(x)
