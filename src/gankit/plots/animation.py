"""An animated GIF of the fixed-noise grid over the epochs (from RUN/grids/epoch_*.png)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw
from gankit.fileio import atomic_path

BAND = 14   # px of header for the "epoch N" label


def grid_animation(frames: Sequence[tuple[int, str | os.PathLike]], path: str | os.PathLike,
                   duration_ms: int = 400, hold_last_ms: int = 1500, upscale: int = 1) -> Path:
    """Write a looping GIF with one frame per (epoch, grid PNG), each labelled "epoch N"; the
    last frame is held longer. Frames of different sizes are padded to the largest."""
    if not frames:
        raise ValueError("no grids to animate")
    raw = [Image.open(p) for _, p in frames]
    mode = "L" if all(i.mode in ("L", "1", "LA") for i in raw) else "RGB"   # colour sets stay RGB
    ims = [i.convert(mode) for i in raw]
    w = max(i.width for i in ims) * upscale
    h = max(i.height for i in ims) * upscale
    out = []
    for (epoch, _), im in zip(frames, ims):
        if upscale > 1:
            im = im.resize((im.width * upscale, im.height * upscale), Image.NEAREST)
        canvas = Image.new(mode, (w, h + BAND), "white")
        canvas.paste(im, (0, BAND))
        ImageDraw.Draw(canvas).text((3, 1), f"epoch {epoch}", fill="black")
        out.append(canvas)
    durations = [duration_ms] * (len(out) - 1) + [max(duration_ms, hold_last_ms)]
    with atomic_path(path, ".gif") as tmp:
        out[0].save(tmp, save_all=True, append_images=out[1:], duration=durations, loop=0,
                    optimize=False, disposal=1)
    return Path(path)
