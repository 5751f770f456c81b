"""Report 002's experiments on small untrained generators: shapes, determinism, and that each
figure shows what it says (its images are G's outputs for the stated inputs)."""
from __future__ import annotations

import pytest
import torch

from gankit.config import ModelConfig
from gankit.exploration import (all_figures, class_diversity, class_means, from_mean,
                                interpolate_labels,
                                interpolate_z, noise_on_inputs, out_of_range_labels)
from gankit.exploration.experiments import default_classes
from gankit.models import build_models
from gankit.data.image import to_uint8
from gankit.sampling import noise

SHAPE = (1, 28, 28)


def make_G(g_cond: str | None, arch: str = "dcgan") -> torch.nn.Module:
    conditional = g_cond is not None
    cfg = ModelConfig(arch=arch, conditional=conditional, nz=16, g_cond=g_cond or "onehot",
                      d_cond="embedding", embed_dim=6, ngf=8, ndf=8, init="dcgan")
    torch.manual_seed(0)
    G, _ = build_models(cfg, SHAPE, 10 if conditional else 0)
    return G.eval()


@pytest.fixture(scope="module", params=["embedding", "onehot"])
def cond_G(request):
    return make_G(request.param)


@pytest.fixture(scope="module")
def uncond_G():
    return make_G(None)


def close_images(a: torch.Tensor, b: torch.Tensor) -> None:
    """uint8 images equal up to one grey level (batch composition may change the last float bit)."""
    assert a.shape == b.shape and a.dtype == b.dtype == torch.uint8
    assert int((a.int() - b.int()).abs().max()) <= 1


@torch.no_grad()
def direct(G, z, y=None, v=None):
    return to_uint8(G.forward_vector(z, v) if v is not None else G(z, y))


def check_panels(fig, rows_cols):
    assert len(fig.panels) == len(rows_cols)
    for p, (rows, cols) in zip(fig.panels, rows_cols):
        assert p.images.dtype == torch.uint8
        assert tuple(p.images.shape) == (rows * cols,) + SHAPE
        assert p.nrow == cols and p.rows == rows
        if p.row_labels:
            assert len(p.row_labels) == rows
        if p.col_labels:
            assert len(p.col_labels) == cols
    assert fig.title and fig.caption and "\n" not in fig.caption


def test_class_diversity_one_row_per_class_with_new_latents(cond_G):
    fig = class_diversity(cond_G, per_class=5, seed=3)
    check_panels(fig, [(10, 5)])
    imgs = fig.panels[0].images
    z = noise(50, cond_G.nz, 3)
    close_images(imgs, direct(cond_G, z, torch.arange(10).repeat_interleave(5)))
    assert not torch.equal(imgs[0], imgs[1])               # different z within a row
    assert torch.equal(imgs, class_diversity(cond_G, per_class=5, seed=3).panels[0].images)
    assert not torch.equal(imgs, class_diversity(cond_G, per_class=5, seed=4).panels[0].images)


def test_class_means_use_z_zero(cond_G):
    fig = class_means(cond_G)
    check_panels(fig, [(1, 10)])
    close_images(fig.panels[0].images, direct(cond_G, torch.zeros(10, cond_G.nz),
                                              torch.arange(10)))
    assert fig.panels[0].col_labels == [str(i) for i in range(10)]


def test_class_names_label_the_rows(cond_G):
    names = tuple(f"c{i}" for i in range(10))
    assert class_diversity(cond_G, per_class=2, classes=names).panels[0].row_labels == list(names)


@pytest.mark.parametrize("conditional", [True, False])
def test_interpolate_z_linear_and_slerp_share_their_ends(conditional, cond_G, uncond_G):
    G = cond_G if conditional else uncond_G
    fig = interpolate_z(G, labels=[1, 7] if conditional else None, rows=2, steps=5, seed=2)
    check_panels(fig, [(2, 5), (2, 5)])
    lin, sl = (p.images.view(2, 5, *SHAPE) for p in fig.panels)
    assert torch.equal(lin[:, 0], sl[:, 0]) and torch.equal(lin[:, -1], sl[:, -1])
    assert not torch.equal(lin[:, 2], sl[:, 2])
    ends = noise(4, G.nz, 2)
    y = torch.tensor([1, 7]) if conditional else None
    close_images(lin[:, 0], direct(G, ends[0::2], y))
    close_images(lin[:, -1], direct(G, ends[1::2], y))
    assert fig.data["mid_norm"]["linear"] < fig.data["mid_norm"]["slerp"]
    assert [p.title for p in fig.panels] == ["linear in z", "slerp in z"]


def test_from_mean_starts_at_z_zero_and_ends_at_the_farthest_candidate(cond_G):
    fig = from_mean(cond_G, label=3, candidates=6, steps=5, seed=1)
    check_panels(fig, [(1, 6), (1, 5)])
    shown, path = (p.images for p in fig.panels)
    z = noise(6, cond_G.nz, 1)
    y = torch.full((6,), 3)
    close_images(shown, direct(cond_G, z, y))
    mean = direct(cond_G, torch.zeros(1, cond_G.nz), y[:1])
    close_images(path[:1], mean)
    far = (shown.float() - mean.float()).flatten(1).norm(dim=1)
    pick = fig.data["chosen"]
    assert far[pick] >= far.max() - 1e-3 * far.max()              # up to the uint8 rounding
    assert fig.panels[0].col_labels[pick] == "chosen"
    close_images(path[-1:], direct(cond_G, z[pick:pick + 1], y[:1]))
    close_images(path[2:3], direct(cond_G, z[pick:pick + 1] / 2, y[:1]))
    with pytest.raises(ValueError, match="outside"):
        from_mean(cond_G, label=10)


