"""All figures of one run, written to a folder (RUN/plots) with an index (what `gankit report`
shows). The run's files are read by the caller (`gankit.report.run_plots.write_run_plots`), so
that this layer needs nothing of training's run-folder code.

From metrics.jsonl: G/D losses (train and val), D(x) vs D(G(z)), D accuracy on real and
generated images, gradient norms, validation metrics (when evaluated during training).
From the grids: an animated GIF of the fixed-noise grid over epochs (grids/progression.png,
the composite, is written by training). From the checkpoint: real beside generated, and the
class distribution of the samples by the caller's classifier (`Predictor`: skipped with a
note when there is none for the dataset).
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from gankit.data.datasets import load_dataset, qualified_name
from gankit.data.errors import DataError
from gankit.plots import curves
from gankit.plots.animation import grid_animation
from gankit.plots.samples import class_distribution, real_vs_generated
from gankit.fileio import atomic_write

INDEX = "index.json"
# The class predictor of a run's dataset: () -> (images -> classes, None), or (None, why there
# is none). Given by the caller (gankit.report: the reference classifier of gankit.metrics),
# asked only when the validation images are here.
Predictor = Callable[[], tuple[Callable | None, str | None]]


_LOG = logging.getLogger("gankit.plots")


def log(msg: str) -> None:
    """A progress message: "[gankit plots] ..." on stderr; `gankit --quiet` silences it."""
    _LOG.info(msg)


@dataclass
class PlotEntry:
    name: str
    file: str             # relative to the plots folder
    title: str
    caption: str
    section: str          # "curves" | "samples"
    data: dict = field(default_factory=dict)


CURVES = [
    ("losses", curves.loss_curves, "Losses",
     "Generator and discriminator losses per epoch; solid: training batches, dashed: "
     "held-out validation images."),
    ("d_outputs", curves.d_output_curves, "D(x) vs D(G(z))",
     "Mean discriminator output (sigmoid) on real images and on generated ones."),
    ("d_accuracy", curves.d_accuracy_curves, "Discriminator accuracy",
     "Share of real images D calls real (logit > 0) and of generated ones it calls fake."),
    ("grad_norms", curves.grad_norm_curves, "Gradient norms",
     "L2 norm of the gradients of G's and D's parameters, mean per epoch."),
    ("val_metrics", curves.eval_curves, "Validation metrics",
     "Metrics computed on the validation split during training (FID & co.)."),
]


class TrainedRun(Protocol):
    """What the sample figures need of a loaded run (`gankit.training.runs.Run` has it)."""
    cfg: Any
    G: Any
    classes: tuple[str, ...]
    epoch: int


def write_plots(out: str | os.PathLike, rows: list[dict], grids: list[tuple[int, Path]],
                run: TrainedRun | None, which: str = "best", seed: int = 0,
                n_samples: int = 2000, steps: list[dict] | None = None,
                predictor: Predictor | None = None) -> dict:
    """Write every plot of a run to `out` and `out`/index.json; returns the index
    {"plots": [entries], "notes": [why something was skipped]}.

    `rows`: the run's metrics.jsonl records; `grids`: its (epoch, grid PNG) pairs; `run`: its
    checkpoint `which` loaded (None when there is none: no sample figures, and a note);
    `steps`: its steps.jsonl records (losses per iteration), when it logged them;
    `predictor`: the classifier of the class-distribution figure (None: no such figure)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries: list[PlotEntry] = []
    notes: list[str] = []
    if not rows:
        notes.append("no metrics.jsonl records yet: no training curves")
    for name, fn, title, caption in CURVES:
        if rows and fn(rows, out / f"{name}.png") is not None:
            entries.append(PlotEntry(name, f"{name}.png", title, caption, "curves"))
        elif rows and name == "val_metrics":
            notes.append("no validation metrics in metrics.jsonl (eval.every = 0): run "
                         "`gankit eval RUN` for FID & co.")
    if steps and curves.step_loss_curves(steps, out / "losses_per_step.png") is not None:
        entries.append(PlotEntry("losses_per_step", "losses_per_step.png", "Losses per iteration",
                                 "G and D losses on training batches, mean of every "
                                 "`log_every` steps (steps.jsonl).", "curves"))
    if len(grids) >= 2:
        grid_animation(grids, out / "progress.gif")
        entries.append(PlotEntry("progress_gif", "progress.gif", "Fixed-noise grid over epochs",
                                 f"The same noise (and labels) at each of {len(grids)} saved "
                                 "epochs, animated.", "samples"))
    elif grids:
        notes.append("only one epoch grid: no animation")
    if run is not None:
        entries += _sample_plots(run, out, which, seed, n_samples, notes, predictor)
    else:
        notes.append(f"no checkpoints/{which}.pt: no real-vs-generated or class-distribution "
                     "plots")
    for n in notes:
        log(n)
    index = {"plots": [asdict(e) for e in entries], "notes": notes}
    atomic_write(out / INDEX, json.dumps(index, indent=2, ensure_ascii=False) + "\n")
    return index


def _sample_plots(run: TrainedRun, out: Path, which: str, seed: int, n: int,
                  notes: list[str], predictor: Predictor | None) -> list[PlotEntry]:
    d = run.cfg.data
    try:
        val = load_dataset(qualified_name(d.name, d.classes), "val", d.data_dir)
    except DataError as e:  # a run copied to a machine without its data still gets a report
        notes.append(f"no real-vs-generated or class-distribution plots: the validation data "
                     f"is not here ({e})")
        return []
    classes = list(run.classes) if run.classes else None
    entries = []
    real_vs_generated(run.G, val.images, val.labels, out / "real_vs_generated.png", seed=seed,
                      scale=d.scale, classes=classes)
    entries.append(PlotEntry("real_vs_generated", "real_vs_generated.png", "Real beside generated",
                             f"Validation images (left) and samples of the {which} checkpoint "
                             f"(epoch {run.epoch}, seed {seed}) (right).", "samples"))
    predict, why = predictor() if predictor is not None else (None, "no classifier given")
    if predict is None:
        notes.append(f"class distribution skipped: {why}")
        return entries
    _, info = class_distribution(run.G, predict, val.images, out / "class_distribution.png",
                                 n=n, seed=seed, scale=d.scale, classes=classes,
                                 num_classes=val.num_classes or 10)
    extra = (f"; {info['label_acc']:.1%} classified as their conditioning label"
             if "label_acc" in info else "")
    entries.append(PlotEntry("class_distribution", "class_distribution.png",
                             "Class distribution of generated samples",
                             f"Share of each class among {info['n']} samples and among "
                             f"validation images, by the reference classifier{extra}.",
                             "samples", info))
    return entries


def read_index(folder: str | os.PathLike) -> dict | None:
    """RUN/plots/index.json, or None when absent or unreadable."""
    path = Path(folder) / INDEX
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("plots"), list) else None
