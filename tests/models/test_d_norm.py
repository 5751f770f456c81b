"""`model.d_norm`: BatchNorm in a conv discriminator, and the SN-GAN/BigGAN-style D without it."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from gankit.models import build_models
from gankit.models.base import batchnorm_layers
from tests.conftest import TINY_MODEL

SHAPE = (1, 28, 28)


def d_bn(arch: str, **over) -> int:
    cfg = dataclasses.replace(TINY_MODEL, arch=arch, **over)
    G, D = build_models(cfg, SHAPE, 10)
    return len(batchnorm_layers(D))


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_auto_keeps_todays_rule_and_batch_none_say_it_outright(arch):
    sn_proj = {"spectral_norm": True, "d_cond": "projection"}
    assert d_bn(arch) > 0                                   # auto: as batch_norm (true)
    assert d_bn(arch, **sn_proj) == 0                       # auto: none with SN + projection
    assert d_bn(arch, batch_norm=False) == 0
    assert d_bn(arch, d_norm="none") == 0
    assert d_bn(arch, d_norm="batch", **sn_proj) > 0         # asked for: kept
    assert d_bn(arch, d_norm="batch", batch_norm=False) > 0  # D's BN apart from G's


def test_hinge_sn_projection_d_without_bn_scores_each_image_alone():
    cfg = dataclasses.replace(TINY_MODEL, arch="dcgan", spectral_norm=True,
                              d_cond="projection", d_norm="none")
    G, D = build_models(cfg, SHAPE, 10)
    G_bn = batchnorm_layers(G)
    assert G_bn and not batchnorm_layers(D)     # G keeps its BN
    x, y = torch.randn(4, *SHAPE), torch.tensor([0, 1, 2, 3])
    D.eval()
    alone = torch.cat([D(x[i:i + 1], y[i:i + 1]) for i in range(4)])
    torch.testing.assert_close(D(x, y), alone)  # no batch statistics tie the images
