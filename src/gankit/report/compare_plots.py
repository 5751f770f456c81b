"""Curves of several runs on shared axes, for the comparison page."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from gankit.plots.curves import metric_keys, series, small_epoch_panel
from gankit.plots.panels import save_figure, subplots


def overlay_curves(all_rows: Sequence[list[dict]], labels: Sequence[str], out: Path
                   ) -> list[tuple[Path, str, str]]:
    """(path, title, caption) of: G and D training losses of every run; every validation
    metric that at least one run logged (one axis each)."""
    made = []
    loss_keys = [("train/g_loss", "G loss (train)"), ("train/d_loss", "D loss (train)"),
                 ("val/g_loss", "G loss (val)"), ("val/d_loss", "D loss (val)")]
    metrics = []
    for rows in all_rows:
        metrics += [k for k in metric_keys(rows) if k not in metrics]
    for name, keys, title, caption in (
            ("compare_losses", loss_keys, "Losses", "Per-epoch losses of each run."),
            ("compare_metrics", [(k, k) for k in metrics], "Validation metrics",
             "Metrics logged during training (eval.every > 0) of each run.")):
        keys = [(k, t) for k, t in keys if any(series(rows, k)[0] for rows in all_rows)]
        if not keys:
            continue
        ncol = min(2, len(keys))
        nrow = -(-len(keys) // ncol)
        fig, axes = subplots(nrow, ncol, figsize=(4.6 * ncol, 2.8 * nrow), squeeze=False,
                                 layout="constrained")
        for ax, (key, sub) in zip(axes.flat, keys):
            for rows, lab in zip(all_rows, labels):
                xs, ys = series(rows, key)
                if xs:
                    ax.plot(xs, ys, "-", marker="o" if len(xs) < 12 else None, ms=3, lw=1.3,
                            label=lab)
            small_epoch_panel(ax, sub)
        for ax in list(axes.flat)[len(keys):]:
            ax.set_visible(False)
        axes.flat[0].legend(fontsize=7)
        path = save_figure(fig, Path(out) / f"{name}.png")
        made.append((path, title, caption))
    return made
