"""Labelled image grids as PNG: one or more panels side by side, each a grid of uint8 images
with a title and row/column labels (matplotlib Agg; the tiles come from `grid.grid_array`).

A `Panel` is one such grid; exploration figures and real-beside-generated figures are lists
of them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from matplotlib.figure import Figure

from gankit.plots.grid import grid_array
from gankit.fileio import atomic_path

PAD = 2
PAD_VALUE = 96          # mid grey between tiles: white-on-black digits stay apart
TILE_INCH = 0.42        # the printed size of one image tile


@dataclass
class Panel:
    """A grid of images: uint8 (N, C, H, W), `nrow` per row, optional labels per row/column."""
    images: torch.Tensor
    nrow: int
    title: str = ""
    row_labels: list[str] | None = None
    col_labels: list[str] | None = None

    @property
    def rows(self) -> int:
        return -(-len(self.images) // self.nrow)


def subplots(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] | None = None,
             layout: str | None = None, **kw: Any) -> tuple[Figure, Any]:
    """A figure and its axes, as `pyplot.subplots` gives them, but without pyplot: no global
    figure list to close and no backend to choose (PNG files only need Agg, which
    `Figure.savefig` uses by itself)."""
    fig = Figure(figsize=figsize, layout=layout)
    return fig, fig.subplots(nrows, ncols, **kw)


def save_panels(panels: Sequence[Panel], path: str | os.PathLike, title: str | None = None,
                dpi: int = 110) -> Path:
    """Draw `panels` side by side with their labels and write a PNG; returns its path."""
    if not panels:
        raise ValueError("save_panels needs at least one panel")
    arrays = [grid_array(p.images, p.nrow, PAD, PAD_VALUE) for p in panels]
    _, h, w = panels[0].images.shape[1:]
    cols = [p.nrow for p in panels]
    rows = max(p.rows for p in panels)
    label_w = 0.9 if any(p.row_labels for p in panels) else 0.15
    width = sum(c * TILE_INCH + label_w for c in cols) + 0.3
    height = rows * TILE_INCH * h / max(w, 1) + (0.3 if any(p.title for p in panels) else 0.1) \
        + (0.3 if title else 0) + (0.25 if any(p.col_labels for p in panels) else 0)
    fig, axes = subplots(1, len(panels), figsize=(max(width, 3.0), max(height, 1.0)),
                             gridspec_kw={"width_ratios": [a.shape[1] for a in arrays]},
                             squeeze=False, layout="constrained")
    for ax, p, arr in zip(axes[0], panels, arrays):
        img = arr[..., 0] if arr.shape[-1] == 1 else arr
        ax.imshow(img, cmap="gray" if arr.shape[-1] == 1 else None, vmin=0, vmax=255,
                  interpolation="nearest")
        step_x, step_y = w + PAD, h + PAD
        if p.col_labels:
            ax.set_xticks([PAD + i * step_x + w / 2 for i in range(len(p.col_labels))])
            ax.set_xticklabels(p.col_labels, fontsize=7)
            ax.xaxis.tick_top()
        else:
            ax.set_xticks([])
        if p.row_labels:
            ax.set_yticks([PAD + i * step_y + h / 2 for i in range(len(p.row_labels))])
            ax.set_yticklabels(p.row_labels, fontsize=7)
        else:
            ax.set_yticks([])
        ax.tick_params(length=0, pad=2)
        for s in ax.spines.values():
            s.set_visible(False)
        if p.title:
            ax.set_xlabel(p.title, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path, dpi)


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Write a matplotlib figure as PNG (atomically)."""
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=dpi, facecolor="white")
    return Path(path)
