"""Paths and points in a generator's input space: interpolation, noise, label vectors.

Pure tensor functions (no generator needed), so each is easy to test on its own.
"""
from __future__ import annotations

import numpy as np
import torch

EPSILONS = (0.1, 0.5, 1.0, 2.0)   # report 002, section 2.5: noise of growing size up to 2


def lerp(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """`steps` points on the segment a -> b, ends included: (steps, D) for a, b of shape (D,)."""
    if steps < 2:
        raise ValueError(f"an interpolation needs at least 2 steps, got {steps}")
    t = torch.linspace(0, 1, steps, dtype=a.dtype, device=a.device)[:, None]   # (S, 1)
    return (1 - t) * a[None] + t * b[None]


def slerp(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """Spherical interpolation a -> b (White 2016), ends included: (steps, D).

    Follows the great circle between the directions of a and b and interpolates the norms
    linearly, so the points keep the typical norm of Gaussian latents (sqrt(nz)) instead of
    shrinking towards the origin as linear interpolation does. Falls back to `lerp` when a or
    b is (nearly) zero or they are (nearly) parallel, where the circle is not defined.
    """
    if steps < 2:
        raise ValueError(f"an interpolation needs at least 2 steps, got {steps}")
    a64, b64 = a.double(), b.double()
    na, nb = a64.norm(), b64.norm()
    if na < 1e-8 or nb < 1e-8:
        return lerp(a, b, steps)
    ua, ub = a64 / na, b64 / nb
    omega = torch.arccos((ua * ub).sum().clamp(-1.0, 1.0))
    if omega < 1e-6 or torch.pi - omega < 1e-6:
        return lerp(a, b, steps)
    t = torch.linspace(0, 1, steps, dtype=torch.float64, device=a.device)[:, None]
    so = torch.sin(omega)
    direction = (torch.sin((1 - t) * omega) / so) * ua + (torch.sin(t * omega) / so) * ub
    norm = (1 - t) * na + t * nb
    return (direction * norm).to(a.dtype)


def add_noise(x: torch.Tensor, eps: float, seed: int) -> torch.Tensor:
    """x + eps * N(0, I), the noise drawn from `seed` (same seed, same noise, any eps)."""
    g = torch.Generator().manual_seed(seed)
    return x + eps * torch.randn(x.shape, generator=g).to(x.device, x.dtype)


def label_range(vectors: torch.Tensor) -> dict[str, torch.Tensor | float]:
    """What "the range of the learnt label vectors" (K, E) means here: per-dimension min and
    max, the mean vector, and the mean L2 norm (the "embedding scale")."""
    return {"min": vectors.min(0).values, "max": vectors.max(0).values,
            "mean": vectors.mean(0), "scale": float(vectors.norm(dim=1).mean())}


def convex_combinations(vectors: torch.Tensor, n: int, seed: int,
                        concentration: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """n random convex combinations of the K label vectors (K, E): weights from a symmetric
    Dirichlet (small concentration: near a few classes). Returns (n, E) vectors, (n, K) weights."""
    k = vectors.shape[0]
    w = torch.from_numpy(np.random.default_rng(seed).dirichlet([concentration] * k, size=n))
    return (w.to(vectors.device, vectors.dtype) @ vectors), w


def box_samples(vectors: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """n vectors uniform in the per-dimension [min, max] box of the label vectors (K, E)."""
    g = torch.Generator().manual_seed(seed)
    r = label_range(vectors)
    u = torch.rand(n, vectors.shape[1], generator=g, dtype=torch.float64).to(vectors.dtype)
    return r["min"][None] + u * (r["max"] - r["min"])[None]


def random_direction(dim: int, norm: float, seed: int) -> torch.Tensor:
    """A random direction in R^dim scaled to `norm`: (dim,)."""
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(dim, generator=g, dtype=torch.float64)
    return (d / d.norm() * norm).float()
