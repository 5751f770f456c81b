"""Gradient penalties: WGAN-GP's (Gulrajani et al. 2017) and R1 (Mescheder et al. 2018)."""
from __future__ import annotations

import torch
from torch import Tensor, nn


def gradient_penalty(D: nn.Module, real: Tensor, fake: Tensor, y: Tensor | None = None,
                     generator: torch.Generator | None = None) -> Tensor:
    """E[(||grad_x D(x_hat, y)||_2 - 1)^2] at x_hat = eps * real + (1 - eps) * fake, one
    eps ~ U[0, 1) per sample, drawn from `generator` (or the global RNG). Built with
    create_graph=True so that the penalty can be back-propagated into D's weights."""
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} must match")
    shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    gen_device = generator.device if generator is not None else real.device
    eps = torch.rand(shape, generator=generator, device=gen_device, dtype=real.dtype)
    eps = eps.to(real.device)
    x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    out = D(x_hat, y)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    # sqrt(sum + tiny): the norm's gradient stays finite where D is flat.
    norm = (grad.flatten(1).pow(2).sum(dim=1) + 1e-12).sqrt()
    return (norm - 1.0).pow(2).mean()


def r1_penalty(real_logits: Tensor, real: Tensor) -> Tensor:
    """E[||grad_x D(x)||^2] over real images x (Mescheder et al. 2018's R1 without its
    gamma / 2). `real` must require grad and `real_logits` be D's logits on it; built with
    create_graph=True so that the penalty can be back-propagated into D's weights."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.flatten(1).pow(2).sum(dim=1).mean()
