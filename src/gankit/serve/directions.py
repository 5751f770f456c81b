"""Main directions of a generator's latent space, for the sliders of `gankit serve`.

Two bases of unit vectors in z (nz,):

- "principal": the principal directions of G's response. With J(z) = d G(z, v) / d z the
  Jacobian of the image with respect to the latent, the top eigenvectors of the average
  J^T J over sampled z (and labels) are the latent directions along which the image changes
  most on average (the idea behind GANSpace, Härkönen et al. 2020, taken in z and through
  the Jacobian rather than through PCA of activations). Each comes with its share of the
  total response (its eigenvalue over the trace).
- "z": the first coordinate axes of z (e_0, e_1, ...), which every run of the same nz shares,
  so two runs side by side move along the same vectors.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gankit.sampling import balanced_labels, noise

BASES = ("principal", "z")


@dataclass(frozen=True)
class Directions:
    """k unit vectors in z (k, nz) and the share of G's response each carries (k,)."""
    vectors: torch.Tensor
    share: torch.Tensor


def coordinate_directions(nz: int, k: int) -> Directions:
    """The first k axes of z; the share is not measured (NaN)."""
    k = min(k, nz)
    return Directions(torch.eye(nz)[:k], torch.full((k,), float("nan")))


@torch.no_grad()
def principal_directions(G: nn.Module, k: int = 5, samples: int = 16, seed: int = 0,
                         step: float = 1e-2) -> Directions:
    """The top-k eigenvectors of the mean J^T J of G over `samples` latents (balanced labels
    when G is conditional), with J by central differences of `step` in each coordinate of z.

    Central differences keep this to plain forward passes (any architecture, any
    conditioning, spectral norm or not): 2 * nz images per sampled latent."""
    nz = int(G.nz)
    dev = next(G.parameters()).device
    conditional = bool(getattr(G, "conditional", False))
    z0 = noise(samples, nz, seed)
    y = balanced_labels(samples, int(G.num_classes)) if conditional else None
    eye = torch.eye(nz) * step
    gram = torch.zeros(nz, nz, dtype=torch.float64)
    was = G.training
    G.eval()
    try:
        for i in range(samples):
            z = torch.cat([z0[i] + eye, z0[i] - eye]).to(dev)          # (2 nz, nz)
            yy = None if y is None else y[i].repeat(2 * nz).to(dev)
            x = G(z, yy).flatten(1).double().cpu()                        # (2 nz, P)
            jac = (x[:nz] - x[nz:]).T / (2 * step)                        # (P, nz)
            gram += jac.T @ jac
    finally:
        G.train(was)
    values, vectors = torch.linalg.eigh(gram / samples)                  # ascending
    order = torch.argsort(values, descending=True)[:min(k, nz)]
    total = values.clamp_min(0).sum()
    share = values[order].clamp_min(0) / total if total > 0 else torch.zeros(len(order))
    vecs = vectors[:, order].T.float()                                    # (k, nz) unit rows
    # An eigenvector's sign is arbitrary; fix it so the largest entry is positive and a slider
    # moves the same way on every load.
    flip = torch.sign(vecs.gather(1, vecs.abs().argmax(1, keepdim=True)))
    return Directions(vecs * flip, share.float())
