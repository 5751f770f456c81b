"""Fully connected G and D (reports 000 and 003); any image shape.

G: [z ‖ label vector] -> hidden layers (`g_hidden`) -> C*H*W -> tanh. The hidden activation is
ReLU (report 000), or LeakyReLU(0.2) followed by Dropout(`g_dropout`) when `g_dropout` > 0
(report 003's generator), so both reports' presets need no extra key.
D: [flattened image ‖ label vector] -> hidden layers (`d_hidden`), LeakyReLU(0.2) and
Dropout(`dropout`) if > 0 -> 1 logit; with `d_cond: projection` the label enters instead as
<embed(y), h> on the last hidden features (`onehot+projection`: both).
No batch norm (the reports' MLPs have none): `batch_norm` is ignored here.

Report 000's nets (nz 128, one-hot in G, Embedding(10, 10) in D): G 252,304 and D 236,645
parameters.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from gankit.config import ModelConfig
from gankit.models.base import Discriminator, Generator
from gankit.models.conditioning import d_cond_dim


class MLPGenerator(Generator):
    def __init__(self, cfg: ModelConfig, shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__(cfg.nz, shape, num_classes, cfg.g_cond, cfg.embed_dim)
        layers: list[nn.Module] = []
        width = cfg.nz + self.cond_dim
        for size in cfg.g_hidden:
            layers.append(nn.Linear(width, size))
            if cfg.g_dropout > 0:
                layers += [nn.LeakyReLU(0.2), nn.Dropout(cfg.g_dropout)]
            else:
                layers.append(nn.ReLU())
            width = size
        layers += [nn.Linear(width, math.prod(shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def _generate(self, z: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:
        return self.net(self.join(z, v)).view(z.shape[0], *self.shape)  # (B, C, H, W)


class MLPDiscriminator(Discriminator):
    def __init__(self, cfg: ModelConfig, shape: tuple[int, int, int], num_classes: int) -> None:
        hidden = list(cfg.d_hidden)
        feat = hidden[-1] if hidden else math.prod(shape)
        super().__init__(shape, num_classes, cfg.d_cond, cfg.embed_dim, feat, cfg.aux_classifier)
        layers: list[nn.Module] = []
        width = math.prod(shape) + d_cond_dim(cfg.d_cond, num_classes, cfg.embed_dim)
        for size in hidden:
            layers += [nn.Linear(width, size), nn.LeakyReLU(0.2)]
            if cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
            width = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, classes: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        y = self.labels(x, y)
        h = self.body(self.join_label(x.flatten(1), y))  # (B, C*H*W [+ E]) -> (B, F)
        return self.score(h, y, classes=classes)


def build(cfg: ModelConfig, shape: tuple[int, int, int],
          num_classes: int) -> tuple[Generator, Discriminator]:
    return MLPGenerator(cfg, shape, num_classes), MLPDiscriminator(cfg, shape, num_classes)
