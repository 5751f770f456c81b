"""Adversarial losses as pure functions of logits, chosen by name from LOSSES."""
from gankit.losses.gan import (LOSSES, GANLoss, bce_d_loss, get_loss, hinge_d_loss, hinge_g_loss,
                               lsgan_d_loss, lsgan_g_loss, minimax_g_loss, nonsaturating_g_loss,
                               wgan_d_loss, wgan_g_loss)
from gankit.losses.penalty import gradient_penalty, r1_penalty

__all__ = ["GANLoss", "LOSSES", "bce_d_loss", "get_loss", "gradient_penalty", "hinge_d_loss",
           "hinge_g_loss", "lsgan_d_loss", "lsgan_g_loss", "minimax_g_loss",
           "nonsaturating_g_loss", "r1_penalty", "wgan_d_loss", "wgan_g_loss"]
