"""Initialisation schemes and spectral normalisation."""
import dataclasses
import math

import pytest
import torch
from torch import nn

from gankit.config import ModelConfig, resolve
from gankit.models import apply_init, apply_spectral_norm, build_models

CFG = ModelConfig(arch="dcgan", nz=16, ngf=16, ndf=16, embed_dim=4)


def weights(module, types=(nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
    out = []
    for m in module.modules():
        if isinstance(m, types):
            w = (m.parametrizations.weight.original if hasattr(m, "parametrizations")
                 else m.weight)
            out.append((m, w.detach()))
    return out


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_dcgan_init_std(spectral_norm):
    torch.manual_seed(0)
    cfg = dataclasses.replace(CFG, init="dcgan", spectral_norm=spectral_norm)
    G, D = build_models(cfg, (1, 28, 28), 10)
    for net in (G, D):
        w = torch.cat([w.flatten() for _, w in weights(net)])
        assert w.numel() > 10_000
        assert w.std().item() == pytest.approx(0.02, rel=0.05)
        assert w.mean().abs().item() < 0.002
        for m, _ in weights(net):
            if m.bias is not None:
                assert torch.all(m.bias == 0)
    bn = torch.cat([m.weight.detach() for m in G.modules() if isinstance(m, nn.BatchNorm2d)])
    assert bn.mean().item() == pytest.approx(1.0, abs=0.01)
    assert bn.std().item() == pytest.approx(0.02, rel=0.3)


def test_xavier_init_bound():
    torch.manual_seed(0)
    G, D = build_models(dataclasses.replace(CFG, init="xavier"), (1, 28, 28), 10)
    for m, w in weights(G) + weights(D):
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(w)
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        assert w.abs().max().item() <= bound
        if w.numel() >= 1000:  # U(-a, a): max near a, std a / sqrt(3)
            assert w.abs().max().item() > 0.95 * bound
            assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)
        if m.bias is not None:
            assert torch.all(m.bias == 0)


def test_default_init_leaves_pytorch_init():
    torch.manual_seed(0)
    G, _ = build_models(dataclasses.replace(CFG, arch="mlp", init="default"), (1, 28, 28), 10)
    lin = next(m for m in G.modules() if isinstance(m, nn.Linear))
    assert lin.bias.abs().sum() > 0  # PyTorch draws biases; both other schemes zero them
    assert lin.weight.abs().max() <= 1 / math.sqrt(lin.in_features)


def test_init_of_an_already_normalised_layer_writes_the_original():
    layer = apply_spectral_norm(nn.Sequential(nn.Linear(200, 300)))[0]
    apply_init(layer, "dcgan")
    assert layer.parametrizations.weight.original.std().item() == pytest.approx(0.02, rel=0.05)


def top_singular(w):
    return torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2).item()


def test_spectral_norm_keeps_largest_singular_value_near_one():
    torch.manual_seed(0)
    cfg = dataclasses.replace(CFG, arch="resnet", spectral_norm=True, d_cond="projection")
    _, D = build_models(cfg, (1, 28, 28), 10)
    D.train()
    x, y = torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        for _ in range(5):  # one power iteration per training forward
            D(x, y)
    layers = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]
    assert layers and all(hasattr(m, "parametrizations") for m in layers)
    for m in layers:
        assert top_singular(m.weight.detach()) == pytest.approx(1.0, abs=0.05)
        # ... while the raw weight is not normalised
        assert top_singular(m.parametrizations.weight.original.detach()) != pytest.approx(1.0,
                                                                                        abs=0.05)


def test_spectral_norm_only_on_discriminator():
    G, D = build_models(dataclasses.replace(CFG, spectral_norm=True), (1, 28, 28), 10)
    assert not any(hasattr(m, "parametrizations") for m in G.modules())
    assert any(hasattr(m, "parametrizations") for m in D.modules())


def test_report_004_bn_weights_are_drawn_as_written():
    """Report 004: BN weights from "the same normal distribution" as the convolutions."""
    torch.manual_seed(0)
    G, D = build_models(resolve("dcgan-r004").model, (1, 28, 28), 0)
    bn = torch.cat([m.weight.detach() for net in (G, D) for m in net.modules()
                    if isinstance(m, nn.BatchNorm2d)])
    assert bn.numel() == 256 + 128 + 64 + 16 + 32 + 64
    assert bn.mean().abs().item() < 0.005
    assert bn.std().item() == pytest.approx(0.02, rel=0.2)
