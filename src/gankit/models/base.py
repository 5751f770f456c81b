"""What every generator and discriminator share: the (z, y) -> image and (x, y) -> logit
contracts, the label handling around them, sizing helpers and parameter counts."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from gankit.config import ConfigError
from gankit.models.conditioning import (DCond, LabelEncoder, check_labels, conditional_norm,
                                        join_planes)
from gankit.models.mbstd import MinibatchStd


class Generator(nn.Module):
    """G(z (B, nz), y (B,) int64 | None) -> images (B, C, H, W) in [-1, 1] (tanh).

    Subclasses build their layers and implement `_generate(z, v)`, where `v` is the label
    vector (B, E) or None. A conditional G exposes `label_vector(y)` and `forward_vector(z, v)`
    so that exploration can feed any vector in label space (interpolations, noise, vectors
    outside the learnt range). An unconditional G ignores `y`.

    `truncation_psi` (`model.truncation_psi`) scales z in eval mode only, so every sample of
    a trained G (eval, sampling, exploration) is drawn as the run's config says while training
    (train mode) sees z ~ N(0, I) as it is.

    A family whose G gives its BatchNorm layers per-class gains (`g_cond` ...+cbn) sets
    `supports_conditional_norm` True; the others refuse such a `g_cond` here.
    """

    supports_conditional_norm = False

    def __init__(self, nz: int, shape: tuple[int, int, int], num_classes: int, g_cond: str,
                 embed_dim: int) -> None:
        super().__init__()
        if num_classes > 0 and conditional_norm(g_cond) and not self.supports_conditional_norm:
            raise ConfigError(f"model.g_cond={g_cond}: this architecture's G has no conditional "
                              "BatchNorm; use arch dcgan or g_cond onehot")
        self.nz = nz
        self.shape = tuple(shape)
        self.num_classes = num_classes
        self.conditional = num_classes > 0
        self.label = LabelEncoder(g_cond, num_classes, embed_dim) if self.conditional else None
        self.truncation_psi = 1.0

    @property
    def cond_dim(self) -> int:
        """Size E of the label vector joined to z (0 when unconditional)."""
        return self.label.dim if self.label is not None else 0

    def label_vector(self, y: torch.Tensor | None) -> torch.Tensor:
        """The vector (B, E) that stands for labels y in G's input: one-hot or learnt embedding."""
        if self.label is None:
            raise ValueError("this generator is unconditional: it has no label vectors")
        return self.label(y if y is None else y.to(self._device()))

    def forward_vector(self, z: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:
        """Images from latents z (B, nz) and arbitrary label vectors v (B, E)."""
        if z.ndim != 2 or z.shape[1] != self.nz:
            raise ValueError(f"z must be (B, {self.nz}), got {tuple(z.shape)}")
        if self.conditional:
            if v is None or v.ndim != 2 or v.shape != (z.shape[0], self.cond_dim):
                got = None if v is None else tuple(v.shape)
                raise ValueError(f"label vectors must be (B, {self.cond_dim}) with B = "
                                 f"{z.shape[0]}, got {got}")
        else:
            v = None
        if not self.training and self.truncation_psi != 1.0:
            z = z * self.truncation_psi
        return self._generate(z, v)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        v = self.label_vector(y) if self.conditional else None
        if self.conditional and v.shape[0] != z.shape[0]:
            raise ValueError(f"{z.shape[0]} latents but {v.shape[0]} labels")
        return self.forward_vector(z, v)

    def _generate(self, z: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    @staticmethod
    def join(z: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:
        """[z ‖ v] (B, nz + E), or z alone."""
        return z if v is None else torch.cat([z, v.to(z.dtype)], dim=1)


class Discriminator(nn.Module):
    """D(x (B, C, H, W), y (B,) int64 | None) -> raw logits (B,); with `classes=True` also
    the class logits (B, K) of its classifier head.

    `self.cond` (a DCond, or None when unconditional) carries the label: a vector joined to
    the input or to a feature map (`onehot`, `embedding`), or a projection term added to the
    logit (`projection`). An unconditional D ignores `y`. `self.classifier` (with
    `model.aux_classifier`, a conditional D only) is a linear head on the same last features
    that predicts the label (AC-GAN, Odena et al. 2017; the losses are the trainer's).
    """

    def __init__(self, shape: tuple[int, int, int], num_classes: int, d_cond: str,
                 embed_dim: int, feat_dim: int, aux_classifier: bool = False) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.num_classes = num_classes
        self.conditional = num_classes > 0
        self.d_cond = d_cond if self.conditional else None
        self.cond = DCond(d_cond, num_classes, embed_dim, feat_dim) if self.conditional else None
        self.classifier = (nn.Linear(feat_dim, num_classes)
                           if aux_classifier and self.conditional else None)

    def score(self, h: torch.Tensor, y: torch.Tensor | None,
              features: torch.Tensor | None = None, classes: bool = False
              ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The logit (B,) from D's last features: `self.head(h)`, plus the projection term on
        `features` (B, F) (default h) when the label is projected; with `classes`, also the
        classifier head's logits (B, K) on `features`."""
        features = h if features is None else features
        out = self.head(h).view(-1)
        if self.cond is not None:
            out = out + self.cond.project(features, y)
        if not classes:
            return out
        if self.classifier is None:
            raise ValueError("this discriminator has no classifier head "
                             "(model.aux_classifier=true, conditional models only)")
        return out, self.classifier(features)

    def label_vector(self, y: torch.Tensor | None) -> torch.Tensor | None:
        """The label vector (B, E) that D joins to its input or features, or None when nothing
        is joined (unconditional D, or a projected label)."""
        if self.cond is None or not self.cond.dim:
            return None
        return self.cond.vector(y)

    def join_label(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """h with the label vector joined on dim 1: as it is to features (B, F), as constant
        planes to a map (B, C, H, W) (Reed et al. 2016). h itself when nothing is joined."""
        v = self.label_vector(y)
        if v is None:
            return h
        return torch.cat([h, v.to(h.dtype)], dim=1) if h.ndim == 2 else join_planes(h, v)

    def labels(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor | None:
        """Checked labels (B,) for a conditional D, None otherwise."""
        if x.ndim != 4 or tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"D expects images (B, {', '.join(map(str, self.shape))}), "
                             f"got {tuple(x.shape)}")
        if not self.conditional:
            return None
        y = check_labels(y, self.num_classes, "discriminator").to(x.device)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"{x.shape[0]} images but {y.shape[0]} labels")
        return y


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters (shared tensors once; spectral norm adds none)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def describe(G: nn.Module, D: nn.Module) -> str:
    """'G 285,375 params, D 618,751 params'."""
    return f"G {count_parameters(G):,} params, D {count_parameters(D):,} params"


def upsampling_plan(shape: tuple[int, int, int], arch: str) -> tuple[int, int]:
    """(s0, k): a square HxW image is reached from s0 x s0 by k doublings, s0 >= 4 as small
    as possible (28: 7 -> 14 -> 28, k = 2; 32: 4 -> 8 -> 16 -> 32, k = 3; 8: 4 -> 8)."""
    _, h, w = shape
    if h != w:
        raise ConfigError(f"model.arch={arch} needs square images, the dataset's are {h}x{w}; "
                          "use arch=mlp for other shapes")
    k = 0
    while h % (2 ** (k + 1)) == 0 and h // (2 ** (k + 1)) >= 4:
        k += 1
    if k == 0:
        raise ConfigError(f"model.arch={arch} cannot produce {h}x{w} images: it doubles the "
                          "size from a base of at least 4x4, so H must be 2^k times a number "
                          ">= 4 (e.g. 8, 14, 28, 32); use arch=mlp for other shapes")
    return h // 2 ** k, k


def batchnorm_layers(module: nn.Module) -> list[nn.Module]:
    """The BatchNorm layers of a network (whose statistics tie a batch's images together)."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def batch_coupled(module: nn.Module) -> bool:
    """Whether one image's output depends on the other images of its batch: BatchNorm in
    training, or a minibatch standard deviation channel. Such a D must see real and generated
    images in separate batches."""
    return bool(batchnorm_layers(module)) or any(isinstance(m, MinibatchStd)
                                                 for m in module.modules())


@contextmanager
def evaluating(G: nn.Module) -> Iterator[nn.Module]:
    """G in eval mode (BatchNorm on running statistics, dropout off) inside the block, and back
    to the mode it was in afterwards, even when the block raises."""
    was = G.training
    G.eval()
    try:
        yield G
    finally:
        G.train(was)


@contextmanager
def judging(D: nn.Module) -> Iterator[nn.Module]:
    """D scoring images the way it does in training, for diagnostics: dropout and spectral
    norm's power iteration off, but BatchNorm on the statistics of each batch it is given.

    Training feeds D real and fake batches separately, so BN's running averages mix the two
    distributions and match neither: in eval mode such a D may call nearly every real image
    fake. BN's buffers are restored on exit, so diagnostics change nothing in training.
    """
    was = D.training
    bns = batchnorm_layers(D)
    saved = [[b.detach().clone() for b in m.buffers()] for m in bns]
    D.eval()
    for m in bns:
        m.train()
    try:
        yield D
    finally:
        with torch.no_grad():
            for m, bufs in zip(bns, saved):
                for b, s in zip(m.buffers(), bufs):
                    b.copy_(s)
        D.train(was)
