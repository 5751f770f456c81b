"""Small matplotlib charts shared by the run plots and the exploration: grouped bars per class."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from gankit.plots.panels import save_figure, subplots


def grouped_bars(series: dict[str, Sequence[float]], categories: Sequence[str],
                 path: str | os.PathLike, title: str, ylabel: str,
                 ylim: tuple[float, float] | None = None, reference: float | None = None,
                 annotate: bool = False) -> Path:
    """One group of bars per category, one bar per series (NaN bars are left out)."""
    names = list(series)
    k = len(categories)
    width = 0.8 / max(len(names), 1)
    legend_w = 1.8 if len(names) > 1 else 0.0
    fig, ax = subplots(figsize=(max(5.0, 0.55 * k + 2) + legend_w, 3.2), layout="constrained")
    x = np.arange(k)
    for i, name in enumerate(names):
        vals = np.asarray(series[name], dtype=float)
        bars = ax.bar(x - 0.4 + width * (i + 0.5), np.nan_to_num(vals), width, label=name)
        if annotate:
            for b, v in zip(bars, vals):
                if np.isfinite(v):
                    ax.annotate(f"{v:.2f}", (b.get_x() + b.get_width() / 2, b.get_height()),
                                ha="center", va="bottom", fontsize=6)
    if reference is not None:
        ax.axhline(reference, color="grey", lw=0.8, ls="--")
    ax.set_xticks(x)
    ax.set_xticklabels(list(categories), fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if ylim:
        ax.set_ylim(*ylim)
    if len(names) > 1:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # never on the bars
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)
