"""DCGAN (Radford et al. 2016) sized from the image (report 001), conditional or not.

G: [z ‖ label vector] as a 1x1 map -> ConvT(k = s0) to s0 x s0 -> k x (ConvT k4 s2 p1)
doublings -> tanh; widths ngf * 2^(k-1), ..., ngf, then C. 28x28: 7 -> 14 -> 28;
32x32: 4 -> 8 -> 16 -> 32. BN + ReLU after each hidden layer when `batch_norm`; with `g_cond`
onehot+cbn that BN takes a gain and bias per class from the label (conditional BatchNorm).
D: the mirror: k x (Conv k4 s2 p1, LeakyReLU(0.2)), widths ndf, 2 ndf, ..., BN after all but
the first when `batch_norm`, Dropout(`dropout`) if > 0, then Conv(k = s0) to one logit.
Label in D (`d_cond`): `onehot` / `embedding` planes concatenated to the image,
`projection`: logit + <embed(y), mean-pooled last features>, or `onehot+projection`: both. BN in D follows `d_norm`: with
`auto`, `batch_norm`, except that BN is dropped when both `projection` and `spectral_norm` are
set (the SN-projection recipe of Miyato & Koyama has no BN in D; spectral norm already
controls D's scale); `batch` or `none` say it outright. `mbstd` > 0 adds a minibatch
standard deviation channel (groups of `mbstd` images) before D's last conv (models/mbstd.py).
`g_dropout` is not supported.
"""
from __future__ import annotations

import torch
from torch import nn

from gankit.config import ConfigError, ModelConfig
from gankit.models.base import Discriminator, Generator, upsampling_plan
from gankit.models.conditioning import (ConditionalBatchNorm2d, LabelledSequential,
                                        PlanesConv2d, conditional_norm, d_cond_dim, projects)
from gankit.models.mbstd import MinibatchStd
from gankit.models.pooling import GlobalMeanPool


def _norm2d(c: int, on: bool) -> nn.Module:
    return nn.BatchNorm2d(c) if on else nn.Identity()


# model.d_norm: BatchNorm in a conv D (the MLP families have none to choose).
D_NORMS = ("auto", "batch", "none")


def d_uses_batch_norm(cfg: ModelConfig, conditional: bool) -> bool:
    """BN in a conv D: `d_norm` batch or none; auto is as `batch_norm` says, except with
    projection + spectral norm."""
    if cfg.d_norm != "auto":
        return cfg.d_norm == "batch"
    projection = conditional and projects(cfg.d_cond)
    return cfg.batch_norm and not (projection and cfg.spectral_norm)


class DCGANGenerator(Generator):
    supports_conditional_norm = True

    def __init__(self, cfg: ModelConfig, shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__(cfg.nz, shape, num_classes, cfg.g_cond, cfg.embed_dim)
        s0, k = upsampling_plan(shape, "dcgan")
        widths = [cfg.ngf * 2 ** (k - 1 - i) for i in range(k)]  # s0, 2 s0, ..., H/2
        bn = cfg.batch_norm
        cbn = self.conditional and conditional_norm(cfg.g_cond)
        if cbn and not bn:
            raise ConfigError(f"model.g_cond={cfg.g_cond} gives G's BatchNorm layers a gain and "
                              "bias per class, but model.batch_norm=false; set it true or "
                              "choose g_cond onehot")

        def norm(c: int) -> nn.Module:
            return ConditionalBatchNorm2d(c, self.cond_dim) if cbn else _norm2d(c, bn)

        layers: list[nn.Module] = [
            nn.ConvTranspose2d(cfg.nz + self.cond_dim, widths[0], s0, 1, 0, bias=not bn),
            norm(widths[0]), nn.ReLU()]
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=not bn), norm(cout),
                       nn.ReLU()]
        layers += [nn.ConvTranspose2d(widths[-1], shape[0], 4, 2, 1), nn.Tanh()]
        self.net = LabelledSequential(*layers)  # v reaches the conditional BNs, if any

    def _generate(self, z: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:
        return self.net(self.join(z, v)[:, :, None, None], v)  # (B, nz+E, 1, 1) -> (B, C, H, W)


class DCGANDiscriminator(Discriminator):
    def __init__(self, cfg: ModelConfig, shape: tuple[int, int, int], num_classes: int) -> None:
        s0, k = upsampling_plan(shape, "dcgan")
        widths = [cfg.ndf * 2 ** i for i in range(k)]
        super().__init__(shape, num_classes, cfg.d_cond, cfg.embed_dim, widths[-1],
                         cfg.aux_classifier)
        bn = d_uses_batch_norm(cfg, num_classes > 0)
        label_dim = d_cond_dim(cfg.d_cond, num_classes, cfg.embed_dim)
        cin = shape[0]
        layers: list[nn.Module] = []
        for i, cout in enumerate(widths):
            norm = bn and i > 0
            conv = (PlanesConv2d(cin, label_dim, cout, 4, 2, 1, bias=not norm)
                    if i == 0 and label_dim else nn.Conv2d(cin, cout, 4, 2, 1, bias=not norm))
            layers += [conv, _norm2d(cout, norm), nn.LeakyReLU(0.2)]
            if cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
            cin = cout
        self.body = LabelledSequential(*layers)  # the label planes reach the first conv
        self.mbstd = MinibatchStd(cfg.mbstd) if cfg.mbstd else nn.Identity()
        self.head = nn.Conv2d(widths[-1] + (1 if cfg.mbstd else 0), 1, s0, 1, 0)  # -> (B, 1, 1, 1)
        self.pool = GlobalMeanPool()

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, classes: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        y = self.labels(x, y)
        h = self.body(x, self.label_vector(y))  # (B, c, s0, s0)
        # The projection on mean- rather than sum-pooled features: with psi a small-init conv,
        # a sum over s0 x s0 would let the class term dominate the first logits (~15 vs ~0.5
        # at 28x28).
        return self.score(self.mbstd(h), y, features=self.pool(h), classes=classes)


def build(cfg: ModelConfig, shape: tuple[int, int, int],
          num_classes: int) -> tuple[Generator, Discriminator]:
    if cfg.g_dropout > 0:
        raise ConfigError("model.g_dropout is only supported by arch=mlp")
    return DCGANGenerator(cfg, shape, num_classes), DCGANDiscriminator(cfg, shape, num_classes)
