"""ResNet cGAN of report 002.

G (after Gulrajani et al. 2017): Linear([z ‖ label vector] -> ngf/2 x s0 x s0), then k
residual up-blocks [BN ReLU Upsample(nearest) Conv3x3 BN ReLU Conv3x3] + [Upsample, Conv1x1
if the width changes], each ngf wide, then BN ReLU Conv3x3 -> C, tanh. Resize-conv only, no
transposed convolution (Odena et al.). 28x28: 7 -> 14 -> 28; 32x32: 4 -> 8 -> 16 -> 32.

D (pre-activation blocks of He et al. 2016): Conv3x3 C -> ndf, then k down-blocks and one
plain block [BN ReLU Conv3x3 BN ReLU Conv3x3 (AvgPool2)] + [Conv1x1 if the width changes or
it downsamples, AvgPool2], widths ndf, 2 ndf, 2 ndf, ...; BN ReLU; mean over space; Linear -> 1.
The label is joined in the middle of D (Reed et al. 2016): its vector (one-hot or embedding)
broadcast as planes and concatenated to the feature map after the first half of the blocks.
With `d_cond: projection` nothing is concatenated and the logit gets + <embed(y), h> on the
pooled features (Miyato & Koyama 2018). BN follows `batch_norm` (report 002: "BN after each
conv"), except in a projection D with spectral norm; spectral norm on every D layer when
`spectral_norm`. `dropout`/`g_dropout` are not supported.

Widths chosen so that the resnet-cgan-r002 preset (ngf = ndf = 64, nz 100, embedding 10, 28x28) comes
close to the report's counts: G 306,693 vs 285,375 (+7.5%), D 618,041 vs 618,751 (-0.1%).
The report shows its layers only in figures that are lost, so the exact layout is unknown.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gankit.config import ConfigError, ModelConfig
from gankit.models.base import Discriminator, Generator, upsampling_plan
from gankit.models.conditioning import d_cond_dim
from gankit.models.dcgan import d_uses_batch_norm
from gankit.models.pooling import GlobalMeanPool


def _norm(c: int, on: bool) -> nn.Module:
    return nn.BatchNorm2d(c) if on else nn.Identity()


class UpBlock(nn.Module):
    """Gulrajani et al.'s generator block with nearest-neighbour resize-conv (x2)."""

    # `kernels: fast` runs each BatchNorm and its ReLU as one kernel (models/fast_batchnorm.py;
    # report 002's step 0.91x, CPU time, alternated in one process, 2026-12-07)
    bn_act_pairs = (("bn1", "act1"), ("bn2", "act2"))

    def __init__(self, cin: int, cout: int, bn: bool) -> None:
        super().__init__()
        self.bn1, self.act1, self.conv1 = _norm(cin, bn), nn.ReLU(), nn.Conv2d(cin, cout, 3, 1, 1)
        self.bn2, self.act2 = _norm(cout, bn), nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(self.act1(self.bn1(x)), scale_factor=2, mode="nearest")
        h = self.conv2(self.act2(self.bn2(self.conv1(h))))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class DownBlock(nn.Module):
    """He et al.'s pre-activation block, optionally halving the size (average pooling)."""

    bn_act_pairs = UpBlock.bn_act_pairs

    def __init__(self, cin: int, cout: int, bn: bool, down: bool) -> None:
        super().__init__()
        self.bn1, self.act1, self.conv1 = _norm(cin, bn), nn.ReLU(), nn.Conv2d(cin, cout, 3, 1, 1)
        self.bn2, self.act2 = _norm(cout, bn), nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1) if (cin != cout or down) else nn.Identity()
        self.down = down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act1(self.bn1(x)))
        # one pool of the sum, not a pool of each (the same function: pooling is linear):
        # report 002's step 0.96x, CPU time, alternated in one process, 2026-12-07
        h = self.conv2(self.act2(self.bn2(h))) + self.skip(x)
        return F.avg_pool2d(h, 2) if self.down else h


class ResNetGenerator(Generator):
    def __init__(self, cfg: ModelConfig, shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__(cfg.nz, shape, num_classes, cfg.g_cond, cfg.embed_dim)
        self.s0, k = upsampling_plan(shape, "resnet")
        self.c0 = max(cfg.ngf // 2, 1)
        bn = cfg.batch_norm
        self.fc = nn.Linear(cfg.nz + self.cond_dim, self.c0 * self.s0 * self.s0)
        widths = [self.c0] + [cfg.ngf] * k
        self.blocks = nn.Sequential(*[UpBlock(a, b, bn) for a, b in zip(widths, widths[1:])])
        self.out = nn.Sequential(_norm(cfg.ngf, bn), nn.ReLU(),
                                 nn.Conv2d(cfg.ngf, shape[0], 3, 1, 1), nn.Tanh())

    def _generate(self, z: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:
        h = self.fc(self.join(z, v)).view(z.shape[0], self.c0, self.s0, self.s0)
        return self.out(self.blocks(h))  # (B, C, H, W)


class ResNetDiscriminator(Discriminator):
    def __init__(self, cfg: ModelConfig, shape: tuple[int, int, int], num_classes: int) -> None:
        _, k = upsampling_plan(shape, "resnet")
        widths = [cfg.ndf * min(2 ** i, 2) for i in range(k + 1)]  # k down-blocks + 1 plain
        super().__init__(shape, num_classes, cfg.d_cond, cfg.embed_dim, widths[-1],
                         cfg.aux_classifier)
        bn = d_uses_batch_norm(cfg, num_classes > 0)
        self.stem = nn.Conv2d(shape[0], cfg.ndf, 3, 1, 1)
        self.mid = (k + 1) // 2  # the label joins before block `mid` (28x28: at 14x14)
        extra = d_cond_dim(cfg.d_cond, num_classes, cfg.embed_dim)
        blocks, cin = [], cfg.ndf
        for i, cout in enumerate(widths):
            blocks.append(DownBlock(cin + (extra if i == self.mid else 0), cout, bn, down=i < k))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.final = nn.Sequential(_norm(widths[-1], bn), nn.ReLU())
        self.head = nn.Linear(widths[-1], 1)
        self.pool = GlobalMeanPool()

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, classes: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        y = self.labels(x, y)
        h = self.stem(x)
        for i, block in enumerate(self.blocks):
            h = block(self.join_label(h, y) if i == self.mid else h)
        # Mean- rather than sum-pooled (SNGAN sums): with BN in D a sum makes the first
        # logits ~20 at 28x28, saturating BCE from the first step.
        h = self.pool(self.final(h))  # (B, c)
        return self.score(h, y, classes=classes)


def build(cfg: ModelConfig, shape: tuple[int, int, int],
          num_classes: int) -> tuple[Generator, Discriminator]:
    if cfg.g_dropout > 0 or cfg.dropout > 0:
        raise ConfigError("model.arch=resnet has no dropout; set model.dropout=0 and "
                          "model.g_dropout=0 (dropout is supported by mlp and dcgan)")
    return ResNetGenerator(cfg, shape, num_classes), ResNetDiscriminator(cfg, shape, num_classes)
