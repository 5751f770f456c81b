"""Minibatch standard deviation (models/mbstd.py) and its place in the DCGAN D."""
from __future__ import annotations

import pytest
import torch

from gankit.models.mbstd import MinibatchStd
from gankit.models.registry import build_models
from tests.conftest import tiny


def test_the_extra_channel_is_the_mean_std_of_the_group() -> None:
    x = torch.randn(8, 3, 2, 2)
    out = MinibatchStd(4)(x)
    assert out.shape == (8, 4, 2, 2)
    assert torch.equal(out[:, :3], x)
    for i in range(8):  # groups of 4 spread over the batch: i, i + 2, i + 4, i + 6 (mod 8)
        group = x[[j for j in range(8) if j % 2 == i % 2]]
        want = group.var(0, unbiased=False).add(1e-8).sqrt().mean()
        assert torch.allclose(out[i, 3], want.expand(2, 2)), i


@pytest.mark.parametrize("n, group", [(6, 4), (7, 4), (1, 4), (5, 8)])
def test_a_batch_the_group_does_not_divide_uses_the_largest_divisor(n: int, group: int) -> None:
    x = torch.randn(n, 2, 3, 3)
    out = MinibatchStd(group)(x)
    g = max(d for d in range(1, min(group, n) + 1) if n % d == 0)
    assert out.shape == (n, 3, 3, 3)
    assert torch.allclose(out[:, 2:], MinibatchStd(g)(x)[:, 2:])
    if n == 7 or n == 1:  # groups of one image: no spread
        assert torch.allclose(out[:, 2], torch.full((n, 3, 3), 1e-4))


def test_a_dcgan_d_with_mbstd_reads_the_spread_of_its_batch() -> None:
    cfg = tiny("default", model__mbstd=4)
    G, D = build_models(cfg.model, (1, 28, 28), 10)
    assert D.head.in_channels == 2 * cfg.model.ndf + 1
    D.eval()
    y = torch.arange(8) % 10
    x = torch.randn(8, 1, 28, 28)
    same = x[:1].expand(8, -1, -1, -1)
    # the same image scored in a varied batch and in a batch of copies scores differently
    assert not torch.allclose(D(x, y)[0], D(same, y[:1].expand(8))[0])


def test_a_d_with_mbstd_sees_real_and_fake_in_separate_batches(tmp_path) -> None:
    """Without BN the Trainer runs D once on [real; fake]; a minibatch-stddev group would then
    mix real and generated images, so D with mbstd takes them apart, as with BN."""
    from gankit.training.loop import Trainer
    plain = Trainer(tiny("default", model__d_norm="none"), tmp_path / "a", progress=False)
    grouped = Trainer(tiny("default", model__d_norm="none", model__mbstd=4), tmp_path / "b",
                      progress=False)
    assert plain.joint_d and not grouped.joint_d
