"""Report 002's per-class discriminator accuracy on real and generated images."""
import numpy as np
import torch
from torch import nn

from gankit.metrics.classes import discriminator_accuracy_per_class

from .standins import MemorizingG


class ConstantD(nn.Module):
    """Says `sign` to every image; records whether it was given labels."""

    def __init__(self, sign: float, conditional: bool = True):
        super().__init__()
        self.sign, self.conditional, self.got_labels = sign, conditional, []
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x, y):
        self.got_labels.append(y is not None)
        return torch.full((len(x),), self.sign)


class LabelD(nn.Module):
    """Real (logit +1) only for labels 0-4: accuracy on real images of 0-4 is 1, of 5-9 is 0."""
    conditional = True

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x, y):
        return torch.where(y < 5, 1.0, -1.0)


def test_constant_discriminators(memorizer):
    d = ConstantD(+1.0)
    r = discriminator_accuracy_per_class(d, memorizer, "mnist", n_per_class=20)
    np.testing.assert_array_equal(r["real"], np.ones(10))
    np.testing.assert_array_equal(r["fake"], np.zeros(10))
    assert r["n_real"].tolist() == [20] * 10 and r["n_fake"].tolist() == [20] * 10
    assert all(d.got_labels)
    r = discriminator_accuracy_per_class(ConstantD(-1.0), memorizer, "mnist", n_per_class=20)
    np.testing.assert_array_equal(r["real"], np.zeros(10))
    np.testing.assert_array_equal(r["fake"], np.ones(10))


def test_labels_reach_the_discriminator(memorizer):
    r = discriminator_accuracy_per_class(LabelD(), memorizer, "mnist", n_per_class=10)
    np.testing.assert_array_equal(r["real"], [1] * 5 + [0] * 5)
    np.testing.assert_array_equal(r["fake"], [0] * 5 + [1] * 5)


def test_unconditional_generator_grouped_by_predicted_class(mnist_train):
    G = MemorizingG(mnist_train.images, mnist_train.labels, conditional=False)
    d = ConstantD(-1.0, conditional=False)
    r = discriminator_accuracy_per_class(d, G, "mnist", n_per_class=30)
    assert not any(d.got_labels)
    assert r["n_fake"].sum() == 300 and (r["n_fake"] > 0).all()
    np.testing.assert_array_equal(r["fake"], np.ones(10))
