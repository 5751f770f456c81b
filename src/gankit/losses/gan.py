"""Adversarial losses as pure functions of D's raw logits, and the registry LOSSES.

Every loss is a mean over the batch and is computed with softplus / relu on logits, never
log(sigmoid(.)), so logits of +-100 give finite values and gradients. Identities used:
-log sigmoid(l) = softplus(-l) and -log(1 - sigmoid(l)) = softplus(l).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.config import ConfigError, LossConfig
from gankit.losses.penalty import gradient_penalty, r1_penalty

# --- discriminator losses: (real_logits (B,), fake_logits (B,)) -> scalar -------------------


def bce_d_loss(real: Tensor, fake: Tensor, smoothing: float = 0.0) -> Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))] with D = sigmoid(logit). One-sided label smoothing
    (Salimans et al. 2016) gives real images the target 1 - smoothing."""
    t = 1.0 - smoothing
    real_term = t * F.softplus(-real) + (1.0 - t) * F.softplus(real) if smoothing else \
        F.softplus(-real)
    return real_term.mean() + F.softplus(fake).mean()


def hinge_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))] (Lim & Ye 2017; Miyato et al. 2018)."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def lsgan_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2], a = 0, b = 1 (Mao et al. 2017)."""
    return 0.5 * (real - 1.0).pow(2).mean() + 0.5 * fake.pow(2).mean()


def wgan_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """E[D(G(z))] - E[D(x)]: the critic's loss; the gradient penalty is added apart."""
    return fake.mean() - real.mean()


# --- generator losses: fake_logits (B,) -> scalar ----------------------------------------


def minimax_g_loss(fake: Tensor) -> Tensor:
    """E[log(1 - D(G(z)))] = -E[softplus(l)], minimised by G (Goodfellow et al.'s saturating
    form, report 000). Gradient per logit -sigmoid(l) / B: weak where D rejects fakes."""
    return -F.softplus(fake).mean()


def nonsaturating_g_loss(fake: Tensor) -> Tensor:
    """-E[log D(G(z))] = E[softplus(-l)]. Gradient per logit -(1 - sigmoid(l)) / B."""
    return F.softplus(-fake).mean()


def hinge_g_loss(fake: Tensor) -> Tensor:
    """-E[D(G(z))]."""
    return -fake.mean()


def lsgan_g_loss(fake: Tensor) -> Tensor:
    """1/2 E[(D(G(z)) - c)^2], c = 1."""
    return 0.5 * (fake - 1.0).pow(2).mean()


def wgan_g_loss(fake: Tensor) -> Tensor:
    """-E[D(G(z))]."""
    return -fake.mean()


# --- the loss objects ----------------------------------------------------------------------


