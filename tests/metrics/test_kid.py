"""KID: the unbiased MMD^2 estimator, checked against a literal double loop and for bias."""
import numpy as np
import pytest

from gankit.metrics.kid import kid, mmd2_unbiased


def literal_mmd2(x, y):
    m, d = len(x), x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_matches_literal_definition():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 5)), rng.normal(0.5, 1, size=(12, 5))
    np.testing.assert_allclose(mmd2_unbiased(x, y), literal_mmd2(x, y), rtol=1e-12)


def test_unbiased_for_one_distribution():
    # Over independent replicates, the estimator's mean is 0 within its standard error;
    # the biased (V-statistic) version would sit clearly above 0 at this sample size.
    rng = np.random.default_rng(1)
    vals = np.array([mmd2_unbiased(rng.normal(size=(50, 8)), rng.normal(size=(50, 8)))
                     for _ in range(400)])
    se = vals.std(ddof=1) / np.sqrt(len(vals))
    assert abs(vals.mean()) < 3 * se


@pytest.mark.slow
def test_kid_near_zero_for_one_distribution_and_positive_otherwise():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2000, 16)), rng.normal(size=(2000, 16))
    mean, std = kid(a, b, subsets=50, subset_size=500, seed=0)
    assert abs(mean) < 2 * std
    c = rng.normal(0.3, 1.0, size=(2000, 16))
    mean2, std2 = kid(a, c, subsets=50, subset_size=500, seed=0)
    assert mean2 > 10 * std2 and mean2 > 20 * abs(mean)


def test_kid_deterministic_for_a_seed():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(300, 4)), rng.normal(size=(300, 4))
    assert kid(a, b, 10, 100, seed=5) == kid(a, b, 10, 100, seed=5)
    assert kid(a, b, 10, 100, seed=5) != kid(a, b, 10, 100, seed=6)


def test_subset_size_capped_at_smaller_set():
    rng = np.random.default_rng(4)
    mean, _ = kid(rng.normal(size=(30, 3)), rng.normal(size=(500, 3)), 5, 1000)
    assert np.isfinite(mean)