def test_interpolate_labels_goes_from_one_class_to_the_other(cond_G):
    fig = interpolate_labels(cond_G, pairs=[(2, 8), (3, 1)], rows=2, steps=6, seed=1)
    check_panels(fig, [(2, 6), (2, 6)])
    z = noise(2, cond_G.nz, 1)
    for panel, (a, b) in zip(fig.panels, [(2, 8), (3, 1)]):
        grid = panel.images.view(2, 6, *SHAPE)
        close_images(grid[:, 0], direct(cond_G, z, torch.tensor([a, a])))
        close_images(grid[:, -1], direct(cond_G, z, torch.tensor([b, b])))
        va, vb = cond_G.label_vector(torch.tensor([a, b])).detach()
        close_images(grid[:, 3], direct(cond_G, z, v=(0.4 * va + 0.6 * vb).expand(2, -1)))
    assert fig.panels[0].title == "2 → 8"


def test_interpolate_labels_rejects_classes_out_of_range(cond_G):
    with pytest.raises(ValueError, match="outside 0..9"):
        interpolate_labels(cond_G, pairs=[(2, 10)])


def test_noise_side_by_side_starts_clean_and_grows(cond_G):
    eps = (0.1, 0.5, 1.0, 2.0)
    fig = noise_on_inputs(cond_G, epsilons=eps, seed=5)
    check_panels(fig, [(5, 10), (5, 10)])
    on_z, on_v = (p.images.view(5, 10, *SHAPE) for p in fig.panels)
    assert torch.equal(on_z[0], on_v[0])                      # eps = 0 row: no noise at all
    z0 = noise(1, cond_G.nz, 5).expand(10, -1)
    close_images(on_z[0], direct(cond_G, z0, torch.arange(10)))
    assert fig.panels[0].row_labels == ["ε = 0", "ε = 0.1", "ε = 0.5", "ε = 1", "ε = 2"]
    # a bigger eps moves the images further from the clean row
    diff = [(on_z[i].float() - on_z[0].float()).abs().mean() for i in range(5)]
    assert diff[1] < diff[4]
    assert fig.data["label_scale"] > 0


def test_noise_unconditional_is_on_z_only(uncond_G):
    fig = noise_on_inputs(uncond_G, epsilons=(0.5, 2.0), columns=4, seed=0)
    check_panels(fig, [(3, 4)])
    assert fig.panels[0].title == "noise on z"


def test_out_of_range_labels_inside_and_far(cond_G):
    fig = out_of_range_labels(cond_G, rows=3, anchor=4, seed=0)
    check_panels(fig, [(3, 8)])
    labels = fig.panels[0].col_labels
    assert labels[0] == "v[4]" and "5×v[4]" in labels and "-3×v[4]" in labels
    vec = {k: torch.tensor(v) for k, v in fig.data["vectors"].items()}
    learnt = cond_G.label_vector(torch.arange(10)).detach()
    lo, hi = learnt.min(0).values, learnt.max(0).values
    for name in ("mix 1", "mix 2", "box 1", "box 2"):
        assert bool((vec[name] >= lo - 1e-3).all() and (vec[name] <= hi + 1e-3).all()), name
    torch.testing.assert_close(vec["5×v[4]"], 5 * learnt[4], atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(vec["-3×v[4]"], -3 * learnt[4], atol=1e-3, rtol=1e-3)
    scale = float(learnt.norm(dim=1).mean())
    assert float(vec["rand 5×"].norm()) == pytest.approx(5 * scale, rel=1e-3)
    grid = fig.panels[0].images.view(3, 8, *SHAPE)
    close_images(grid[:, 0], direct(cond_G, noise(3, cond_G.nz, 0), torch.tensor([4] * 3)))


def test_conditional_only_experiments_say_so(uncond_G):
    for fn in (class_diversity, class_means, from_mean, interpolate_labels, out_of_range_labels):
        with pytest.raises(ValueError, match="conditional generator"):
            fn(uncond_G)


def test_all_figures_choose_what_applies(cond_G, uncond_G):
    names = [f.name for f in all_figures(cond_G)]
    assert names == ["class_diversity", "class_means", "interpolate_z", "from_mean",
                     "interpolate_labels",
                     "noise", "out_of_range_labels"]
    assert [f.name for f in all_figures(uncond_G)] == ["interpolate_z", "noise"]


def test_experiments_leave_G_in_its_mode():
    G = make_G("embedding").train()
    class_means(G)
    assert G.training


def test_default_classes_spread_over_the_range():
    assert default_classes(10) == [0, 3, 6, 9]
    assert default_classes(3) == [0, 1, 2]
