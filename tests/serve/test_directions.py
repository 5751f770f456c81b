"""The slider directions: orthonormal, ordered by how much of G's response they carry."""
from __future__ import annotations

import pytest
import torch

from gankit.serve.directions import coordinate_directions, principal_directions
from gankit.sampling import balanced_labels, noise

pytestmark = pytest.mark.slow   # trains the tiny run on first use


def response(G, d: torch.Tensor, z: torch.Tensor, y: torch.Tensor) -> float:
    """Mean squared change of G's images when z moves by 0.5 d."""
    with torch.no_grad():
        return float((G(z + 0.5 * d, y) - G(z, y)).pow(2).mean())


def test_principal_directions_carry_most_of_the_response(cgan_run):
    from gankit.training.runs import load_run
    G = load_run(cgan_run, "last").G
    dirs = principal_directions(G, k=G.nz, samples=8, seed=0)
    v = dirs.vectors
    assert torch.allclose(v @ v.T, torch.eye(G.nz), atol=1e-4)
    assert torch.all(dirs.share[:-1] >= dirs.share[1:] - 1e-7)
    assert float(dirs.share.sum()) == pytest.approx(1.0, abs=1e-4)
    # measured on latents the directions were not computed from
    z, y = noise(64, G.nz, 123), balanced_labels(64, G.num_classes)
    first, last = response(G, v[0], z, y), response(G, v[-1], z, y)
    axes = [response(G, e, z, y) for e in coordinate_directions(G.nz, G.nz).vectors]
    assert first > 2 * last
    assert first > max(axes)                       # no axis of z moves the image as much
    # the same G and seed give the same directions (sliders stay put across restarts)
    assert torch.equal(principal_directions(G, k=3, samples=8, seed=0).vectors, v[:3])