@dataclass(frozen=True)
class GANLoss:
    """A pair of D and G losses on logits, with the options that change them.

    `d_average` halves D's loss, i.e. the mean of its real and fake terms (report 004)
    instead of their sum (the usual form, report 000). `label_smoothing` applies to BCE
    losses only. When `gradient_penalty` is set, training adds `penalty(D, real, fake, y)`
    (= gp_weight * gradient_penalty) to D's loss. With `r1_gamma` > 0, training adds
    `r1(real_logits, real)` every `r1_every` D steps (any loss but wgan-gp).
    """
    name: str
    d_fn: Callable[..., Tensor]
    g_fn: Callable[[Tensor], Tensor]
    gradient_penalty: bool = False
    gp_weight: float = 0.0
    label_smoothing: float = 0.0
    d_average: bool = False
    smoothable: bool = False  # accepts label_smoothing (BCE losses)
    r1_gamma: float = 0.0
    r1_every: int = 1
    aux_weight: float = 0.0
    g_aux_weight: float | None = None  # G's aux term (None: aux_weight)

    def __post_init__(self) -> None:
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"loss.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.label_smoothing and not self.smoothable:
            raise ConfigError(f"loss.label_smoothing applies to BCE losses (minimax, "
                              f"nonsaturating), not to {self.name!r}; set it to 0")
        if self.gp_weight < 0:
            raise ConfigError(f"loss.gp_weight must be >= 0, got {self.gp_weight}")
        if self.aux_weight < 0 or (self.g_aux_weight or 0) < 0:
            raise ConfigError(f"loss.aux_weight and loss.g_aux_weight must be >= 0, got "
                              f"{self.aux_weight} and {self.g_aux_weight}")
        if self.r1_gamma < 0 or self.r1_every < 1:
            raise ConfigError(f"loss.r1_gamma must be >= 0 and loss.r1_every >= 1, got "
                              f"{self.r1_gamma} and {self.r1_every}")
        if self.r1_gamma and self.gradient_penalty:
            raise ConfigError(f"loss.r1_gamma={self.r1_gamma:g} with loss.name={self.name}: "
                              "choose one gradient penalty (set loss.r1_gamma=0, or another "
                              "loss such as nonsaturating or hinge)")

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """D's loss (scalar) from its logits on real (B,) and generated (B',) images."""
        real, fake = real_logits.reshape(-1), fake_logits.reshape(-1)
        if self.smoothable:
            loss = self.d_fn(real, fake, smoothing=self.label_smoothing)
        else:
            loss = self.d_fn(real, fake)
        return 0.5 * loss if self.d_average else loss

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        """G's loss (scalar) from D's logits on generated images (B,)."""
        return self.g_fn(fake_logits.reshape(-1))

    def penalty(self, D: torch.nn.Module, real: Tensor, fake: Tensor, y: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """gp_weight * gradient_penalty(...) when this loss uses one, else a zero scalar."""
        if not self.gradient_penalty or self.gp_weight == 0:
            return real.new_zeros(())
        return self.gp_weight * gradient_penalty(D, real, fake, y, generator=generator)


    def r1_due(self, step: int) -> bool:
        """True when D step number `step` (from 0) adds the R1 penalty."""
        return self.r1_gamma > 0 and step % self.r1_every == 0

    def r1(self, real_logits: Tensor, real: Tensor) -> Tensor:
        """gamma / 2 * E||grad_x D(x)||^2 on real images, times r1_every (lazy regularisation
        keeps the same strength per image when it runs every r1_every steps: Karras et al.
        2020). `real` must require grad and `real_logits` be D's logits on it."""
        return 0.5 * self.r1_gamma * self.r1_every * r1_penalty(real_logits, real)

    def aux(self, class_logits: Tensor, y: Tensor, generator: bool = False) -> Tensor:
        """Weighted cross-entropy of a classifier head's logits (B, K) against labels y: the
        AC-GAN term (Odena et al. 2017) that training adds to D's loss on real images
        (aux_weight) and to G's loss on generated ones (`generator`: g_aux_weight, else
        aux_weight), when D has the head (`model.aux_classifier`)."""
        w = self.g_aux_w if generator else self.aux_weight
        return w * F.cross_entropy(class_logits.float(), y)

    @property
    def g_aux_w(self) -> float:
        """The weight of the AC-GAN term in G's loss (g_aux_weight, else aux_weight)."""
        return self.aux_weight if self.g_aux_weight is None else self.g_aux_weight


LOSSES: dict[str, GANLoss] = {
    "minimax": GANLoss("minimax", bce_d_loss, minimax_g_loss, smoothable=True),
    "nonsaturating": GANLoss("nonsaturating", bce_d_loss, nonsaturating_g_loss, smoothable=True),
    "hinge": GANLoss("hinge", hinge_d_loss, hinge_g_loss),
    "lsgan": GANLoss("lsgan", lsgan_d_loss, lsgan_g_loss),
    "wgan-gp": GANLoss("wgan-gp", wgan_d_loss, wgan_g_loss, gradient_penalty=True,
                       gp_weight=10.0),
}


def differentiates_twice(name: str, r1_gamma: float) -> bool:
    """Whether training with loss `name` and `r1_gamma` differentiates D's input gradient
    again (WGAN-GP's penalty, or R1)."""
    return (name in LOSSES and LOSSES[name].gradient_penalty) or r1_gamma > 0


def get_loss(cfg: LossConfig) -> GANLoss:
    """The registered loss `cfg.name` with the options of `cfg` applied."""
    if cfg.name not in LOSSES:
        raise ConfigError(f"unknown loss.name {cfg.name!r}; valid: {', '.join(LOSSES)}")
    base = LOSSES[cfg.name]
    return dataclasses.replace(
        base,
        gp_weight=cfg.gp_weight if base.gradient_penalty else 0.0,
        label_smoothing=cfg.label_smoothing,
        d_average=cfg.d_average,
        r1_gamma=cfg.r1_gamma,
        r1_every=cfg.r1_every,
        aux_weight=cfg.aux_weight,
        g_aux_weight=cfg.g_aux_weight,
    )
