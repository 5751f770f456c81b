"""Each loss against numbers worked out by hand, its gradients, and its stability.

Inputs: real logits r = (2, -1), fake logits f = (0.5, -3). With softplus(x) = log(1 + e^x):
  softplus(-2) = 0.126928   softplus(1) = 1.313262    softplus(2) = 2.126928
  softplus(-1) = 0.313262   softplus(0.5) = 0.974077  softplus(-3) = 0.048587
  softplus(-0.5) = 0.474077 softplus(3) = 3.048587
"""
import pytest
import torch

from gankit.config import ConfigError, LossConfig
from gankit.losses import LOSSES, GANLoss, get_loss

R = torch.tensor([2.0, -1.0])
F = torch.tensor([0.5, -3.0])

D_EXPECTED = {
    # (0.126928 + 1.313262)/2 + (0.974077 + 0.048587)/2
    "minimax": 1.231427,
    "nonsaturating": 1.231427,
    # (relu(1-2) + relu(1+1))/2 + (relu(1+0.5) + relu(1-3))/2 = 1 + 0.75
    "hinge": 1.75,
    # 0.5*((2-1)^2 + (-1-1)^2)/2 + 0.5*(0.5^2 + 3^2)/2 = 1.25 + 2.3125
    "lsgan": 3.5625,
    # mean(f) - mean(r) = -1.25 - 0.5
    "wgan-gp": -1.75,
}
G_EXPECTED = {
    "minimax": -0.511332,        # -(0.974077 + 0.048587)/2 = mean log(1 - sigmoid(f))
    "nonsaturating": 1.761332,   # (0.474077 + 3.048587)/2 = -mean log sigmoid(f)
    "hinge": 1.25,               # -mean(f)
    "lsgan": 4.0625,             # 0.5*((0.5-1)^2 + (-3-1)^2)/2
    "wgan-gp": 1.25,             # -mean(f)
}


def test_registry_names():
    assert set(LOSSES) == {"minimax", "nonsaturating", "hinge", "lsgan", "wgan-gp"}
    assert all(isinstance(v, GANLoss) for v in LOSSES.values())
    assert [n for n, v in LOSSES.items() if v.gradient_penalty] == ["wgan-gp"]


@pytest.mark.parametrize("name", sorted(D_EXPECTED))
def test_hand_computed_values(name):
    loss = LOSSES[name]
    torch.testing.assert_close(loss.d_loss(R, F), torch.tensor(D_EXPECTED[name]),
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(loss.g_loss(F), torch.tensor(G_EXPECTED[name]), atol=1e-5, rtol=0)
    # (B, 1) logits, as some heads produce, give the same numbers
    torch.testing.assert_close(loss.d_loss(R[:, None], F[:, None]), loss.d_loss(R, F))


def test_bce_matches_pytorch_bce_with_logits():
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected = bce(R, torch.ones(2)) + bce(F, torch.zeros(2))
    torch.testing.assert_close(LOSSES["nonsaturating"].d_loss(R, F), expected)
    torch.testing.assert_close(LOSSES["nonsaturating"].g_loss(F), bce(F, torch.ones(2)))


def test_one_sided_label_smoothing():
    # real term: (0.9*0.126928 + 0.1*2.126928 + 0.9*1.313262 + 0.1*0.313262)/2 = 0.770095
    loss = get_loss(LossConfig(name="nonsaturating", label_smoothing=0.1))
    torch.testing.assert_close(loss.d_loss(R, F), torch.tensor(0.770095 + 0.511332),
                               atol=1e-5, rtol=0)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    torch.testing.assert_close(loss.d_loss(R, F),
                               bce(R, torch.full((2,), 0.9)) + bce(F, torch.zeros(2)))
    assert loss.g_loss(F) == LOSSES["nonsaturating"].g_loss(F)  # G is untouched


def test_d_average_is_the_mean_of_real_and_fake_terms():
    loss = get_loss(LossConfig(name="nonsaturating", d_average=True))
    torch.testing.assert_close(loss.d_loss(R, F), torch.tensor(1.231427 / 2), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name,formula", [
    ("minimax", lambda l: -torch.sigmoid(l)),             # d/dl log(1 - sigmoid(l))
    ("nonsaturating", lambda l: -(1 - torch.sigmoid(l))),  # d/dl -log sigmoid(l)
])
def test_generator_gradients(name, formula):
    logits = torch.tensor([-4.0, -1.0, 0.0, 2.5], requires_grad=True)
    LOSSES[name].g_loss(logits).backward()
    torch.testing.assert_close(logits.grad, formula(logits.detach()) / logits.numel())


def test_saturating_loss_vanishes_where_d_rejects_fakes():
    logits = torch.tensor([-10.0], requires_grad=True)
    LOSSES["minimax"].g_loss(logits).backward()
    assert abs(logits.grad.item()) < 1e-4
    logits.grad = None
    LOSSES["nonsaturating"].g_loss(logits).backward()
    assert logits.grad.item() == pytest.approx(-1.0, abs=1e-4)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_stable_for_extreme_logits(name):
    loss = LOSSES[name]
    real = torch.tensor([100.0, -100.0], requires_grad=True)
    fake = torch.tensor([-100.0, 100.0], requires_grad=True)
    d, g = loss.d_loss(real, fake), loss.g_loss(fake)
    assert torch.isfinite(d) and torch.isfinite(g)
    d.backward()
    assert torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()
    fake.grad = None
    g.backward()
    assert torch.isfinite(fake.grad).all()


def test_get_loss_options_and_errors():
    assert get_loss(LossConfig(name="wgan-gp", gp_weight=5.0)).gp_weight == 5.0
    assert get_loss(LossConfig(name="hinge", gp_weight=5.0)).gp_weight == 0.0
    with pytest.raises(ConfigError, match="unknown loss.name 'bce'.*minimax, nonsaturating"):
        get_loss(LossConfig(name="bce"))
    with pytest.raises(ConfigError, match="label_smoothing.*BCE"):
        get_loss(LossConfig(name="hinge", label_smoothing=0.1))
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        get_loss(LossConfig(name="minimax", label_smoothing=1.0))
