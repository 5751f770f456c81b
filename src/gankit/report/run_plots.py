"""`write_run_plots(RUN)`: every plot of a run folder into RUN/plots, with its index.

Reads the folder through `RunPaths` and `load_run` (the training layer) and hands the records,
grids, loaded checkpoint and the reference classifier (gankit.metrics) to
`gankit.plots.run.write_plots`, which draws them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from gankit.metrics.classes import ClassifierUnavailable, reference_predictor
from gankit.plots.run import Predictor, write_plots
from gankit.training.runs import Run, RunPaths, load_run


def write_run_plots(run_dir: str | os.PathLike, out: str | os.PathLike | None = None,
                    which: str = "best", seed: int = 0, n_samples: int = 2000,
                    device: str = "cpu") -> dict:
    """Write every plot of a run to `out` (default RUN/plots) and its index.json; returns the
    index {"plots": [entries], "notes": [why something was skipped]}."""
    paths = RunPaths(Path(run_dir))
    run = load_run(paths.root, which=which, device=device) \
        if paths.checkpoint(which).is_file() else None
    return write_plots(Path(out) if out is not None else paths.root / "plots",
                       paths.read_metrics(), paths.grids(), run, which, seed, n_samples,
                       steps=paths.read_steps(),
                       predictor=None if run is None else _predictor(run))


def _predictor(run: Run) -> Predictor:
    """The reference classifier's class prediction for `run`'s dataset, when it has one."""
    def predictor() -> tuple[Callable | None, str | None]:
        d = run.cfg.data
        if d.classes:
            return None, "the run trains on a subset of the classes"
        try:
            return reference_predictor(d.name), None
        except ClassifierUnavailable as e:
            return None, str(e)
    return predictor
