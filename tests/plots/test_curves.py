"""Training curves from metrics.jsonl records, labelled panels, bar charts and the GIF."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.plots import curves
from gankit.plots.animation import grid_animation
from gankit.plots.charts import grouped_bars
from gankit.plots.grid import save_grid
from gankit.plots.panels import save_panels


def record(epoch: int, evaluated: bool = False) -> dict:
    r = {"epoch": epoch, "step": 10 * epoch, "time_s": 1.5, "lr_g": 2e-4, "lr_d": 2e-4,
         "d_steps": 1}
    for p in ("train", "val"):
        r.update({f"{p}/g_loss": 1.0 + 0.1 * epoch, f"{p}/d_loss": 1.2 - 0.1 * epoch,
                  f"{p}/d_real": 0.6, f"{p}/d_fake": 0.4, f"{p}/acc_real": 0.7,
                  f"{p}/acc_fake": 0.8, f"{p}/grad_norm_g": 0.5, f"{p}/grad_norm_d": 2.0})
    if evaluated:
        r.update({"val/fid": 40.0 / epoch, "val/kid": 0.01, "val/label_acc": 0.5})
    return r


def png_size(path):
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def test_series_skips_missing_and_non_finite():
    rows = [{"epoch": 1, "a": 1.0}, {"epoch": 2}, {"epoch": 3, "a": math.nan},
            {"epoch": 4, "a": None}, {"epoch": 5, "a": 2}, {"epoch": 6, "a": True}]
    assert curves.series(rows, "a") == ([1.0, 5.0], [1.0, 2.0])


@pytest.mark.parametrize("fn", [curves.loss_curves, curves.d_output_curves,
                                curves.d_accuracy_curves, curves.grad_norm_curves])
def test_diagnostic_curves_are_drawn(fn, tmp_path):
    rows = [record(e) for e in range(1, 4)]
    path = fn(rows, tmp_path / "c.png")
    assert path == tmp_path / "c.png"
    w, h = png_size(path)
    assert w > 300 and h > 200


def test_a_single_epoch_is_enough(tmp_path):
    assert curves.loss_curves([record(1)], tmp_path / "one.png") is not None


def test_curves_return_none_without_their_keys(tmp_path):
    rows = [{"epoch": 1, "step": 3}]
    for fn in (curves.loss_curves, curves.d_output_curves, curves.eval_curves):
        assert fn(rows, tmp_path / "x.png") is None
    assert not (tmp_path / "x.png").exists()


def test_eval_curves_pick_the_metrics_not_the_diagnostics(tmp_path):
    rows = [record(1), record(2, evaluated=True), record(3), record(4, evaluated=True)]
    assert curves.metric_keys(rows) == ["val/fid", "val/kid", "val/label_acc"]
    assert curves.eval_curves(rows, tmp_path / "m.png") is not None
    assert curves.eval_curves([record(1), record(2)], tmp_path / "none.png") is None


@pytest.mark.parametrize("channels", [1, 3])
def test_save_panels_with_labels(channels, tmp_path):
    from gankit.exploration import Panel
    imgs = torch.randint(0, 256, (12, channels, 28, 28), dtype=torch.uint8)
    panels = [Panel(imgs, 4, "left", ["a", "b", "c"], ["1", "2", "3", "4"]),
              Panel(imgs[:6], 3, "right")]
    w, h = png_size(save_panels(panels, tmp_path / "p.png", title="Title"))
    assert w > h > 100


def test_grouped_bars_accept_nan(tmp_path):
    path = grouped_bars({"real": [0.5, np.nan, 1.0], "fake": [0.2, 0.3, np.nan]}, ["0", "1", "2"],
                        tmp_path / "b.png", "t", "acc", ylim=(0, 1), reference=0.5, annotate=True)
    assert png_size(path)[0] > 300


def test_grid_animation_has_a_labelled_frame_per_epoch(tmp_path):
    frames = []
    for e in (1, 2, 5):
        imgs = torch.full((4, 1, 8, 8), 40 * e, dtype=torch.uint8)
        frames.append((e, save_grid(imgs, tmp_path / f"epoch_{e:04d}.png", nrow=2)))
    path = grid_animation(frames, tmp_path / "a.gif", duration_ms=100, hold_last_ms=900)
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == 3 and im.info.get("loop") == 0
        first = im.size
        im.seek(2)
        assert im.info["duration"] == 900
    assert first[1] > 8 * 2   # the header band for "epoch N" sits above the grid
    with pytest.raises(ValueError):
        grid_animation([], tmp_path / "none.gif")


def test_grid_animation_keeps_colour(tmp_path):
    imgs = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    imgs[:, 0] = 255                                                    # red
    p = save_grid(imgs, tmp_path / "epoch_0001.png", nrow=2)
    gif = grid_animation([(1, p), (2, p)], tmp_path / "c.gif")
    with Image.open(gif) as im:
        r, g, b = im.convert("RGB").getpixel((4, 20))
    assert r > 200 and g < 50 and b < 50
