"""Conditional BatchNorm in G (`model.g_cond: onehot+cbn`, models/conditioning.py)."""
from __future__ import annotations

import pytest
import torch

from gankit.config import ConfigError
from gankit.models.conditioning import ConditionalBatchNorm2d
from gankit.models.registry import build_models
from tests.conftest import tiny


def test_a_one_hot_label_picks_its_class_gain_and_bias() -> None:
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(3, 4)
    h = torch.randn(6, 3, 2, 2)
    y = torch.tensor([0, 1, 2, 3, 1, 0])
    v = torch.nn.functional.one_hot(y, 4).float()
    out = cbn(h, v)
    normed = torch.nn.functional.batch_norm(h, None, None, training=True)
    gain, bias = cbn.gain.weight.T[y], cbn.bias.weight.T[y]  # (6, 3): class y's row
    want = normed * (1 + gain[:, :, None, None]) + bias[:, :, None, None]
    torch.testing.assert_close(out, want)


def test_with_zero_weights_it_is_batch_norm_without_affine() -> None:
    cbn = ConditionalBatchNorm2d(3, 4)
    torch.nn.init.zeros_(cbn.gain.weight), torch.nn.init.zeros_(cbn.bias.weight)
    h, v = torch.randn(5, 3, 4, 4), torch.rand(5, 4)
    torch.testing.assert_close(cbn(h, v), torch.nn.BatchNorm2d(3, affine=False)(h))


def test_the_dcgan_g_gets_the_label_in_every_batch_norm() -> None:
    torch.manual_seed(0)
    cfg = tiny("default", model__g_cond="onehot+cbn")
    G, _ = build_models(cfg.model, (1, 28, 28), 10)
    norms = [m for m in G.modules() if isinstance(m, ConditionalBatchNorm2d)]
    assert len(norms) == 2  # 7x7 and 14x14
    G.eval()
    z = torch.randn(4, G.nz)
    with torch.no_grad():
        a = G(z, torch.tensor([3, 3, 3, 3]))
        for m in norms:  # class 3 and class 5 given the same gains and biases in every layer
            for lin in (m.gain, m.bias):
                lin.weight[:, 5] = lin.weight[:, 3]
        # the one-hot label still enters at the input, so the images differ there alone: zero
        # that column too and the two labels give the same images
        first = G.net[0].weight
        first[G.nz + 5] = first[G.nz + 3]
        torch.testing.assert_close(G(z, torch.tensor([5, 5, 5, 5])), a)


@pytest.mark.parametrize("arch", ["mlp", "resnet", "dcgan004"])
def test_families_without_it_refuse_it(arch: str) -> None:
    with pytest.raises(ConfigError, match="no conditional BatchNorm"):
        build_models(tiny("default", model__arch=arch, model__g_cond="onehot+cbn").model,
                     (1, 28, 28), 10)


def test_it_needs_batch_norm_in_g() -> None:
    cfg = tiny("default", model__g_cond="onehot+cbn", model__batch_norm=False)
    with pytest.raises(ConfigError, match="model.batch_norm=false"):
        build_models(cfg.model, (1, 28, 28), 10)


def test_an_unconditional_g_ignores_it() -> None:
    cfg = tiny("default", model__g_cond="onehot+cbn", model__conditional=False)
    G, _ = build_models(cfg.model, (1, 28, 28), 10)
    assert not any(isinstance(m, ConditionalBatchNorm2d) for m in G.modules())


def test_only_the_classes_in_the_batch_learn_and_the_state_round_trips() -> None:
    torch.manual_seed(0)
    cfg = tiny("default", model__g_cond="onehot+cbn")
    G, _ = build_models(cfg.model, (1, 28, 28), 10)
    G(torch.randn(6, G.nz), torch.tensor([1, 4, 1, 4, 4, 1])).square().mean().backward()
    grad = G.net[1].gain.weight.grad  # (channels, classes)
    assert grad[:, [1, 4]].abs().sum(0).min() > 0
    assert torch.count_nonzero(grad[:, [0, 2, 3, 5, 6, 7, 8, 9]]) == 0
    again, _ = build_models(cfg.model, (1, 28, 28), 10)
    again.load_state_dict(G.state_dict())
    G.eval(), again.eval()
    z, y = torch.randn(3, G.nz), torch.tensor([0, 5, 9])
    torch.testing.assert_close(again(z, y), G(z, y), rtol=0, atol=0)
