"""Drawing samples from a generator: fixed noise for grids, seeded batches for evaluation.

A seed identifies a sample (stylegan2-ada's rule): the same (seed, n, labels) always gives
the same images, whatever the batch size.
"""
from __future__ import annotations

import torch
from torch import nn

from gankit.data.image import to_uint8
from gankit.errors import UserError
from gankit.models.base import evaluating


def noise(n: int, nz: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Standard normal latents (n, nz) from a CPU generator seeded with `seed`."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, nz, generator=g).to(device)


def set_truncation(G: nn.Module, psi: float | None) -> float:
    """Sample G with truncation psi from now on (None: keep its run's `model.truncation_psi`);
    returns the psi in effect. A command-line override, checked here."""
    if psi is not None:
        if not psi > 0 or psi == float("inf"):
            raise UserError(f"--truncation {psi}: give a number > 0 (1 samples z ~ N(0, I) as "
                            "trained; below 1 trades variety for typical samples)")
        G.truncation_psi = float(psi)
    return float(getattr(G, "truncation_psi", 1.0))


def balanced_labels(n: int, num_classes: int) -> torch.Tensor:
    """0, 1, ..., K-1, 0, 1, ... (n labels, as even as possible across classes)."""
    return torch.arange(n) % num_classes


def grid_inputs(G: nn.Module, seed: int, per_class: int = 10, unconditional_n: int = 64
                ) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """Fixed noise and labels for the progress grid, and the number of images per row.

    Conditional: one row per class, `per_class` columns, the same noise column-wise so that
    a column shows one style across classes. Unconditional: an 8x8 grid.
    """
    if getattr(G, "conditional", False):
        k = G.num_classes
        z = noise(per_class, G.nz, seed).repeat(k, 1)
        y = torch.arange(k).repeat_interleave(per_class)
        return z, y, per_class
    return noise(unconditional_n, G.nz, seed), None, 8


@torch.no_grad()
def generate(G: nn.Module, n: int, labels: str | torch.Tensor | None = "balanced", seed: int = 0,
             batch_size: int = 500, scale: str = "-1,1") -> tuple[torch.Tensor, torch.Tensor | None]:
    """n images as uint8 (n, C, H, W) on the CPU, with their labels (or None when unconditional).

    `labels`: "balanced" (equal counts per class), a digit string like "3" (all of one class),
    or a tensor of n labels. Noise comes from `seed`, drawn all at once so the samples do not
    depend on batch_size (up to float rounding: on some CPUs a GEMM on another number of rows
    rounds differently, so a pixel may differ by one level).
    """
    device = next(G.parameters()).device
    y = None
    if getattr(G, "conditional", False):
        if labels is None or (isinstance(labels, str) and labels == "balanced"):
            y = balanced_labels(n, G.num_classes)
        elif isinstance(labels, str):
            y = torch.full((n,), int(labels), dtype=torch.long)
        else:
            y = torch.as_tensor(labels, dtype=torch.long)
        if len(y) != n or int(y.min()) < 0 or int(y.max()) >= G.num_classes:
            raise ValueError(f"labels must be n={n} values in 0..{G.num_classes - 1}")
    z = noise(n, G.nz, seed)
    out = []
    with evaluating(G):
        for i in range(0, n, batch_size):
            yb = None if y is None else y[i:i + batch_size].to(device)
            out.append(to_uint8(G(z[i:i + batch_size].to(device), yb), scale))
    return torch.cat(out), y
