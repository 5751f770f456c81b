"""Generators and discriminators: one module per family, built by name from a ModelConfig.

Contracts (docs/ARCHITECTURE.md): `G(z (B, nz), y (B,) | None) -> (B, C, H, W)` in [-1, 1],
with `nz`, `num_classes`, `conditional`, and for conditional G `label_vector(y)` and
`forward_vector(z, v)`; `D(x, y | None) -> (B,)` raw logits.
"""
from gankit.models.base import (Discriminator, Generator, count_parameters, describe, evaluating,
                                judging)
from gankit.models.conditioning import D_CONDS, G_CONDS
from gankit.models.dcgan import D_NORMS
from gankit.models.inits import INITS, apply_init, apply_spectral_norm
from gankit.models.registry import ARCHITECTURES, build_models

__all__ = ["ARCHITECTURES", "D_CONDS", "D_NORMS", "Discriminator", "G_CONDS", "Generator", "INITS",
           "apply_init", "apply_spectral_norm", "build_models", "count_parameters", "describe",
           "evaluating", "judging"]
