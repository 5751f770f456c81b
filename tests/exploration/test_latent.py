"""The tensor maths of the exploration: interpolation, noise, label-vector ranges."""
from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from gankit.exploration.latent import (add_noise, box_samples, convex_combinations,
                                       label_range, lerp, random_direction, slerp)


def test_lerp_ends_and_midpoint():
    a, b = torch.tensor([0.0, 2.0]), torch.tensor([4.0, -2.0])
    path = lerp(a, b, 5)
    assert path.shape == (5, 2)
    assert_close(path[0], a)
    assert_close(path[-1], b)
    assert_close(path[2], (a + b) / 2)


def test_slerp_keeps_ends_follows_the_circle_and_interpolates_the_norm():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, generator=g), 2 * torch.randn(64, generator=g)
    path = slerp(a, b, 9)
    assert_close(path[0], a, atol=1e-5, rtol=1e-5)
    assert_close(path[-1], b, atol=1e-5, rtol=1e-5)
    norms = path.norm(dim=1)
    assert_close(norms, torch.linspace(float(a.norm()), float(b.norm()), 9), atol=1e-4, rtol=1e-5)
    # the angle to a grows evenly from 0 to the angle between a and b
    cos = (path @ a) / (norms * a.norm())
    angles = torch.arccos(cos.clamp(-1, 1))
    omega = torch.arccos((a @ b) / (a.norm() * b.norm()))
    assert_close(angles, torch.linspace(0, float(omega), 9), atol=1e-3, rtol=1e-3)
    # every point lies in the plane of a and b: no component orthogonal to both
    basis, _ = torch.linalg.qr(torch.stack([a, b], 1))
    resid = path - (path @ basis) @ basis.T
    assert float(resid.abs().max()) < 1e-4


def test_slerp_keeps_latent_norms_where_lerp_shrinks_them():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(100, generator=g), torch.randn(100, generator=g)
    mid_lerp, mid_slerp = lerp(a, b, 3)[1].norm(), slerp(a, b, 3)[1].norm()
    assert mid_lerp < 0.8 * mid_slerp   # independent Gaussians: lerp's midpoint ~ 1/sqrt(2)


@pytest.mark.parametrize("a,b", [(torch.zeros(4), torch.ones(4)),
                                 (torch.ones(4), 3 * torch.ones(4))])
def test_slerp_falls_back_to_lerp_when_the_circle_is_undefined(a, b):
    assert_close(slerp(a, b, 4), lerp(a, b, 4))


def test_interpolation_needs_two_steps():
    with pytest.raises(ValueError, match="at least 2"):
        lerp(torch.zeros(2), torch.ones(2), 1)
    with pytest.raises(ValueError, match="at least 2"):
        slerp(torch.zeros(2), torch.ones(2), 1)


def test_noise_is_seeded_and_scales_with_eps():
    x = torch.ones(3, 5)
    n1 = add_noise(x, 1.0, seed=7) - x
    assert_close(add_noise(x, 2.0, seed=7) - x, 2 * n1)
    assert_close(add_noise(x, 0.0, seed=7), x)
    assert not torch.equal(add_noise(x, 1.0, seed=8), add_noise(x, 1.0, seed=7))


def test_label_range_convex_mixes_and_box_stay_inside():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(10, 6, generator=g)
    r = label_range(v)
    assert_close(r["min"], v.min(0).values)
    assert r["scale"] == pytest.approx(float(v.norm(dim=1).mean()))
    mix, w = convex_combinations(v, 50, seed=3)
    assert mix.shape == (50, 6) and w.shape == (50, 10)
    assert_close(w.sum(1), torch.ones(50, dtype=w.dtype))
    assert bool((w >= 0).all())
    assert_close(mix, w.float() @ v)
    box = box_samples(v, 50, seed=3)
    for pts in (mix, box):
        assert bool((pts >= r["min"] - 1e-6).all()) and bool((pts <= r["max"] + 1e-6).all())
    assert torch.equal(box_samples(v, 5, seed=4), box_samples(v, 5, seed=4))


def test_random_direction_has_the_asked_norm():
    d = random_direction(12, 7.5, seed=0)
    assert d.shape == (12,)
    assert float(d.norm()) == pytest.approx(7.5, rel=1e-5)
