"""`gankit data show`: look at a dataset before training on it (report 000, section 2).

Writes three files: a grid of real images, one row per class; the class distribution of the
train/val/test splits as grouped bars (report 000, Figure 2.1); and the split table (report
000, Table 2.1: split, number of images, shape, value range) as Markdown. Works for 1- and
3-channel datasets, labelled or not. Uses matplotlib's Agg canvas directly (no pyplot, no
global backend switch) and NumPy only, so it does not import PyTorch.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from gankit.data.datasets import SplitArrays, load_arrays

SHOWN_SPLITS = ("train", "val", "test")
PER_ROW = 10


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _mosaic(images: np.ndarray, rows: int, cols: int, pad: int = 2) -> np.ndarray:
    """(rows*cols, C, H, W) uint8 (missing cells black) -> one (H', W', C) image with a
    grey padding between cells."""
    n, c, h, w = images.shape
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 128, np.uint8)
    for i in range(min(n, rows * cols)):
        r, q = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        out[y:y + h, x:x + w] = images[i].transpose(1, 2, 0)
    return out


def _grid_rows(train: SplitArrays) -> tuple[list[np.ndarray], list[str]]:
    """Image rows and their labels: the first PER_ROW training images of each class."""
    empty = np.zeros((0, *train.images.shape[1:]), np.uint8)
    if train.labels is None or len(train.classes) <= 1:
        n = 5 * PER_ROW
        imgs = train.images[:n]
        rows = [imgs[i:i + PER_ROW] for i in range(0, n, PER_ROW)]
        label = train.classes[0] if train.classes else ""
        return [r if len(r) else empty for r in rows], [label] + [""] * (len(rows) - 1)
    rows = []
    for k in range(len(train.classes)):
        idx = np.flatnonzero(train.labels == k)[:PER_ROW]
        rows.append(train.images[idx])
    return rows, list(train.classes)


def write_grid(name: str, train: SplitArrays, path: Path) -> Path:
    rows, labels = _grid_rows(train)
    c, h, w = train.images.shape[1:]
    cells = np.zeros((len(rows) * PER_ROW, c, h, w), np.uint8)
    for r, imgs in enumerate(rows):
        cells[r * PER_ROW:r * PER_ROW + len(imgs)] = imgs
    mosaic = _mosaic(cells, len(rows), PER_ROW)
    fig = Figure(figsize=(PER_ROW * 0.55 + 1.6, len(rows) * 0.55 + 0.8), dpi=120)
    ax = fig.add_subplot()
    if c == 1:
        ax.imshow(mosaic[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(mosaic, interpolation="nearest")
    pad = 2
    ax.set_yticks([pad + r * (h + pad) + h / 2 for r in range(len(rows))], labels)
    ax.set_xticks([])
    ax.tick_params(length=0)
    per_class = train.labels is not None and len(train.classes) > 1
    ax.set_title(f"{name}: first {PER_ROW} training images per class" if per_class
                 else f"{name}: first {len(rows) * PER_ROW} training images", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    return path


def write_distribution(name: str, splits: dict[str, SplitArrays], path: Path) -> Path:
    classes = splits["train"].classes
    k = max(1, len(classes))
    fig = Figure(figsize=(max(6.0, 0.75 * k + 2), 4.0), dpi=120)
    ax = fig.add_subplot()
    x = np.arange(k)
    width = 0.8 / len(splits)
    for i, (split, arr) in enumerate(splits.items()):
        counts = (np.bincount(arr.labels, minlength=k) if arr.labels is not None
                  else np.array([len(arr.images)]))
        bars = ax.bar(x + (i - (len(splits) - 1) / 2) * width, counts, width,
                      label=f"{split} ({len(arr.images):,})")
        if split == "train":
            ax.bar_label(bars, fontsize=6, padding=1)
    slanted = k > 1 and max(len(c) for c in classes) > 3  # long names would overlap
    ax.set_xticks(x, classes if classes else ["all"], rotation=30 if slanted else 0,
                  ha="right" if slanted else "center")
    ax.set_ylabel("images")
    ax.set_xlabel("class")
    ax.set_title(f"{name}: class distribution per split", fontsize=10)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.15)  # room for the legend above the bars
    ax.legend(fontsize=8, loc="upper center", ncols=len(splits), frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    return path


def split_table(name: str, splits: dict[str, SplitArrays]) -> str:
    """Report 000's Table 2.1 as Markdown: split, images, shape, value range."""
    lines = [f"# {name}: splits", "",
             "| split | images | shape (C, H, W) | value range (uint8) | classes |",
             "|---|---:|---|---|---:|"]
    for split, arr in splits.items():
        lo, hi = (int(arr.images.min()), int(arr.images.max())) if len(arr.images) else (0, 0)
        k = len(np.unique(arr.labels)) if arr.labels is not None else "-"
        lines.append(f"| {split} | {len(arr.images):,} | {tuple(arr.images.shape[1:])} | "
                     f"{lo}–{hi} | {k} |")
    lines += ["", "`train-full` = train + val. Training maps the uint8 values linearly onto "
              "[-1, 1] (2x/255 - 1, the default) or [0, 1] (`data.scale`)."]
    return "\n".join(lines) + "\n"


def show_dataset(name: str, out_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None
                 ) -> list[Path]:
    """Write the image grid, the class-distribution chart (PNG) and the split table (Markdown)
    of dataset `name` into `out_dir`; return their paths in that order."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    splits = {s: load_arrays(name, s, data_dir) for s in SHOWN_SPLITS}
    slug = _slug(name)
    table = out / f"{slug}_splits.md"
    table.write_text(split_table(name, splits))
    return [write_grid(name, splits["train"], out / f"{slug}_grid.png"),
            write_distribution(name, splits, out / f"{slug}_class_distribution.png"),
            table]
