"""Kernel Inception Distance (Bińkowski et al. 2018) on any feature space, float64.

The unbiased estimator of MMD^2 with the polynomial kernel k(x, y) = (x.y / d + 1)^3,
averaged over random subsets of equal size drawn without replacement from each set. Unlike
FID it has no bias from the number of samples: two samples of one distribution give values
scattered around 0 (negative values are possible and honest).
"""
from __future__ import annotations

import numpy as np

from gankit.metrics.fid import MetricError


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, coef0: float = 1.0
                      ) -> np.ndarray:
    k = x @ y.T
    k /= x.shape[1]
    k += coef0
    out = k.copy()
    for _ in range(degree - 1):   # repeated products: much faster than a float power
        out *= k
    return out


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between two samples of equal size m (diagonal terms left out)."""
    m = len(x)
    if len(y) != m or m < 2:
        raise MetricError(f"mmd2_unbiased needs two samples of one size >= 2, got {len(x)} "
                          f"and {len(y)}")
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    off = m * (m - 1)
    return float((kxx.sum() - np.trace(kxx)) / off + (kyy.sum() - np.trace(kyy)) / off
                 - 2.0 * kxy.mean())


def kid(real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """KID mean and standard deviation over `subsets` subsets of `subset_size` from each set.

    The subset size is capped at the smaller set's size. Deterministic for a seed.
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise MetricError(f"KID needs features (n, d) of one d, got {real.shape} and {fake.shape}")
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise MetricError(f"KID needs at least 2 samples in each set, got {len(real)} and "
                          f"{len(fake)}")
    rng = np.random.default_rng(seed)
    values = np.empty(subsets)
    for s in range(subsets):
        xi = rng.choice(len(real), m, replace=False)
        yi = rng.choice(len(fake), m, replace=False)
        values[s] = mmd2_unbiased(real[xi], fake[yi])
    return float(values.mean()), float(values.std())
