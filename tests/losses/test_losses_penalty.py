"""The WGAN-GP gradient penalty."""
import pytest
import torch
from torch import nn

from gankit.config import ConfigError, LossConfig
from gankit.losses import LOSSES, get_loss, gradient_penalty, r1_penalty


class LinearCritic(nn.Module):
    """D(x) = <w, x> + b: its input gradient is w everywhere, so the penalty is (|w| - 1)^2."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(torch.zeros(()))

    def forward(self, x, y=None):
        return x.flatten(1) @ self.w + self.b


class QuadraticCritic(nn.Module):
    def forward(self, x, y=None):
        return (x.flatten(1) ** 2).sum(1)  # gradient 2x: depends on where eps lands


def test_value_and_gradient_for_a_linear_critic():
    w = torch.tensor([3.0, 0.0, 4.0, 0.0])  # |w| = 5 -> penalty (5 - 1)^2 = 16
    D = LinearCritic(w)
    real, fake = torch.randn(6, 1, 2, 2), torch.randn(6, 1, 2, 2)
    gp = gradient_penalty(D, real, fake)
    torch.testing.assert_close(gp, torch.tensor(16.0))
    gp.backward()  # create_graph=True: the penalty reaches D's weights
    torch.testing.assert_close(D.w.grad, 2 * (5 - 1) * w / 5)


def test_eps_comes_from_the_passed_generator():
    D = QuadraticCritic()
    real, fake = torch.randn(5, 1, 3, 3), torch.randn(5, 1, 3, 3)
    a = gradient_penalty(D, real, fake, generator=torch.Generator().manual_seed(1))
    b = gradient_penalty(D, real, fake, generator=torch.Generator().manual_seed(1))
    c = gradient_penalty(D, real, fake, generator=torch.Generator().manual_seed(2))
    assert a == b and a != c
    # the formula with the same eps, worked out directly: grad = 2 x_hat
    eps = torch.rand(5, 1, 1, 1, generator=torch.Generator().manual_seed(1))
    x_hat = eps * real + (1 - eps) * fake
    expected = ((2 * x_hat).flatten(1).norm(dim=1) - 1).pow(2).mean()
    torch.testing.assert_close(a, expected)


def test_labels_reach_the_critic():
    seen = []

    class Spy(LinearCritic):
        def forward(self, x, y=None):
            seen.append(y)
            return super().forward(x)

    y = torch.tensor([1, 2])
    gradient_penalty(Spy(torch.ones(4)), torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2), y)
    assert seen[0] is y


def test_penalty_through_the_loss_object():
    D = LinearCritic(torch.tensor([3.0, 0.0, 4.0, 0.0]))
    real, fake = torch.randn(2, 1, 2, 2), torch.randn(2, 1, 2, 2)
    wgan = get_loss(LossConfig(name="wgan-gp", gp_weight=10.0))
    assert wgan.penalty(D, real, fake).item() == pytest.approx(160.0)
    assert LOSSES["hinge"].penalty(D, real, fake).item() == 0.0


# --- R1 (Mescheder et al. 2018) ------------------------------------------------------------

def test_r1_of_a_linear_critic_is_its_squared_weight_norm():
    w = torch.tensor([3.0, 0.0, 4.0, 0.0])             # grad_x D = w: ||w||^2 = 25
    D = LinearCritic(w)
    real = torch.randn(6, 1, 2, 2, requires_grad=True)
    r1 = r1_penalty(D(real), real)
    torch.testing.assert_close(r1, torch.tensor(25.0))
    r1.backward()                                       # reaches D's weights: d/dw = 2w
    torch.testing.assert_close(D.w.grad, 2 * w)


def test_r1_of_a_quadratic_critic_is_the_mean_squared_gradient():
    real = torch.tensor([[1.0, 0.0], [0.0, 2.0]]).view(2, 1, 1, 2).requires_grad_(True)
    r1 = r1_penalty(QuadraticCritic()(real), real)      # grad 2x: |.|^2 = 4 and 16
    torch.testing.assert_close(r1, torch.tensor(10.0))


def test_r1_weight_laziness_and_the_one_penalty_rule():
    w = torch.tensor([3.0, 0.0, 4.0, 0.0])
    real = torch.randn(3, 1, 2, 2, requires_grad=True)
    loss = get_loss(LossConfig(name="hinge", r1_gamma=0.2, r1_every=4))
    # gamma / 2 * every * ||w||^2 = 0.1 * 4 * 25
    torch.testing.assert_close(loss.r1(LinearCritic(w)(real), real), torch.tensor(10.0))
    assert [loss.r1_due(s) for s in range(5)] == [True, False, False, False, True]
    assert not get_loss(LossConfig(name="hinge")).r1_due(0)
    with pytest.raises(ConfigError, match="choose one gradient penalty"):
        get_loss(LossConfig(name="wgan-gp", r1_gamma=1.0))
    with pytest.raises(ConfigError, match="r1_gamma must be >= 0"):
        get_loss(LossConfig(name="hinge", r1_gamma=-1.0))
