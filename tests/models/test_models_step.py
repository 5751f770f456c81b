"""One optimisation step per architecture on CPU: finite losses, every parameter moves."""
import dataclasses

import pytest
import torch

from gankit.config import LossConfig
from gankit.losses import get_loss
from gankit.models import build_models
from tests.conftest import TINY_MODEL as TINY

CASES = [  # (model overrides, loss)
    (dict(arch="mlp", g_cond="onehot", d_cond="embedding", init="xavier"), "minimax"),
    (dict(arch="mlp", conditional=False, dropout=0.3, g_dropout=0.3, init="default"),
     "nonsaturating"),
    (dict(arch="dcgan", g_cond="onehot", d_cond="onehot", init="dcgan"), "nonsaturating"),
    (dict(arch="dcgan", g_cond="embedding", d_cond="projection", init="dcgan"), "hinge"),
    (dict(arch="dcgan", conditional=False, batch_norm=False, init="dcgan"), "wgan-gp"),
    (dict(arch="dcgan004", conditional=False, init="dcgan"), "nonsaturating"),
    (dict(arch="resnet", g_cond="embedding", d_cond="embedding", spectral_norm=True), "lsgan"),
    (dict(arch="resnet", g_cond="embedding", d_cond="projection", spectral_norm=True), "hinge"),
]


def step(opt, loss):
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


@pytest.mark.parametrize("overrides,loss_name", CASES)
def test_one_step(overrides, loss_name):
    torch.manual_seed(0)
    cfg = dataclasses.replace(TINY, **overrides)
    G, D = build_models(cfg, (1, 28, 28), 10)
    loss = get_loss(LossConfig(name=loss_name))
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3)
    before_g = [p.detach().clone() for p in G.parameters()]
    before_d = [p.detach().clone() for p in D.parameters()]

    x = torch.rand(4, 1, 28, 28) * 2 - 1
    y = torch.tensor([0, 3, 5, 9]) if cfg.conditional else None
    z = torch.randn(4, cfg.nz)

    fake = G(z, y)
    d_loss = loss.d_loss(D(x, y), D(fake.detach(), y)) + loss.penalty(D, x, fake, y)
    step(opt_d, d_loss)
    g_loss = loss.g_loss(D(G(z, y), y))
    step(opt_g, g_loss)

    assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
    # Hinge (with every margin active) and Wasserstein D losses do not depend on a constant
    # shift of the logits, so the gradient of D's output bias is exactly zero.
    shift_free = {"head.bias"} if loss_name in ("hinge", "wgan-gp") else set()
    for name, net, before in (("G", G, before_g), ("D", D, before_d)):
        for (pname, p), p0 in zip(net.named_parameters(), before):
            if name == "D" and pname in shift_free:
                continue
            assert not torch.equal(p.detach(), p0), f"{name}.{pname} did not change"
