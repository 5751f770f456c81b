"""Run the exploration on a run folder: figures as PNG plus RUN/explore/index.json.

index.json lists the figures in order, each with its file (relative to the index), title
and one-line caption (what `gankit report` shows), and the numbers behind it:

    {"run": ..., "which": "best", "epoch": 30, "seed": 0, "conditional": true,
     "label_encoding": "embedding", "figures": [{"name", "file", "title", "caption", "data"}],
     "notes": ["..."]}
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from gankit.data import qualified_name
from gankit.exploration.experiments import ExploreFigure, all_figures
from gankit.fileio import atomic_write
from gankit.metrics.classes import discriminator_accuracy_per_class
from gankit.plots.charts import grouped_bars
from gankit.plots.panels import save_panels
from gankit.training.runs import Run, RunPaths, load_run

INDEX = "index.json"


_LOG = logging.getLogger("gankit.explore")


def log(msg: str) -> None:
    """A progress message: "[gankit explore] ..." on stderr; `gankit --quiet` silences it."""
    _LOG.info(msg)


def write_figure(fig: ExploreFigure, out: str | os.PathLike) -> Path:
    """Draw one exploration figure as out/<name>.png."""
    return save_panels(fig.panels, Path(out) / f"{fig.name}.png", title=fig.title)


def explore_run(run_dir: str | os.PathLike, which: str = "best",
                out: str | os.PathLike | None = None, seed: int = 0, d_per_class: int = 200, device: str = "cpu") -> dict:
    """Every exploration figure of a run's generator, written to `out` (default RUN/explore),
    with index.json; returns the index (see `explore`)."""
    run = load_run(run_dir, which=which, device=device)
    out = Path(out) if out is not None else RunPaths(run_dir).explore_dir
    return explore(run, out, which=which, seed=seed, d_per_class=d_per_class)


def explore(run: Run, out: str | os.PathLike, which: str = "best", seed: int = 0,
            d_per_class: int = 200) -> dict:
    """Every exploration figure of a loaded run's generator (a run folder's or a pretrained
    one), written to `out` with index.json; returns the index.

    `d_per_class` > 0 adds report 002's Table 3 as a chart: the discriminator's accuracy per
    class on that many real (validation split) and generated images per class (skipped with
    a note when the run has no discriminator, as a pretrained model)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    G = run.G
    scale = run.cfg.data.scale
    conditional = bool(getattr(G, "conditional", False))
    entries, notes = [], []
    for fig in all_figures(G, seed=seed, scale=scale, classes=run.classes or None):
        path = write_figure(fig, out)
        entries.append({"name": fig.name, "file": path.name, "title": fig.title,
                        "caption": fig.caption, "data": fig.data})
    if not conditional:
        notes.append("unconditional generator: only interpolation in z and noise on z apply "
                     "(no labels to vary)")
    if d_per_class > 0 and run.D is None:
        notes.append("no discriminator (a pretrained model ships G alone): the per-class "
                     "discriminator accuracy is skipped")
    elif d_per_class > 0:
        entry, note = _d_accuracy_figure(run, out, d_per_class, seed)
        if entry:
            entries.append(entry)
        if note:
            notes.append(note)
            log(note)
    index = {"run": str(run.path), "which": which, "epoch": run.epoch, "seed": seed,
             "conditional": conditional,
             "label_encoding": run.cfg.model.g_cond if conditional else None,
             "figures": entries, "notes": notes}
    atomic_write(out / INDEX, json.dumps(index, indent=2, ensure_ascii=False) + "\n")
    return index


def read_index(folder: str | os.PathLike) -> dict | None:
    """The exploration index in `folder` (e.g. RUN/explore), or None when absent/unreadable."""
    path = Path(folder) / INDEX
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("figures"), list) else None


def _d_accuracy_figure(run: Run, out: Path, n_per_class: int, seed: int
                       ) -> tuple[dict | None, str | None]:
    """Report 002's per-class discriminator accuracy as grouped bars, or a note why not."""
    dataset = qualified_name(run.cfg.data.name, run.cfg.data.classes)
    try:
        acc = discriminator_accuracy_per_class(run.D, run.G, dataset, "val",
                                               n_per_class, seed, run.cfg.data.data_dir,
                                               run.cfg.data.scale)
    except Exception as e:  # noqa: BLE001 - optional figure: a failure is a note, not a crash
        return None, f"per-class discriminator accuracy skipped: {type(e).__name__}: {e}"
    names = list(run.classes) if run.classes else [str(i) for i in range(len(acc["real"]))]
    series = {"real (D(x) > 0.5)": acc["real"], "generated (D(G(z)) < 0.5)": acc["fake"]}
    path = grouped_bars(series, names, out / "d_accuracy_per_class.png",
                        "Discriminator accuracy per class", "accuracy", ylim=(0, 1.08),
                        annotate=True)
    n_real, n_fake = int(acc["n_real"].sum()), int(acc["n_fake"].sum())
    how = ("conditioned on each class" if getattr(run.G, "conditional", False)
           else "assigned to classes by the reference classifier")
    data = {k: [None if v != v else round(float(v), 4) for v in acc[k]] for k in ("real", "fake")}
    return {"name": "d_accuracy_per_class", "file": path.name,
            "title": "Discriminator accuracy per class",
            "caption": f"D's accuracy on {n_real} real validation images and {n_fake} generated "
                       f"ones ({how}), per class (report 002, Table 3).",
            "data": data}, None
