"""Training curves from a run's metrics.jsonl (one record per epoch; keys in ARCHITECTURE.md).

Each function takes the records and an output path, draws what the records hold and returns
the path, or None when none of its keys is present (e.g. no evaluation during training), so a
caller can tell "nothing to draw" from a figure.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

from matplotlib.ticker import MaxNLocator, NullFormatter

from gankit.plots.panels import save_figure, subplots

PHASES = ("train", "val")
# The per-epoch diagnostics of the training loop (everything else under val/ is a metric).
DIAGNOSTICS = ("g_loss", "d_loss", "d_real", "d_fake", "acc_real", "acc_fake", "grad_norm_g",
               "grad_norm_d")
G_COLOR, D_COLOR = "tab:blue", "tab:orange"
STYLE = {"train": "-", "val": "--"}


def series(rows: Sequence[dict], key: str, x: str = "epoch") -> tuple[list[float], list[float]]:
    """(epochs, values) of a key (or (steps, values) with x="step"), skipping records where it
    is missing or not finite."""
    xs, ys = [], []
    for i, r in enumerate(rows):
        v = r.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            xs.append(float(r.get(x, i + 1)))
            ys.append(float(v))
    return xs, ys


def _lines(rows: Sequence[dict], specs: Sequence[tuple[str, str, str, str]],
           path: str | os.PathLike, title: str, ylabel: str, logy: bool = False,
           ylim: tuple[float, float] | None = None, hline: float | None = None,
           x: str = "epoch") -> Path | None:
    """One axis with a line per (key, label, color, linestyle) that has data, against `x`."""
    data = [(series(rows, key, x), label, color, ls) for key, label, color, ls in specs]
    data = [d for d in data if d[0][0]]
    if not data:
        return None
    fig, ax = subplots(figsize=(5.6, 3.4), layout="constrained")
    for (xs, ys), label, color, ls in data:
        ax.plot(xs, ys, ls, color=color, label=label, marker="o" if len(xs) < 12 else None,
                ms=3, lw=1.4)
    if hline is not None:
        ax.axhline(hline, color="grey", lw=0.8, ls=":")
    if logy and all(y > 0 for (_, ys), *_ in data for y in ys):
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(NullFormatter())
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_xlabel(x)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def _pairs(a: str, b: str, label_a: str, label_b: str) -> list[tuple[str, str, str, str]]:
    return [(f"{p}/{k}", f"{lab} ({p})", color, STYLE[p])
            for k, lab, color in ((a, label_a, G_COLOR), (b, label_b, D_COLOR)) for p in PHASES]


def loss_curves(rows: Sequence[dict], path: str | os.PathLike) -> Path | None:
    """G and D losses per epoch, training (solid) and validation (dashed)."""
    return _lines(rows, _pairs("g_loss", "d_loss", "G loss", "D loss"), path,
                  "Generator and discriminator losses", "loss")


def step_loss_curves(steps: Sequence[dict], path: str | os.PathLike) -> Path | None:
    """G and D training losses every `log_every` steps (steps.jsonl; report 001's Figure 1)."""
    return _lines(steps, [("train/g_loss", "G loss", G_COLOR, "-"),
                          ("train/d_loss", "D loss", D_COLOR, "-")], path,
                  "Losses per iteration (training batches)", "loss", x="step")


def d_output_curves(rows: Sequence[dict], path: str | os.PathLike) -> Path | None:
    """Mean D(x) on real images against mean D(G(z)) on generated ones (sigmoid outputs)."""
    return _lines(rows, _pairs("d_real", "d_fake", "D(x)", "D(G(z))"), path,
                  "Discriminator outputs: D(x) vs D(G(z))", "mean sigmoid(D)", ylim=(-0.02, 1.02),
                  hline=0.5)


def d_accuracy_curves(rows: Sequence[dict], path: str | os.PathLike) -> Path | None:
    """D's accuracy on real (logit > 0) and on generated (logit < 0) images."""
    return _lines(rows, _pairs("acc_real", "acc_fake", "on real", "on generated"), path,
                  "Discriminator accuracy", "accuracy", ylim=(-0.02, 1.02), hline=0.5)


def grad_norm_curves(rows: Sequence[dict], path: str | os.PathLike) -> Path | None:
    """Gradient norms of G's and D's parameters (log scale when all positive)."""
    return _lines(rows, _pairs("grad_norm_g", "grad_norm_d", "G", "D"), path,
                  "Gradient norms", "‖∇‖", logy=True)


def metric_keys(rows: Sequence[dict]) -> list[str]:
    """Evaluation keys in the records ("val/fid", "val/kid", ...): phase/name keys that are not
    per-epoch diagnostics, in first-seen order."""
    out: list[str] = []
    for r in rows:
        for k, v in r.items():
            parts = k.split("/")
            if (len(parts) == 2 and parts[1] not in DIAGNOSTICS and k not in out
                    and isinstance(v, (int, float)) and not isinstance(v, bool)):
                out.append(k)
    return out


def eval_curves(rows: Sequence[dict], path: str | os.PathLike) -> Path | None:
    """Every validation metric logged during training (FID, KID, precision, ...), one small
    axis each; None when the run never evaluated (eval.every = 0)."""
    keys = [k for k in metric_keys(rows) if series(rows, k)[0]]
    if not keys:
        return None
    ncol = min(3, len(keys))
    nrow = -(-len(keys) // ncol)
    fig, axes = subplots(nrow, ncol, figsize=(3.2 * ncol, 2.4 * nrow), squeeze=False,
                             layout="constrained")
    for ax, key in zip(axes.flat, keys):
        xs, ys = series(rows, key)
        ax.plot(xs, ys, "-o", ms=3, lw=1.4, color="tab:green")
        small_epoch_panel(ax, key)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    fig.suptitle("Validation metrics during training", fontsize=10)
    return save_figure(fig, path)


def small_epoch_panel(ax, title: str) -> None:
    """Style one small panel of a per-epoch grid of plots: title, integer epoch axis, grid."""
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("epoch", fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
