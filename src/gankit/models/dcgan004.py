"""Report 004's DCGAN, layer for layer; 28x28 only (any number of channels).

D: Conv(C->16, k3, s2) BN LReLU(0.2); Conv(16->32, k5, s2) BN LReLU; Conv(32->64, k5, s2) BN
LReLU; Flatten; Linear(64->1). Sizes 28 -> 13 -> 5 -> 1.
G: z as (nz, 1, 1); ConvT(nz->256, k3, s2) BN ReLU; ConvT(256->128, k4, s1) BN ReLU;
ConvT(128->64, k3, s2) BN ReLU; ConvT(64->C, k4, s2) tanh. Sizes 1 -> 3 -> 6 -> 13 -> 28.
With nz = 64: G 747,841 and D 64,545 parameters.

The widths are the report's: `ngf`, `ndf`, `batch_norm` and `dropout` are ignored. A
conditional variant is offered as an extension (not in the report): the label vector joins z
in G; in D it joins the image as planes, or as a projection on the 64 flattened features.
"""
from __future__ import annotations

import torch
from torch import nn

from gankit.config import ConfigError, ModelConfig
from gankit.models.base import Discriminator, Generator
from gankit.models.conditioning import d_cond_dim

SIZE = 28


def _down(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, 2), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))


def _up(cin: int, cout: int, k: int, s: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, k, s), nn.BatchNorm2d(cout), nn.ReLU())


class DCGAN004Generator(Generator):
    def __init__(self, cfg: ModelConfig, shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__(cfg.nz, shape, num_classes, cfg.g_cond, cfg.embed_dim)
        self.net = nn.Sequential(
            _up(cfg.nz + self.cond_dim, 256, 3, 2),                  # 1 -> 3
            _up(256, 128, 4, 1),                                     # 3 -> 6
            _up(128, 64, 3, 2),                                      # 6 -> 13
            nn.ConvTranspose2d(64, shape[0], 4, 2), nn.Tanh())       # 13 -> 28

    def _generate(self, z: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:
        return self.net(self.join(z, v)[:, :, None, None])


class DCGAN004Discriminator(Discriminator):
    def __init__(self, cfg: ModelConfig, shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__(shape, num_classes, cfg.d_cond, cfg.embed_dim, 64, cfg.aux_classifier)
        cin = shape[0] + d_cond_dim(cfg.d_cond, num_classes, cfg.embed_dim)
        self.body = nn.Sequential(_down(cin, 16, 3),     # 28 -> 13
                                  _down(16, 32, 5),      # 13 -> 5
                                  _down(32, 64, 5),      # 5 -> 1
                                  nn.Flatten())
        self.head = nn.Linear(64, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, classes: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        y = self.labels(x, y)
        h = self.body(self.join_label(x, y))  # (B, 64)
        return self.score(h, y, classes=classes)


def build(cfg: ModelConfig, shape: tuple[int, int, int],
          num_classes: int) -> tuple[Generator, Discriminator]:
    if tuple(shape[1:]) != (SIZE, SIZE):
        raise ConfigError(f"model.arch=dcgan004 is report 004's fixed 28x28 network; the dataset's "
                          f"images are {shape[1]}x{shape[2]}. Use arch=dcgan or resnet, which "
                          "size themselves from the data")
    if cfg.g_dropout > 0 or cfg.dropout > 0:
        raise ConfigError("model.arch=dcgan004 has no dropout (report 004's exact net); set "
                          "model.dropout=0 and model.g_dropout=0")
    G = DCGAN004Generator(cfg, shape, num_classes)
    return G, DCGAN004Discriminator(cfg, shape, num_classes)
