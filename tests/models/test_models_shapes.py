"""Every family at tiny width: output shapes, conditional and not, 1x28x28 and 3x32x32, and the
label-vector path agreeing with the label path."""
import dataclasses

import pytest
import torch

from gankit.config import ModelConfig
from gankit.models import ARCHITECTURES, build_models
from tests.conftest import TINY_MODEL as TINY

B = 3
CONDS = [  # (conditional, g_cond, d_cond)
    (False, "onehot", "onehot"),
    (True, "onehot", "onehot"),
    (True, "embedding", "embedding"),
    (True, "embedding", "projection"),
]
CASES = [(arch, shape) for arch in ("mlp", "dcgan", "resnet")
         for shape in ((1, 28, 28), (3, 32, 32))] + [("dcgan004", (1, 28, 28))]


def tiny(**kw) -> ModelConfig:
    return dataclasses.replace(TINY, **kw)


def test_registry_has_the_preset_architectures():
    assert {"mlp", "dcgan", "dcgan004", "resnet"} <= set(ARCHITECTURES)


@pytest.mark.parametrize("arch,shape", CASES)
@pytest.mark.parametrize("conditional,g_cond,d_cond", CONDS)
def test_shapes_and_contract(arch, shape, conditional, g_cond, d_cond):
    torch.manual_seed(0)
    cfg = tiny(arch=arch, conditional=conditional, g_cond=g_cond, d_cond=d_cond)
    G, D = build_models(cfg, shape, 10)
    z, y = torch.randn(B, cfg.nz), torch.tensor([0, 4, 9])
    x = G(z, y if conditional else None)
    assert x.shape == (B, *shape)
    assert x.abs().max() <= 1.0  # tanh
    logits = D(x, y if conditional else None)
    assert logits.shape == (B,)
    assert torch.isfinite(logits).all()
    assert G.nz == cfg.nz and G.conditional == conditional
    assert G.num_classes == (10 if conditional else 0)
    assert D.conditional == conditional


@pytest.mark.parametrize("arch,shape", CASES)
@pytest.mark.parametrize("g_cond", ["onehot", "embedding"])
def test_forward_vector_agrees_with_forward(arch, shape, g_cond):
    torch.manual_seed(0)
    G, _ = build_models(tiny(arch=arch, g_cond=g_cond), shape, 10)
    G.eval()  # BN running statistics, no dropout: both paths see the same network
    z, y = torch.randn(B, G.nz), torch.tensor([1, 2, 7])
    v = G.label_vector(y)
    assert v.shape == (B, 10 if g_cond == "onehot" else TINY.embed_dim)
    if g_cond == "onehot":
        torch.testing.assert_close(v, torch.eye(10)[y])
    with torch.no_grad():
        torch.testing.assert_close(G.forward_vector(z, v), G(z, y))
        # Any vector is accepted, e.g. halfway between two classes.
        mid = G.forward_vector(z, 0.5 * (v + v.flip(0)))
    assert mid.shape == (B, *shape)


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet", "dcgan004"])
@pytest.mark.parametrize("d_cond", ["onehot", "embedding", "projection", "onehot+projection"])
def test_conditional_discriminator_uses_the_label(arch, d_cond):
    torch.manual_seed(0)
    _, D = build_models(tiny(arch=arch, d_cond=d_cond), (1, 28, 28), 10)
    D.eval()
    with torch.no_grad():
        if "projection" in d_cond:  # the projection embedding starts random; make it matter
            D.cond.projection.embed.weight.normal_()
        x = torch.randn(B, 1, 28, 28)
        a, b = D(x, torch.tensor([0, 0, 0])), D(x, torch.tensor([5, 6, 7]))
    assert not torch.allclose(a, b)


def test_unconditional_models_ignore_labels():
    torch.manual_seed(0)
    G, D = build_models(tiny(arch="dcgan", conditional=False), (1, 28, 28), 10)
    G.eval(), D.eval()
    z, y = torch.randn(B, G.nz), torch.tensor([1, 2, 3])
    with torch.no_grad():
        torch.testing.assert_close(G(z, y), G(z))
        x = G(z)
        torch.testing.assert_close(D(x, y), D(x))
    with pytest.raises(ValueError, match="unconditional"):
        G.label_vector(y)


