"""Precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et al. 2020).

Each set's manifold is the union of balls around its points, of radius the distance to the
point's k-th nearest neighbour in its own set (the point itself not counted). Balls are
closed (distance <= radius), as in both papers' definitions.

- precision: share of fake points inside the real manifold (k = 3);
- recall: share of real points inside the fake manifold (k = 3);
- density: (1 / kM) sum over fakes of the number of real balls holding it (k = 5, can exceed 1);
- coverage: share of real points whose ball holds at least one fake (k = 5).

k = 3 for precision/recall follows Kynkäänniemi et al. (their recommended value); k = 5
for density/coverage follows Naeem et al. Distances are Euclidean in float64, computed in
blocks so that 10k x 10k never sits in memory at once.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gankit.metrics.fid import MetricError

PR_K = 3
DC_K = 5
BLOCK = 1024


def _sq_dists(a: np.ndarray, b: np.ndarray, a_sq: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    d = a_sq[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0, out=d)


def knn_sq_radii(x: np.ndarray, ks: tuple[int, ...] = (PR_K, DC_K)) -> dict[int, np.ndarray]:
    """Squared distance of each point to its k-th nearest neighbour in x (itself excluded), per k.

    Squared, so that ball membership compares exactly the numbers that were computed.
    """
    x = np.asarray(x, np.float64)
    n = len(x)
    if n <= max(ks):
        raise MetricError(f"k-nearest-neighbour radii need more than k={max(ks)} points, got {n}")
    sq = np.einsum("ij,ij->i", x, x)
    out = {k: np.empty(n) for k in ks}
    for i in range(0, n, BLOCK):
        d = _sq_dists(x[i:i + BLOCK], x, sq[i:i + BLOCK], sq)
        d[np.arange(len(d)), np.arange(i, i + len(d))] = -1.0    # self comes first after sorting
        part = np.partition(d, list(ks), axis=1)
        for k in ks:
            out[k][i:i + BLOCK] = np.maximum(part[:, k], 0.0)
    return out


@dataclass(frozen=True)
class PRDC:
    precision: float
    recall: float
    density: float
    coverage: float


def prdc(real: np.ndarray, fake: np.ndarray, real_sq_radii: dict[int, np.ndarray] | None = None,
         pr_k: int = PR_K, dc_k: int = DC_K) -> PRDC:
    """Precision, recall (k=pr_k) and density, coverage (k=dc_k) of fake against real features.

    `real_sq_radii` (from `knn_sq_radii(real)`) may be passed in, cached with the real features.
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise MetricError(f"PRDC needs features (n, d) of one d, got {real.shape} and {fake.shape}")
    ks = tuple(sorted({pr_k, dc_k}))
    if real_sq_radii is None or not all(k in real_sq_radii for k in ks):
        real_sq_radii = knn_sq_radii(real, ks)
    r_pr, r_dc = real_sq_radii[pr_k], real_sq_radii[dc_k]
    f_pr = knn_sq_radii(fake, (pr_k,))[pr_k]
    real_sq, fake_sq = np.einsum("ij,ij->i", real, real), np.einsum("ij,ij->i", fake, fake)
    in_real = np.zeros(len(fake), bool)      # precision: fake inside some real ball
    density_count = 0
    real_in_fake = np.zeros(len(real), bool)  # recall: real inside some fake ball
    nearest_fake = np.full(len(real), np.inf)  # coverage: nearest fake of each real point
    for i in range(0, len(fake), BLOCK):
        d = _sq_dists(fake[i:i + BLOCK], real, fake_sq[i:i + BLOCK], real_sq)  # (b, N_real)
        in_real[i:i + BLOCK] = (d <= r_pr[None, :]).any(axis=1)
        density_count += int((d <= r_dc[None, :]).sum())
        real_in_fake |= (d <= f_pr[i:i + BLOCK, None]).any(axis=0)
        np.minimum(nearest_fake, d.min(axis=0), out=nearest_fake)
    return PRDC(precision=float(in_real.mean()), recall=float(real_in_fake.mean()),
                density=float(density_count / (dc_k * len(fake))),
                coverage=float((nearest_fake <= r_dc).mean()))
