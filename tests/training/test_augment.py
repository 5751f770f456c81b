"""DiffAugment: exact translations and cutouts, per-image randomness, gradients, policies."""
from __future__ import annotations

import pytest
import torch

from gankit.config import ConfigError
from gankit.training.augment import (AUGMENTS, cut_out, diff_augment, parse_policy,
                                     random_cutout, random_translation, translate)


def grid(b: int = 1, h: int = 3, w: int = 3) -> torch.Tensor:
    return torch.arange(1, b * h * w + 1, dtype=torch.float32).view(b, 1, h, w)


def test_translate_moves_content_and_shifts_in_zeros():
    x = grid()  # [[1,2,3],[4,5,6],[7,8,9]]
    down_right = translate(x, torch.tensor([1]), torch.tensor([1]))
    assert down_right[0, 0].tolist() == [[0, 0, 0], [0, 1, 2], [0, 4, 5]]
    up_left = translate(x, torch.tensor([-1]), torch.tensor([-2]))
    assert up_left[0, 0].tolist() == [[6, 0, 0], [9, 0, 0], [0, 0, 0]]
    assert torch.equal(translate(x, torch.tensor([0]), torch.tensor([0])), x)


def test_translate_keeps_channels_together_and_each_image_its_own_shift():
    x = torch.stack([grid()[0, 0], 10 * grid()[0, 0]])[:, None].repeat(1, 2, 1, 1)  # (2,2,3,3)
    x[:, 1] *= -1
    out = translate(x, torch.tensor([0, 2]), torch.tensor([1, 0]))
    assert out[0, 0].tolist() == [[0, 1, 2], [0, 4, 5], [0, 7, 8]]
    assert out[1, 0].tolist() == [[0, 0, 0], [0, 0, 0], [10, 20, 30]]
    assert torch.equal(out[:, 1], -out[:, 0])


def test_cut_out_zeroes_a_square_clipped_at_the_border():
    x = torch.ones(2, 1, 4, 4)
    out = cut_out(x, torch.tensor([1, 0]), torch.tensor([2, 0]), (2, 2))
    assert out[0, 0].tolist() == [[1, 0, 0, 1], [1, 0, 0, 1], [1, 1, 1, 1], [1, 1, 1, 1]]
    assert out[1, 0].tolist() == [[0, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]


def test_random_transforms_follow_the_paper_sizes_and_the_generator():
    x = torch.ones(64, 1, 28, 28)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    cut = random_cutout(x, g())
    zeros = (cut == 0).flatten(1).sum(1)
    assert zeros.max() == 14 * 14 and zeros.min() >= 7 * 7   # a 14x14 square, maybe clipped
    assert torch.equal(cut, random_cutout(x, g()))             # the same generator, the same
    moved = random_translation(x, g())
    kept = moved.flatten(1).sum(1)
    assert kept.min() >= 24 * 24 and (kept < 28 * 28).any()   # shifts of at most 4 pixels
    assert len(set(kept.tolist())) > 1                         # each image its own shift


def test_gradients_flow_through_the_policy():
    x = torch.randn(4, 1, 8, 8, requires_grad=True)
    y = diff_augment(x, ("translation", "cutout"), torch.Generator().manual_seed(0))
    y.sum().backward()
    assert set(x.grad.unique().tolist()) <= {0.0, 1.0} and x.grad.sum() > 0


def test_policies():
    assert parse_policy("none") == ()
    assert parse_policy("translation, cutout") == ("translation", "cutout")
    assert tuple(AUGMENTS) == ("translation", "cutout")
    with pytest.raises(ConfigError, match=r"unknown transform 'color'.*translation, cutout"):
        parse_policy("translation,color")
    with pytest.raises(ConfigError, match="twice"):
        parse_policy("cutout,cutout")
    x = torch.randn(2, 1, 4, 4)
    assert diff_augment(x, ()) is x
