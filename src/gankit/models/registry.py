"""The architecture registry and `build_models`, the one entry point used by training.

A new architecture is one module with a `build(cfg, shape, num_classes) -> (G, D)` function
plus one line in ARCHITECTURES.
"""
from __future__ import annotations

import dataclasses

from typing import Callable

from gankit.config import ConfigError, ModelConfig
from gankit.models import dcgan, dcgan004, mlp, resnet
from gankit.models.base import Discriminator, Generator
from gankit.models.conditioning import D_CONDS, G_CONDS
from gankit.models.inits import INITS, apply_init, apply_spectral_norm

Builder = Callable[[ModelConfig, tuple[int, int, int], int], tuple[Generator, Discriminator]]

ARCHITECTURES: dict[str, Builder] = {
    "mlp": mlp.build,            # reports 000, 003
    "dcgan": dcgan.build,        # report 001 (and gankit's default preset)
    "dcgan004": dcgan004.build,  # report 004's exact 28x28 net
    "resnet": resnet.build,      # report 002
}

# The ModelConfig fields each family reads (or refuses when set: dropout where there is none)
# besides SHARED_FIELDS, which every family reads. `gankit.training.validate` warns when a
# field a family ignores is set away from its default.
SHARED_FIELDS = ("arch", "conditional", "nz", "g_cond", "d_cond", "embed_dim", "init",
                 "spectral_norm", "aux_classifier", "truncation_psi")
FAMILY_FIELDS: dict[str, tuple[str, ...]] = {
    "mlp": ("g_hidden", "d_hidden", "dropout", "g_dropout"),
    "dcgan": ("ngf", "ndf", "dropout", "batch_norm", "d_norm", "g_dropout", "mbstd"),
    "dcgan004": ("dropout", "g_dropout"),
    "resnet": ("ngf", "ndf", "batch_norm", "d_norm", "dropout", "g_dropout"),
}


# model key -> its valid choices: every choice of a model config is checked here, once.
CHOICES: dict[str, tuple[str, ...]] = {"arch": tuple(ARCHITECTURES), "init": tuple(INITS),
                                       "g_cond": G_CONDS, "d_cond": D_CONDS,
                                       "d_norm": dcgan.D_NORMS}


def _check(cfg: ModelConfig, shape: tuple[int, int, int], num_classes: int) -> None:
    """Every setting of `cfg` that no family could build, as a ConfigError naming the key.
    (The families refuse only what they alone do not support.)"""
    for key, valid in CHOICES.items():
        if getattr(cfg, key) not in valid:
            raise ConfigError(f"unknown model.{key} {getattr(cfg, key)!r}; valid: "
                              f"{', '.join(valid)}")
    if len(shape) != 3 or any(int(s) < 1 for s in shape):
        raise ConfigError(f"image shape must be (C, H, W), got {tuple(shape)}")
    if cfg.conditional and num_classes < 1:
        raise ConfigError("model.conditional=true needs a labelled dataset, but this one has no "
                          "classes; set model.conditional=false")
    if cfg.aux_classifier and cfg.conditional and cfg.d_cond == "none":
        raise ConfigError("model.aux_classifier=true with model.d_cond=none: the classifier head "
                          "belongs to a D that is given the labels; choose another d_cond or "
                          "set model.aux_classifier=false")
    for key in ("dropout", "g_dropout"):
        p = getattr(cfg, key)
        if not 0 <= p < 1:
            raise ConfigError(f"model.{key} must be in [0, 1), got {p}")
    for key in ("ngf", "ndf", "nz", "embed_dim"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"model.{key} must be positive, got {getattr(cfg, key)}")
    for key in ("g_hidden", "d_hidden"):
        if any(s < 1 for s in getattr(cfg, key)):
            raise ConfigError(f"model.{key} sizes must be positive, got {getattr(cfg, key)}")


def build_models(cfg: ModelConfig, shape: tuple[int, int, int],
                 num_classes: int) -> tuple[Generator, Discriminator]:
    """G and D for images of `shape` (C, H, W), initialised with `cfg.init`, D spectrally
    normalised if `cfg.spectral_norm`. `num_classes` is the dataset's (0 if unlabelled);
    it is used only when `cfg.conditional`. Raises ConfigError for settings that cannot work."""
    shape = tuple(int(s) for s in shape)
    _check(cfg, shape, num_classes)
    k = num_classes if cfg.conditional else 0
    family = ARCHITECTURES[cfg.arch]
    if k and cfg.d_cond == "none":  # report 001, question 7: G gets the label, D does not
        G, _ = family(dataclasses.replace(cfg, d_cond="onehot"), shape, k)
        _, D = family(cfg, shape, 0)
    else:
        G, D = family(cfg, shape, k)
    apply_init(G, cfg.init)
    apply_init(D, cfg.init)
    G.truncation_psi = float(cfg.truncation_psi)
    if cfg.spectral_norm:
        apply_spectral_norm(D)  # after init, so the power iteration starts from the final weights
    return G, D
