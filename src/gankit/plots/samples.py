"""Figures that need the generator: real beside generated, and the class distribution of the
samples according to a classifier's predictions (the caller's: gankit.metrics' reference
classifier in a report)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from gankit.plots.charts import grouped_bars
from gankit.plots.panels import Panel, save_panels
from gankit.sampling import generate


def real_vs_generated(G: nn.Module, real_images: torch.Tensor, real_labels: torch.Tensor | None,
                      path: str | os.PathLike, per_class: int = 8, n_unconditional: int = 64,
                      seed: int = 0, scale: str = "-1,1",
                      classes: Sequence[str] | None = None) -> Path:
    """Real images (e.g. the validation split) beside G's samples. Conditional G with labelled
    real images: one row per class on both sides; otherwise an 8-wide grid of each."""
    conditional = bool(getattr(G, "conditional", False)) and real_labels is not None
    rng = np.random.default_rng(seed)
    if conditional:
        k = int(G.num_classes)
        names = list(classes) if classes and len(classes) == k else [str(i) for i in range(k)]
        idx = []
        for c in range(k):
            pool = np.flatnonzero(real_labels.numpy() == c)
            pick = np.sort(rng.permutation(pool)[:per_class])
            # too few real images of a class: pad the row with the last one
            idx += list(pick) + [pick[-1]] * (per_class - len(pick)) if len(pick) else []
        real = real_images[torch.as_tensor(np.asarray(idx, dtype=np.int64))]
        labels = torch.arange(k).repeat_interleave(per_class)
        fake, _ = generate(G, len(labels), labels, seed=seed, scale=scale)
        rows = names if len(real) == len(fake) else None
        panels = [Panel(real, per_class, "real (validation split)", rows),
                  Panel(fake, per_class, "generated", names)]
    else:
        n = min(n_unconditional, len(real_images))
        idx = np.sort(rng.permutation(len(real_images))[:n])
        real = real_images[torch.as_tensor(idx)]
        fake, _ = generate(G, n_unconditional, None if not getattr(G, "conditional", False)
                           else "balanced", seed=seed, scale=scale)
        panels = [Panel(real, 8, "real (validation split)"), Panel(fake, 8, "generated")]
    return save_panels(panels, path, title="Real beside generated")


def class_distribution(G: nn.Module, predict, real_images: torch.Tensor,
                       path: str | os.PathLike, n: int = 2000, seed: int = 0,
                       scale: str = "-1,1", classes: Sequence[str] | None = None,
                       num_classes: int = 10) -> tuple[Path, dict]:
    """Share of each class among n samples and among real images, as the reference classifier
    `predict` sees them. Conditional G: balanced labels, and the share classified as their
    conditioning label is returned too. Returns (path, numbers)."""
    conditional = bool(getattr(G, "conditional", False))
    fake, y = generate(G, n, "balanced" if conditional else None, seed=seed, scale=scale)
    pred_fake = np.asarray(predict(fake))
    pred_real = np.asarray(predict(real_images[:n]))
    k = max(num_classes, int(pred_fake.max(initial=0)) + 1, int(pred_real.max(initial=0)) + 1)
    h_fake = np.bincount(pred_fake, minlength=k) / max(len(pred_fake), 1)
    h_real = np.bincount(pred_real, minlength=k) / max(len(pred_real), 1)
    names = list(classes) if classes and len(classes) == k else [str(i) for i in range(k)]
    info = {"generated": [round(float(v), 4) for v in h_fake],
            "real": [round(float(v), 4) for v in h_real], "n": int(len(pred_fake))}
    title = "Class distribution (reference classifier)"
    if conditional and y is not None:
        acc = float((torch.as_tensor(pred_fake) == y).float().mean())
        info["label_acc"] = round(acc, 4)
        title += f"; samples classified as their label: {acc:.1%}"
    p = grouped_bars({f"generated (n={len(pred_fake)})": h_fake,
                      f"real validation (n={len(pred_real)})": h_real}, names, path, title,
                     "share of images", reference=1.0 / k)
    return p, info
