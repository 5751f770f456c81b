"""PNG and GIF bytes of generated images (Pillow), for the page and its downloads."""
from __future__ import annotations

import base64
import io
import math

import torch
from PIL import Image

from gankit.plots.grid import grid_array, to_pil


def _scaled(img: Image.Image, upscale: int) -> Image.Image:
    if upscale > 1:
        img = img.resize((img.width * upscale, img.height * upscale), Image.NEAREST)
    return img


def png_bytes(images: torch.Tensor, nrow: int | None = None, upscale: int = 1,
              pad: int = 2) -> bytes:
    """uint8 images (N, C, H, W) tiled into one PNG, `nrow` per row (default a square)."""
    nrow = nrow or max(1, math.ceil(math.sqrt(len(images))))
    buf = io.BytesIO()
    _scaled(to_pil(grid_array(images, nrow, pad)), upscale).save(buf, format="PNG")
    return buf.getvalue()


def tiles_base64(images: torch.Tensor) -> list[str]:
    """Each image as its own base64 PNG (no padding): the page's tiles."""
    return [base64.b64encode(png_bytes(img[None], 1, pad=0)).decode("ascii") for img in images]


def gif_bytes(images: torch.Tensor, upscale: int = 4, duration_ms: int = 120) -> bytes:
    """A looping GIF with one frame per image, there and back (a -> b -> a)."""
    frames = [_scaled(to_pil(grid_array(img[None], 1, pad=0)), upscale) for img in images]
    frames = frames + frames[-2:0:-1]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:],
                   duration=duration_ms, loop=0, disposal=1)
    return buf.getvalue()
