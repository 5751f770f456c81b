"""Fréchet distance between feature Gaussians, in float64 NumPy/SciPy.

FID = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)).

The trace of the matrix square root is computed from eigenvalues, not with `sqrtm`:
(S1 S2)^(1/2) is similar to (A S2 A)^(1/2) with A = S1^(1/2), and A S2 A is symmetric
positive semi-definite, so tr((S1 S2)^(1/2)) = sum_i sqrt(lambda_i(A S2 A)). Two symmetric
eigendecompositions: real by construction (no complex leftovers to discard), exact for
singular covariances (no eps*I offset needed), and faster than `sqrtm`. Eigenvalues that
come out slightly negative from rounding are clipped to 0; clearly negative ones (the input
was not a covariance) raise an error.

Fewer samples than feature dimensions: the covariance then has rank < dimension, and FID's
bias grows large; `FeatureStats.from_features` refuses n <= d with a clear message.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

from gankit.errors import GankitError


class MetricError(GankitError):
    """A metric cannot be computed from what it was given; the message says why and what to do."""


@dataclass(frozen=True)
class FeatureStats:
    """Mean (d,) and covariance (d, d) of n feature vectors, float64."""
    mu: np.ndarray
    sigma: np.ndarray
    n: int

    @classmethod
    def from_features(cls, feats: np.ndarray, min_ratio: float = 1.0) -> "FeatureStats":
        """Statistics of features (n, d); refuses n <= d (a rank-deficient covariance)."""
        feats = np.asarray(feats, dtype=np.float64)
        if feats.ndim != 2:
            raise MetricError(f"features must be (n, d), got shape {feats.shape}")
        n, d = feats.shape
        if n <= d * min_ratio:
            raise MetricError(
                f"FID needs more samples than feature dimensions: n={n}, d={d}. With n <= d the "
                "covariance is singular and the distance is dominated by estimation noise; "
                f"use n > {int(d * min_ratio)} (10k is the convention), or a smaller feature "
                "space (features='classifier' has 128 dimensions)")
        if not np.all(np.isfinite(feats)):
            raise MetricError("features contain NaN or infinity (did the generator diverge?)")
        return cls(feats.mean(axis=0), np.cov(feats, rowvar=False), n)


def _psd_sqrt_eigs(m: np.ndarray, what: str) -> np.ndarray:
    """Eigenvalues of a symmetric PSD matrix, rounding negatives clipped (large ones rejected)."""
    w = linalg.eigvalsh((m + m.T) / 2)
    scale = max(float(np.abs(w).max(initial=0.0)), 1e-300)
    if w.min(initial=0.0) < -1e-6 * scale:
        raise MetricError(f"{what} has a clearly negative eigenvalue ({w.min():.3g} against a "
                          f"largest of {scale:.3g}); it is not a covariance matrix")
    return np.clip(w, 0.0, None)


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((S1 S2)^(1/2)) for symmetric PSD S1, S2, via eigendecompositions (see module doc)."""
    w, v = linalg.eigh((sigma1 + sigma1.T) / 2)
    scale = max(float(np.abs(w).max(initial=0.0)), 1e-300)
    if w.min(initial=0.0) < -1e-6 * scale:
        raise MetricError(f"sigma1 has a clearly negative eigenvalue ({w.min():.3g}); it is not "
                          "a covariance matrix")
    a = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T                  # S1^(1/2), symmetric
    return float(np.sqrt(_psd_sqrt_eigs(a @ sigma2 @ a, "S1^(1/2) S2 S1^(1/2)")).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), float64."""
    mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise MetricError(f"mismatched statistics: mu {mu1.shape} vs {mu2.shape}, sigma "
                          f"{sigma1.shape} vs {sigma2.shape} (different feature spaces?)")
    diff = mu1 - mu2
    tr = np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2)
    # Rounding can take a distance of two identical Gaussians a hair below zero.
    return float(max(diff @ diff + tr, 0.0))


def fid_from_stats(a: FeatureStats, b: FeatureStats) -> float:
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma)


def fid(feats1: np.ndarray, feats2: np.ndarray) -> float:
    """FID between two sets of features (n1, d) and (n2, d)."""
    return fid_from_stats(FeatureStats.from_features(feats1), FeatureStats.from_features(feats2))
