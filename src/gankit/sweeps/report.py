"""The HTML comparison of a sweep's runs: what `gankit report RUN1 RUN2 ... --out DIR` writes."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def compare_runs(runs: list[Path], out: Path) -> str:
    """Write the comparison page of `runs` into `out`; returns one line saying what happened.

    A report that cannot be written does not fail the sweep (its table is already written).
    """
    runs = [r for r in runs if (r / "config.yaml").is_file()]
    if not runs:
        return "report: no run folders to compare"
    try:
        from gankit.report.html import write_comparison
    except ImportError:  # an install without the report package: try the command instead
        cmd = [sys.executable, "-m", "gankit.cli.main", "report", *map(str, runs), "--out",
               str(out)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode == 0:
            return f"report: {out / 'report.html'}"
        msg = (done.stderr or done.stdout).strip().splitlines()
        why = msg[-1] if msg else f"exit code {done.returncode}"
        return f"report: not written (`gankit report` failed: {why})"
    try:
        return f"report: {write_comparison(runs, out)}"
    except Exception as e:  # noqa: BLE001 - see above
        return f"report: not written ({type(e).__name__}: {e})"
