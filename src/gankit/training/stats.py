"""The per-step diagnostics of the game, named once for the training step and the held-out pass.

Values stay tensors on the device (stacked in the order of the name tuples), so the training
step never waits for the device; they become numbers once per epoch (`named`).
"""
from __future__ import annotations

import torch

# What D's logits on a real and a fake batch say, with the D loss they gave (report 000,
# Table 6.1): mean D(x) and D(G(z)) (sigmoid of the logit), and D's accuracy on each side
# (a logit > 0 calls an image real).
LOGIT_STATS = ("d_loss", "d_real", "d_fake", "acc_real", "acc_fake")
# The order of the per-step sums the trainer keeps (and checkpoints) for D and for G.
D_STATS = LOGIT_STATS + ("grad_norm_d",)
G_STATS = ("g_loss", "grad_norm_g")


@torch.no_grad()
def logit_stats(d_loss: torch.Tensor, real_logits: torch.Tensor,
                fake_logits: torch.Tensor) -> torch.Tensor:
    """The LOGIT_STATS of one D evaluation as one tensor (5,) on the logits' device."""
    rl, fl = real_logits.detach(), fake_logits.detach()
    return torch.stack([d_loss.detach(), torch.sigmoid(rl).mean(), torch.sigmoid(fl).mean(),
                        (rl > 0).float().mean(), (fl < 0).float().mean()])


def named(names: tuple[str, ...], values: torch.Tensor, prefix: str) -> dict[str, float]:
    """{prefix/name: value} from a tensor of values in the order of `names` (one host sync)."""
    return {f"{prefix}/{k}": v for k, v in zip(names, values.tolist(), strict=True)}
