"""Configurations that cannot work fail before training, with a message that says why."""
import dataclasses

import pytest
import torch

from gankit.config import ConfigError
from gankit.models import build_models
from tests.conftest import TINY_MODEL as CFG



def build(shape=(1, 28, 28), num_classes=10, **kw):
    return build_models(dataclasses.replace(CFG, **kw), shape, num_classes)


def test_unknown_arch_lists_valid_ones():
    with pytest.raises(ConfigError, match="unknown model.arch 'vit'.*mlp, dcgan, dcgan004, resnet"):
        build(arch="vit")


@pytest.mark.parametrize("key,value,valid", [("init", "kaiming", "xavier, dcgan, normal, default"),
                                             ("g_cond", "projection", "onehot, embedding"),
                                             ("d_cond", "film", "onehot, embedding, projection")])
def test_unknown_choices(key, value, valid):
    with pytest.raises(ConfigError, match=f"model.{key}.*{valid}"):
        build(**{key: value})


def test_dcgan004_refuses_other_sizes():
    with pytest.raises(ConfigError, match="28x28.*32x32"):
        build(arch="dcgan004", conditional=False, shape=(3, 32, 32), num_classes=0)


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
@pytest.mark.parametrize("shape", [(1, 27, 27), (1, 6, 6)])
def test_impossible_sizes(arch, shape):
    with pytest.raises(ConfigError, match=f"cannot produce {shape[1]}x{shape[2]}"):
        build(arch=arch, shape=shape)


def test_non_square_conv_net():
    with pytest.raises(ConfigError, match="square"):
        build(arch="dcgan", shape=(1, 28, 32))


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "dcgan004", "resnet"])
def test_conditional_on_unlabelled_data(arch):
    with pytest.raises(ConfigError, match="conditional=false"):
        build(arch=arch, conditional=True, num_classes=0)
    G, _ = build(arch=arch, conditional=False, num_classes=0)
    assert G.num_classes == 0 and not G.conditional


@pytest.mark.parametrize("arch,key", [("resnet", "dropout"), ("dcgan", "g_dropout"),
                                      ("dcgan004", "dropout")])
def test_unsupported_dropout(arch, key):
    with pytest.raises(ConfigError, match="dropout"):
        build(arch=arch, **{key: 0.3})


def test_bad_labels_at_call_time():
    G, D = build(arch="mlp")
    z = torch.randn(2, 8)
    with pytest.raises(ValueError, match="pass labels"):
        G(z)
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        G(z, torch.tensor([0, 10]))
    with pytest.raises(ValueError, match="integers"):
        G(z, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="z must be"):
        G(torch.randn(2, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="label vectors"):
        G.forward_vector(z, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="pass labels"):
        D(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="expects images"):
        D(torch.zeros(2, 1, 32, 32), torch.tensor([0, 1]))