def test_resnet_generator_has_no_transposed_convolution():
    G, _ = build_models(tiny(arch="resnet"), (1, 28, 28), 10)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in G.modules())


def test_dcgan004_is_the_reports_layers():
    G, D = build_models(tiny(arch="dcgan004", conditional=False, nz=64), (1, 28, 28), 0)
    convs = [(m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0])
             for m in D.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [(1, 16, 3, 2), (16, 32, 5, 2), (32, 64, 5, 2)]
    assert D.head.in_features == 64 and D.head.out_features == 1
    deconvs = [(m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0])
               for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert deconvs == [(64, 256, 3, 2), (256, 128, 4, 1), (128, 64, 3, 2), (64, 1, 4, 2)]
    assert G(torch.randn(2, 64)).shape == (2, 1, 28, 28)


def test_mlp_generator_activation_follows_dropout():
    G, _ = build_models(tiny(arch="mlp"), (1, 28, 28), 10)
    assert any(isinstance(m, torch.nn.ReLU) for m in G.modules())           # report 000
    G, _ = build_models(tiny(arch="mlp", g_dropout=0.3), (1, 28, 28), 10)
    assert any(isinstance(m, torch.nn.LeakyReLU) for m in G.modules())      # report 003
    assert any(isinstance(m, torch.nn.Dropout) for m in G.modules())


def test_mlp_handles_any_shape():
    G, D = build_models(tiny(arch="mlp"), (2, 5, 7), 3)
    x = G(torch.randn(B, 8), torch.tensor([0, 1, 2]))
    assert x.shape == (B, 2, 5, 7) and D(x, torch.tensor([0, 1, 2])).shape == (B,)


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
def test_d_without_the_label_while_g_has_it(arch):
    """Report 001's question 7: `d_cond: none` gives a conditional G and a D blind to y."""
    cfg = dataclasses.replace(TINY, arch=arch, conditional=True, d_cond="none")
    G, D = build_models(cfg, (1, 28, 28), 10)
    assert G.conditional and not D.conditional
    z, y = torch.randn(4, G.nz), torch.tensor([0, 1, 2, 3])
    x = G(z, y)
    assert not torch.equal(x, G(z, torch.tensor([4, 5, 6, 7])))
    assert torch.equal(D(x, y), D(x, None))


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet", "dcgan004"])
def test_onehot_plus_projection_joins_the_label_and_projects_it(arch):
    """`onehot+projection` is `onehot`'s input layers plus the projection term: with the
    projection's embedding at zero it scores exactly as a one-hot D with the same weights."""
    torch.manual_seed(0)
    _, both = build_models(tiny(arch=arch, d_cond="onehot+projection"), (1, 28, 28), 10)
    _, onehot = build_models(tiny(arch=arch, d_cond="onehot"), (1, 28, 28), 10)
    assert both.cond.dim == onehot.cond.dim == 10
    state = {k: v for k, v in both.state_dict().items() if "projection" not in k}
    onehot.load_state_dict(state)  # every other tensor has the same name and shape
    both.eval(), onehot.eval()
    x, y = torch.randn(B, 1, 28, 28), torch.tensor([1, 5, 9])
    with torch.no_grad():
        both.cond.projection.embed.weight.zero_()
        torch.testing.assert_close(both(x, y), onehot(x, y))
        both.cond.projection.embed.weight.normal_()
        assert not torch.allclose(both(x, y), onehot(x, y))


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_label_planes_join_a_map_in_its_layout(layout) -> None:
    """The joined map keeps h's layout (a channels-last h came out contiguous, to be
    reordered by every layer after it) and holds h, then the label vector as planes."""
    from gankit.models.conditioning import join_planes
    h = torch.randn(4, 6, 5, 5).contiguous(memory_format=layout)
    v = torch.randn(4, 3)
    out = join_planes(h, v)
    assert out.is_contiguous(memory_format=layout)
    assert torch.equal(out[:, :6], h)
    assert torch.equal(out[:, 6:], v[:, :, None, None].expand(4, 3, 5, 5))
