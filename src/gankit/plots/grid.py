"""Image grids as PNG: one writer for 1- and 3-channel images, used by every figure."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from gankit.fileio import atomic_path


def grid_array(images: torch.Tensor, nrow: int, pad: int = 2, pad_value: int = 0) -> np.ndarray:
    """Tile uint8 (N, C, H, W) into an (rows*H, nrow*W, C) array, row by row."""
    if images.dtype != torch.uint8:
        raise ValueError(f"grid_array wants uint8 images, got {images.dtype}")
    n, c, h, w = images.shape
    rows = max(1, -(-n // nrow))
    out = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), pad_value, np.uint8)
    arr = images.permute(0, 2, 3, 1).numpy()
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        out[y:y + h, x:x + w] = arr[i]
    return out


def to_pil(array: np.ndarray) -> Image.Image:
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)


def save_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int = 10, upscale: int = 1,
              pad: int = 2) -> Path:
    """Write a grid of uint8 (N, C, H, W) images as a PNG (atomic: temp name then rename)."""
    img = to_pil(grid_array(images, nrow, pad))
    if upscale > 1:
        img = img.resize((img.width * upscale, img.height * upscale), Image.NEAREST)
    return save_png(img, path)


def save_png(img: Image.Image, path: str | os.PathLike) -> Path:
    with atomic_path(path, ".png") as tmp:
        img.save(tmp)
    return Path(path)


def composite(paths: list[Path], labels: list[str], path: str | os.PathLike,
              max_cols: int = 6) -> Path:
    """Grids of several epochs side by side with their labels (report 000, section 6.5)."""
    if len(paths) > max_cols:  # keep the first and last, spread the rest evenly
        keep = np.linspace(0, len(paths) - 1, max_cols).round().astype(int)
        paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
    ims = [Image.open(p).convert("RGB") for p in paths]
    w, h = max(i.width for i in ims), max(i.height for i in ims)
    band = 16
    out = Image.new("RGB", (len(ims) * (w + 8) + 8, h + band + 8), "white")
    draw = ImageDraw.Draw(out)
    for k, (im, label) in enumerate(zip(ims, labels)):
        x = 8 + k * (w + 8)
        draw.text((x, 2), label, fill="black")
        out.paste(im, (x, band))
    return save_png(out, path)
