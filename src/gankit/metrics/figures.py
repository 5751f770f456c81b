"""PNG figures of an evaluation: per-class mean/std images, confusion matrix, class histogram."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from gankit.metrics.evaluate import Evaluation
from gankit.plots.panels import save_figure, subplots


def _tile(arr: np.ndarray) -> np.ndarray:
    """(K, C, H, W) floats in [0, 255] (NaN: missing) -> a row of tiles (H, K*(W+2), C) uint8."""
    k, c, h, w = arr.shape
    out = np.zeros((h, k * (w + 2), c), np.uint8)
    for i in range(k):
        tile = np.nan_to_num(arr[i], nan=0.0).clip(0, 255).round().astype(np.uint8)
        out[:, i * (w + 2):i * (w + 2) + w] = tile.transpose(1, 2, 0)
    return out


def class_images_figure(ev: Evaluation, path: str | Path, classes: tuple[str, ...] | None = None,
                        upscale: int = 3) -> Path:
    """Rows: real mean, generated mean, real std, generated std (std x2); a column per class."""
    ci = ev.class_images
    rows = [("real mean", ci["real_mean"]), ("generated mean", ci["fake_mean"]),
            ("real std x2", ci["real_std"] * 2), ("generated std x2", ci["fake_std"] * 2)]
    tiles = [_tile(a) for _, a in rows]
    h, w, c = tiles[0].shape
    label_w, head = 110, 14
    size = (label_w + w * upscale, head + len(rows) * (h * upscale + 4))
    canvas = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(canvas)
    k = ci["real_mean"].shape[0]
    names = classes or tuple(str(i) for i in range(k))
    tile_w = (w // k) * upscale
    for i in range(k):
        draw.text((label_w + i * tile_w + tile_w // 3, 1), names[i][:6], fill="black")
    for r, ((name, _), t) in enumerate(zip(rows, tiles)):
        img = Image.fromarray(t[..., 0] if c == 1 else t).convert("RGB")
        img = img.resize((w * upscale, h * upscale), Image.NEAREST)
        y = head + r * (h * upscale + 4)
        canvas.paste(img, (label_w, y))
        draw.text((4, y + h * upscale // 2 - 6), name, fill="black")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def confusion_figure(ev: Evaluation, path: str | Path,
                     classes: tuple[str, ...] | None = None) -> Path:
    """Row-normalised confusion matrix (conditioning label vs classifier's prediction)."""
    cm = ev.confusion.astype(float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    k = len(cm)
    names = classes or tuple(str(i) for i in range(k))
    fig, ax = subplots(figsize=(5.5, 5))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            if norm[i, j] >= 0.005:
                ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.6 else "black")
    ax.set_xticks(range(k), names, rotation=90 if max(map(len, names)) > 2 else 0)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("reference classifier's prediction")
    ax.set_ylabel("conditioning label")
    ax.set_title(f"label accuracy {np.trace(cm) / max(cm.sum(), 1):.3f}")
    fig.tight_layout()
    return save_figure(fig, path)


def histogram_figure(ev: Evaluation, path: str | Path,
                     classes: tuple[str, ...] | None = None) -> Path:
    """Share of samples per predicted class, beside the real images' shares."""
    k = len(ev.histogram)
    names = classes or tuple(str(i) for i in range(k))
    x = np.arange(k)
    fig, ax = subplots(figsize=(6, 3.2))
    ax.bar(x - 0.2, ev.histogram, 0.4, label="generated")
    if ev.real_histogram is not None:
        ax.bar(x + 0.2, ev.real_histogram, 0.4, label="real")
    ax.axhline(1 / k, color="grey", lw=0.8, ls="--")
    ax.set_xticks(x, names, rotation=90 if max(map(len, names)) > 2 else 0)
    ax.set_ylabel("share of images")
    ax.set_title("classes predicted by the reference classifier")
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def write_figures(ev: Evaluation, folder: str | Path, classes: tuple[str, ...] | None = None
                  ) -> list[Path]:
    """Every figure the evaluation has data for, into `folder`."""
    folder = Path(folder)
    out = []
    if ev.class_images:
        out.append(class_images_figure(ev, folder / "class_images.png", classes))
    if ev.confusion is not None:
        out.append(confusion_figure(ev, folder / "confusion.png", classes))
    if ev.histogram is not None:
        out.append(histogram_figure(ev, folder / "class_histogram.png", classes))
    return out
