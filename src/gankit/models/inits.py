"""Weight initialisation schemes (`model.init`) and spectral normalisation.

Schemes touch convolutions, transposed convolutions and linear layers (and, for `dcgan`,
batch norm); label embeddings keep their own init (N(0, 1), Xavier for projections). When a
weight is spectrally normalised, the scheme writes the parametrisation's `original` tensor,
which is the trainable one.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

_WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def _weight(m: nn.Module) -> torch.Tensor:
    """The trainable weight tensor of `m`, through a spectral-norm parametrisation if any."""
    if parametrize.is_parametrized(m, "weight"):
        return m.parametrizations.weight.original
    return m.weight


@torch.no_grad()
def _xavier(m: nn.Module) -> None:
    if isinstance(m, _WEIGHTED):
        nn.init.xavier_uniform_(_weight(m))
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def _normal(bn_mean: float) -> Callable[[nn.Module], None]:
    """N(0, 0.02) weights, BN weights N(bn_mean, 0.02), zero biases."""
    @torch.no_grad()
    def init(m: nn.Module) -> None:
        if isinstance(m, _WEIGHTED):
            nn.init.normal_(_weight(m), 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, _NORMS) and m.affine:
            nn.init.normal_(m.weight, bn_mean, 0.02)
            nn.init.zeros_(m.bias)
    return init


def _default(m: nn.Module) -> None:
    """PyTorch's own initialisation, left as constructed."""


INITS: dict[str, Callable[[nn.Module], None]] = {
    "xavier": _xavier,    # Xavier/Glorot uniform weights, zero bias (report 000, 002)
    "dcgan": _normal(1.0),  # N(0, 0.02) weights, BN weight N(1, 0.02), zero bias (report 001)
    # Report 004 as written: "batch normalization layers ... drawing from the same normal
    # distribution" as the convolutions, N(0, 0.02), so BN starts by scaling features ~50x down.
    "normal": _normal(0.0),
    "default": _default,  # PyTorch's defaults (report 003; report 001's comparison)
}


def apply_init(module: nn.Module, scheme: str) -> nn.Module:
    """Initialise every layer of `module` in place with the named scheme (a key of INITS,
    checked by `build_models`); returns `module`."""
    module.apply(INITS[scheme])
    return module


_SN_LAYERS = (nn.Conv2d, nn.Linear, nn.Embedding)


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectrally normalise every convolution, linear layer and embedding of `module` in
    place (Miyato et al. 2018: one power iteration per training forward). Returns `module`."""
    for m in list(module.modules()):
        if isinstance(m, _SN_LAYERS) and not parametrize.is_parametrized(m, "weight"):
            spectral_norm(m)
    return module
