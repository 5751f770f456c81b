"""The HTML comparison of a sweep's runs, from `gankit.report` when it offers one."""
from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

# Names under which gankit.report may offer a comparison of several run folders.
CANDIDATES = ("compare_runs", "compare", "write_comparison", "comparison_report")


def compare_runs(runs: list[Path], out: Path) -> str:
    """Write `gankit report RUN1 RUN2 ... --out OUT`; returns one line saying what happened."""
    if not runs:
        return "report: no run folders"
    try:
        report = importlib.import_module("gankit.report")
    except ImportError:
        report = None
    fn = next((getattr(report, n) for n in CANDIDATES if callable(getattr(report, n, None))),
              None)
    if fn is not None:
        fn([str(r) for r in runs], str(out))
        return f"report: {out}"
    cmd = [sys.executable, "-m", "gankit.cli.main", "report", *map(str, runs), "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode == 0:
        return f"report: {out}"
    msg = (done.stderr or done.stdout).strip().splitlines()
    return f"report: `gankit report` failed ({msg[-1] if msg else done.returncode})"
