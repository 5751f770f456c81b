"""The HTML comparison of a sweep's runs: what `gankit report RUN1 RUN2 ... --out DIR` writes,
handed to the sweep runners (`gankit.sweeps.runner.Compare`) by the command line."""
from __future__ import annotations

from pathlib import Path

from gankit.report.html import write_comparison
from gankit.training.runs import RunPaths


def compare_runs(runs: list[Path], out: Path) -> str:
    """Write the comparison page of `runs` into `out`; returns one line saying what happened.

    A report that cannot be written does not fail the sweep (its table is already written).
    """
    runs = [r for r in runs if RunPaths(r).is_run()]
    if not runs:
        return "report: no run folders to compare"
    try:
        return f"report: {write_comparison(runs, out)}"
    except Exception as e:  # noqa: BLE001 - see above
        return f"report: not written ({type(e).__name__}: {e})"
